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

// The prefilled model name (dataset · mode · date) follows the chosen mode until the user edits it.
document.addEventListener("change", function (evt) {
  var input = evt.target;
  if (!input.form || input.form.id !== "run-form" || input.type !== "radio") return;
  var name = input.form.querySelector("input[name=name][data-name-parts]");
  var mode = input.form.querySelector("input[name=mode]:checked");
  if (!name || !mode) return;
  var parts = name.dataset.nameParts.split("|");
  var labels = Array.prototype.map.call(input.form.querySelectorAll("input[name=mode]"), function (r) { return r.dataset.label; });
  var untouched = labels.some(function (l) { return name.value === parts[0] + l + parts[1]; });
  if (untouched) name.value = parts[0] + mode.dataset.label + parts[1];
});
