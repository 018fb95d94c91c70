// Small progressive enhancements shared by every page. Page-specific code lives beside its template.
document.addEventListener("htmx:responseError", function (evt) {
  var box = document.getElementById("flashes");
  if (box) box.innerHTML = '<div class="flash flash-error" role="alert">The server could not complete that request (' + evt.detail.xhr.status + ').</div>';
});
