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

// The toast after a labeling or deleting action (with its Undo button) goes away after 10 s, or when
// dismissed; a new one (after an htmx swap) starts its own 10 s.
(function () {
  var timer = null;
  function start() {
    var toast = document.querySelector("[data-toast]");
    if (timer) clearTimeout(timer);
    if (toast) timer = setTimeout(function () { toast.remove(); }, 10000);
  }
  document.addEventListener("DOMContentLoaded", start);
  document.addEventListener("htmx:afterSwap", start);
  document.addEventListener("click", function (evt) {
    var close = evt.target.closest && evt.target.closest("[data-toast-close]");
    if (close) close.closest("[data-toast]").remove();
  });
})();
