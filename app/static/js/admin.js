// Admin -> Networks: show how far a weights file upload has got (they are 20-110 MB).
document.addEventListener("htmx:xhr:progress", function (evt) {
  var form = evt.target;
  if (!form.classList || !form.classList.contains("upload-weights") || !evt.detail.lengthComputable) return;
  var bar = form.querySelector(".upload-progress");
  if (!bar) return;
  bar.hidden = false;
  bar.max = evt.detail.total;
  bar.value = evt.detail.loaded;
});
