// Threshold slider on a model's results page: keep the slider and the number box in step, and say in
// plain words what the chosen threshold does on the validation images (same rule as the server: an answer is
// given when its confidence is at least the threshold). Loaded by _threshold.html, possibly many times
// (htmx swaps), so it registers its listener once.
(function () {
  if (window.thresholdSliderReady) return;
  window.thresholdSliderReady = true;

  function pct(fraction) { return window.studio.pct(fraction, 1); }

  // curve: {"total": n, "grid": [[answered, correct], ...]} with one point per 0.1% (stored by the server
  // when training finished). A threshold between two points is read from the next one up.
  function words(curve, t) {
    var steps = curve.grid.length - 1;
    var i = Math.min(steps, Math.max(0, Math.ceil(t * steps - 1e-9)));
    var answered = curve.grid[i][0], correct = curve.grid[i][1], total = curve.total;
    var studio = window.studio, threshold = pct(t);
    if (!answered) return studio.t("threshold_none", { threshold: threshold, n: total });
    return studio.t("threshold_some", { threshold: threshold, n: total, answered: studio.num(answered),
      correct: studio.pct(correct / answered), rest: studio.num(total - answered) });
  }

  function update(form, source) {
    var range = form.querySelector("[data-threshold-range]");
    var number = form.querySelector("[data-threshold-number]");
    var value = parseFloat(source.value);
    if (isNaN(value)) value = 0;
    value = Math.max(0, Math.min(100, value));
    if (source === range) number.value = value; else range.value = value;
    var curve = JSON.parse(form.querySelector("[data-threshold-curve]").textContent);
    form.querySelector("[data-threshold-words]").textContent = words(curve, value / 100);
    var card = form.closest(".threshold");
    var svg = card && card.querySelector(".threshold-chart");
    var marker = svg && svg.querySelector(".threshold-marker");
    if (marker) {
      var x = parseFloat(svg.dataset.left) + parseFloat(svg.dataset.width) * value / 100;
      marker.setAttribute("x1", x.toFixed(1));
      marker.setAttribute("x2", x.toFixed(1));
    }
  }

  document.addEventListener("input", function (evt) {
    var input = evt.target;
    if (!input.matches || !input.matches("[data-threshold-range], [data-threshold-number]")) return;
    var form = input.closest("form[data-threshold]");
    if (form) update(form, input);
  });
})();
