// "Try it" page: send dropped images to the model's predict API and draw top-k bars per image; "Why?"
// asks the explain API which parts of an image mattered and darkens the rest of the model's crop.
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

  // POST a form's data to one of the model's JSON routes: the answer's body, or an Error saying (in the
  // page's language when its code is known) why it was refused; `refused` is said when the answer does not.
  function postForm(form, url, data, refused) {
    return fetch(url, {
      method: "POST", body: data, credentials: "same-origin",
      headers: { "X-CSRFToken": form.dataset.csrf, "Accept": "application/json" }
    }).then(function (resp) {
      return resp.json().then(function (body) { return { ok: resp.ok, body: body }; });
    }).then(function (res) {
      if (!res.ok) throw new Error(window.studio.codeText(res.body.code) || res.body.error || refused);
      return res.body;
    });
  }

  // --- "Why?": the importance map over the part of the picture the model sees -------------------------

  // The form names the predict route; the explain route sits beside it (/models/<id>/explain).
  function explainUrl(form) { return form.dataset.predictUrl.replace(/\/predict$/, "/explain"); }

  // The model's centre crop of the preview, drawn at the box's size (the map's tiles cover exactly it).
  function cropCanvas(img, crop, side) {
    var canvas = el("canvas", "explain-crop");
    var ratio = window.devicePixelRatio || 1;
    canvas.width = canvas.height = Math.round(side * ratio);
    if (img && img.naturalWidth) {
      var w = img.naturalWidth, h = img.naturalHeight;
      canvas.getContext("2d").drawImage(img, crop.left * w, crop.top * h, crop.width * w, crop.height * h,
                                        0, 0, canvas.width, canvas.height);
    }
    return canvas;
  }

  // Semi-transparent cells: the less a tile mattered, the darker it is drawn (a flat map darkens nothing).
  function heatGrid(answer, flat) {
    var grid = el("div", "explain-grid");
    grid.style.gridTemplateColumns = "repeat(" + answer.cols + ", 1fr)";
    grid.style.gridTemplateRows = "repeat(" + answer.rows + ", 1fr)";
    answer.grid.forEach(function (row) {
      row.forEach(function (value) {
        var cell = el("div", "explain-cell");
        cell.style.backgroundColor = "rgba(0, 0, 0, " + (flat ? 0 : 0.75 * (1 - value)).toFixed(3) + ")";
        grid.appendChild(cell);
      });
    });
    return grid;
  }

  function drawExplanation(card, box, answer) {
    var img = card.querySelector("img.thumb");
    var flat = !answer.grid.some(function (row) { return row.some(function (v) { return v > 0; }); });
    var legend = flat ? window.studio.t("why_flat", { name: answer.category })
      : window.studio.t("why_legend", { name: answer.category });
    box.textContent = "";
    var view = el("div", "explain-view");
    view.setAttribute("role", "img");
    view.setAttribute("aria-label", legend);
    view.appendChild(cropCanvas(img, answer.crop, 170));
    view.appendChild(heatGrid(answer, flat));
    box.appendChild(view);
    box.appendChild(el("p", "explain-legend", legend));
    box.appendChild(el("p", "explain-note muted", window.studio.t("why_crop")));
    if (img) img.hidden = true;  // the crop replaces the preview while the map is shown
  }

  function showExplanation(card, box, button, shown) {
    box.hidden = !shown;
    button.setAttribute("aria-expanded", shown ? "true" : "false");
    var img = card.querySelector("img.thumb");
    if (img) img.hidden = shown && !!box.querySelector(".explain-view");
  }

  function askWhy(form, card, file, box, button) {
    var data = new FormData();
    data.append("file", file, file.name);
    box.textContent = "";
    box.appendChild(el("p", "muted", window.studio.t("why_looking")));
    button.setAttribute("aria-busy", "true");
    return postForm(form, explainUrl(form), data, window.studio.t("why_failed")).then(function (answer) {
      drawExplanation(card, box, answer);
      card.dataset.explained = "1";
    }).catch(function (err) {
      box.textContent = "";
      box.appendChild(el("p", "error", err.message || window.studio.t("unreachable")));
    }).then(function () { button.removeAttribute("aria-busy"); });
  }

  var explainCount = 0;

  // A "Why?" button under an answered image (its map goes in the preview's place): the first press asks
  // the server, later ones hide or show the map again.
  function whyButton(form, card, file) {
    var button = el("button", "button small secondary explain-button", window.studio.t("why"));
    var box = el("div", "explain");
    box.id = "explain-" + (++explainCount);
    box.setAttribute("aria-live", "polite");
    box.hidden = true;
    button.type = "button";
    button.setAttribute("aria-expanded", "false");
    button.setAttribute("aria-controls", box.id);
    // every card has a "Why?": its file name says which picture this one is about
    var name = card.querySelector(".result-name");
    if (name) {
      name.id = name.id || box.id + "-name";
      button.setAttribute("aria-describedby", name.id);
    }
    button.addEventListener("click", function () {
      if (button.getAttribute("aria-busy")) return;
      var show = button.getAttribute("aria-expanded") !== "true";
      showExplanation(card, box, button, show);
      if (show && !card.dataset.explained) askWhy(form, card, file, box, button);
    });
    card.insertBefore(box, card.firstChild.nextSibling);  // where the preview is: the map takes its place
    return button;
  }

  function fillCard(card, answer, form, file) {
    var body = card.querySelector(".result-body");
    body.textContent = "";
    if (answer.error) {
      body.appendChild(el("p", "error", window.studio.codeText(answer.code) || answer.error));
      noPreview(card.querySelector("img.thumb"));
      return;
    }
    var verdict = answer.unknown
      ? el("p", "verdict unsure", window.studio.t("not_sure", { name: answer.top_k[0].category, confidence: percent(answer.confidence) }))
      : el("p", "verdict", answer.category);
    body.appendChild(verdict);
    answer.top_k.forEach(function (score, i) { body.appendChild(barRow(score, i === 0 && !answer.unknown)); });
    if (form && file) body.appendChild(whyButton(form, card, file));
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
    postForm(form, form.dataset.predictUrl, data, window.studio.t("refused")).then(function (body) {
      body.predictions.forEach(function (answer, i) { fillCard(cards[i], answer, form, files[i]); });
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
