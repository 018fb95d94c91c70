// Training pages: compare two ticked models; pick a matching mode.

// The compare button works once exactly two models are ticked, and the hint shows until then (without
// scripts the server answers any other number with a message on the list).
(function () {
  function sync(form) {
    var ticked = form.querySelectorAll("input[name=pick]:checked").length;
    var button = form.querySelector("[data-compare-button]"), hint = form.querySelector("[data-compare-hint]");
    if (button) button.disabled = ticked !== 2;
    if (hint) hint.hidden = ticked === 2;
  }
  function syncAll() { Array.prototype.forEach.call(document.querySelectorAll("form[data-compare]"), sync); }
  document.addEventListener("change", function (evt) {
    var form = evt.target.form;
    if (form && form.hasAttribute("data-compare")) sync(form);
  });
  syncAll();
  window.addEventListener("pageshow", syncAll);  // boxes the back button restores
})();

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

// The run page while it trains: the tab's title shows the progress ("42% · name"), and, when the user
// asked for it, a notification says the run ended while the tab was in the background.
(function () {
  var base = document.title, watched = false;
  function section() { return document.getElementById("run-progress"); }
  function update() {
    var live = section();
    if (!live) return;
    var status = live.dataset.runStatus, finished = ["succeeded", "failed", "cancelled"].indexOf(status) >= 0;
    var button = live.querySelector("[data-notify-button]");
    if (button) button.hidden = !("Notification" in window) || Notification.permission !== "default";
    if (!finished) {
      watched = true;
      document.title = live.dataset.titlePrefix + base;
      return;
    }
    if (!watched) return;  // finished before this page was opened: nothing to announce
    watched = false;
    document.title = (status === "succeeded" ? "✓ " : "✗ ") + base;
    if ("Notification" in window && Notification.permission === "granted" && document.hidden) {
      new Notification(window.studio.t("run_" + status, { name: live.dataset.runName }));
    }
  }
  document.addEventListener("click", function (evt) {
    var button = evt.target.closest && evt.target.closest("[data-notify-button]");
    if (!button || !("Notification" in window)) return;
    Notification.requestPermission().then(update);
  });
  document.addEventListener("htmx:afterSettle", update);  // the progress section is swapped every second
  document.addEventListener("visibilitychange", function () {
    if (!document.hidden && /^[✓✗] /.test(document.title)) document.title = base;  // seen: back to the plain title
  });
  update();
})();
