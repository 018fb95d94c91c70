// Training pages: tick at most two models to compare; pick a matching mode.
document.addEventListener("submit", function (evt) {
  var form = evt.target;
  if (form.hasAttribute && form.hasAttribute("data-compare")) {
    var ticked = form.querySelectorAll("input[name=pick]:checked");
    if (ticked.length !== 2) { evt.preventDefault(); window.alert("Tick exactly two models to compare."); }
  }
});
document.addEventListener("change", function (evt) {
  var input = evt.target;
  if (!input.form || input.form.id !== "run-form" || input.type !== "radio") return;
  var form = input.form;
  if (input.name === "architecture") {
    // From-scratch networks only train in "scratch" mode, pretrained ones in the other modes.
    var scratch = input.dataset.pretrained === "no";
    var mode = form.querySelector("input[name=mode]:checked");
    if (scratch && (!mode || mode.value !== "scratch")) form.querySelector("input[name=mode][value=scratch]").checked = true;
    if (!scratch && mode && mode.value === "scratch") form.querySelector("input[name=mode][value=quick]").checked = true;
  }
  if (input.name === "mode") {
    var arch = form.querySelector("input[name=architecture]:checked");
    var wantScratch = input.value === "scratch";
    if (arch && (arch.dataset.pretrained === "no") !== wantScratch) {
      var pick = form.querySelector("input[name=architecture][data-pretrained=" + (wantScratch ? "no" : "yes") + "]:not(:disabled)");
      if (pick) pick.checked = true;
    }
  }
});
