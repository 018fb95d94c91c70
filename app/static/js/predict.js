// "Try it" page: send dropped images to the model's predict API and draw top-k bars per image.
// Plain JS, no dependencies.
(function () {
  "use strict";

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function percent(x) { return window.studio.pct(x, 1); }

  function barRow(score, best) {
    var row = el("div", "bar-row" + (best ? " best" : ""));
    row.appendChild(el("span", "bar-label", score.category));
    var track = el("div", "bar-track");
    var fill = el("div", "bar-fill");
    fill.style.width = Math.max(1, score.confidence * 100) + "%";
    track.appendChild(fill);
    row.appendChild(track);
    row.appendChild(el("span", "bar-value", percent(score.confidence)));
    return row;
  }

  // A file the browser cannot show (or the server refused) gets a placeholder, never a broken image.
  function noPreview(img) {
    if (!img || !img.parentNode) return;
    var box = el("div", "thumb thumb-missing");
    box.setAttribute("role", "img");
    box.setAttribute("aria-label", window.studio.t("no_preview_for", { name: img.alt }));
    box.appendChild(el("span", "", window.studio.t("no_preview")));
    img.parentNode.replaceChild(box, img);
  }

  // The API's answers are English with a stable code; the page says the known ones in its own language.
  function codeText(code) {
    var text = code ? window.studio.t("code_" + code) : "";
    return text === "code_" + code ? "" : text;
  }

  function fillCard(card, answer) {
    var body = card.querySelector(".result-body");
    body.textContent = "";
    if (answer.error) {
      body.appendChild(el("p", "error", codeText(answer.code) || answer.error));
      noPreview(card.querySelector("img.thumb"));
      return;
    }
    var verdict = answer.unknown
      ? el("p", "verdict unsure", window.studio.t("not_sure", { name: answer.top_k[0].category, confidence: percent(answer.confidence) }))
      : el("p", "verdict", answer.category);
    body.appendChild(verdict);
    answer.top_k.forEach(function (score, i) { body.appendChild(barRow(score, i === 0 && !answer.unknown)); });
  }

  function newCard(file) {
    var card = el("article", "result");
    var img = el("img", "thumb");
    img.alt = file.name;
    img.src = URL.createObjectURL(file);
    img.onload = function () { URL.revokeObjectURL(img.src); };
    img.onerror = function () { URL.revokeObjectURL(img.src); noPreview(img); };
    card.appendChild(img);
    var body = el("div", "result-body");
    body.appendChild(el("p", "muted", window.studio.t("thinking")));
    card.appendChild(el("p", "result-name", file.name));
    card.appendChild(body);
    return card;
  }

  function send(form, files) {
    var results = document.getElementById("try-results");
    var status = document.getElementById("try-status");
    var cards = files.map(newCard);
    cards.slice().reverse().forEach(function (c) { results.insertBefore(c, results.firstChild); });
    var data = new FormData();
    files.forEach(function (f) { data.append("file", f, f.name); });
    data.append("top_k", form.querySelector("[name=top_k]").value);
    status.textContent = window.studio.t("classifying", { n: files.length });
    fetch(form.dataset.predictUrl, {
      method: "POST", body: data, credentials: "same-origin",
      headers: { "X-CSRFToken": form.dataset.csrf, "Accept": "application/json" }
    }).then(function (resp) {
      return resp.json().then(function (body) { return { ok: resp.ok, body: body }; });
    }).then(function (res) {
      if (!res.ok) throw new Error(codeText(res.body.code) || res.body.error || window.studio.t("refused"));
      res.body.predictions.forEach(function (answer, i) { fillCard(cards[i], answer); });
      status.textContent = window.studio.t("done");
    }).catch(function (err) {
      cards.forEach(function (c) { fillCard(c, { error: err.message || window.studio.t("unreachable") }); });
      status.textContent = "";
    });
  }

  function setUpTry(form) {
    var input = form.querySelector("input[type=file]");
    function take(list) {
      var files = Array.prototype.filter.call(list, function (f) { return f.size > 0; });
      if (files.length) send(form, files);
    }
    input.addEventListener("change", function () { take(input.files); input.value = ""; });
    ["dragenter", "dragover"].forEach(function (name) {
      form.addEventListener(name, function (e) { e.preventDefault(); form.classList.add("over"); });
    });
    ["dragleave", "drop"].forEach(function (name) {
      form.addEventListener(name, function (e) { e.preventDefault(); form.classList.remove("over"); });
    });
    form.addEventListener("drop", function (e) { take(e.dataTransfer.files); });
    form.addEventListener("submit", function (e) { e.preventDefault(); });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var form = document.getElementById("try-form");
    if (form) setUpTry(form);
  });
})();
