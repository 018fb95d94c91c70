// Small progressive enhancements shared by every page. Page-specific code lives beside its template.
// No inline handlers anywhere (the Content-Security-Policy allows scripts from our files only).

// <form data-confirm="Question?">: ask before submitting (destructive actions).
document.addEventListener("submit", function (evt) {
  var form = evt.target;
  if (form.dataset && form.dataset.confirm && !window.confirm(form.dataset.confirm)) {
    evt.preventDefault();
    evt.stopImmediatePropagation();
  }
}, true);
document.addEventListener("htmx:responseError", function (evt) {
  var box = document.getElementById("flashes");
  if (box) box.innerHTML = '<div class="flash flash-error" role="alert">The server could not complete that request (' + evt.detail.xhr.status + ').</div>';
});

// <input data-select-on-focus>: select the whole value when focused (e.g. a token to copy).
document.addEventListener("focusin", function (evt) {
  if (evt.target.matches && evt.target.matches("[data-select-on-focus]")) evt.target.select();
});
