// Datasets pages: uploads with a progress bar per file, and the labeling grid (selection + keys).
(function () {
  "use strict";

  function csrfToken() {
    try { return JSON.parse(document.body.getAttribute("hx-headers"))["X-CSRFToken"]; } catch (e) { /* fall through */ }
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.content : "";
  }

  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text) node.textContent = text;
    return node;
  }

  // ---- upload ---------------------------------------------------------------------------------
  function sendFile(form, file, row) {
    return new Promise(function (resolve) {
      var data = new FormData();
      data.append("files", file, file.name);
      var xhr = new XMLHttpRequest();
      xhr.open("POST", form.action);
      xhr.setRequestHeader("X-CSRFToken", csrfToken());
      xhr.setRequestHeader("Accept", "application/json");
      var bar = row.querySelector(".progress > div");
      xhr.upload.onprogress = function (e) {
        if (e.lengthComputable) bar.style.width = Math.round(100 * e.loaded / e.total) + "%";
      };
      xhr.onload = function () {
        var body = {};
        try { body = JSON.parse(xhr.responseText); } catch (e) { /* not JSON */ }
        bar.style.width = "100%";
        showResult(row, xhr.status, body);
        resolve();
      };
      xhr.onerror = function () { showResult(row, 0, {}); resolve(); };
      xhr.send(data);
    });
  }

  function showResult(row, status, body) {
    var msg = row.querySelector(".ds-result-msg");
    if (status === 200 && body.results) {
      var results = body.results;
      var bad = results.filter(function (r) { return r.status === "error"; });
      row.className = "ds-result ds-result-" + (bad.length ? "error" : results.length && results[0].status);
      msg.textContent = results.length === 1 ? results[0].message : body.summary;
      bad.slice(0, 20).forEach(function (r) {
        if (results.length > 1) row.appendChild(el("div", "ds-result-sub", r.filename + ": " + r.message));
      });
    } else {
      row.className = "ds-result ds-result-error";
      msg.textContent = body.error || (status === 413 ? "The upload is too large. Send fewer or smaller files at once."
        : "Upload failed (" + (status || "network error") + "). Try again.");
    }
  }

  async function uploadAll(form) {
    var input = form.querySelector('input[type="file"]');
    var box = form.parentNode.querySelector("[data-upload-results]");
    var files = Array.prototype.slice.call(input.files);
    if (!files.length) return;
    box.innerHTML = "";
    var list = el("ul", "ds-results");
    box.appendChild(list);
    var rows = files.map(function (file) {
      var row = el("li", "ds-result");
      row.appendChild(el("span", "ds-result-name", file.name));
      row.appendChild(el("span", "ds-result-msg muted", "waiting…"));
      var progress = el("div", "progress");
      progress.appendChild(el("div"));
      progress.firstChild.style.width = "0%";
      row.appendChild(progress);
      list.appendChild(row);
      return row;
    });
    form.querySelector("[data-upload-button]").disabled = true;
    for (var i = 0; i < files.length; i++) {  // one at a time: fair to the server, clear progress
      rows[i].querySelector(".ds-result-msg").textContent = "uploading…";
      await sendFile(form, files[i], rows[i]);
    }
    form.querySelector("[data-upload-button]").disabled = false;
    input.value = "";
    if (window.htmx && document.getElementById("summary")) {
      window.htmx.ajax("GET", window.location.pathname, { target: "#summary", select: "#summary", swap: "outerHTML" });
    }
  }

  document.addEventListener("submit", function (e) {
    var form = e.target.closest("[data-upload]");
    if (!form || !window.FormData || !window.Promise) return;  // no JS features: plain form post
    e.preventDefault();
    uploadAll(form);
  });

  document.addEventListener("change", function (e) {
    var form = e.target.closest && e.target.closest("[data-upload]");
    if (form && e.target.type === "file") form.querySelector("[data-drop] strong").textContent =
      e.target.files.length + " file" + (e.target.files.length === 1 ? "" : "s") + " chosen";
  });

  ["dragenter", "dragover"].forEach(function (type) {
    document.addEventListener(type, function (e) {
      var drop = e.target.closest && e.target.closest("[data-drop]");
      if (drop) { e.preventDefault(); drop.classList.add("dragging"); }
    });
  });
  document.addEventListener("dragleave", function (e) {
    var drop = e.target.closest && e.target.closest("[data-drop]");
    if (drop) drop.classList.remove("dragging");
  });
  document.addEventListener("drop", function (e) {
    var drop = e.target.closest && e.target.closest("[data-drop]");
    if (!drop) return;
    e.preventDefault();
    drop.classList.remove("dragging");
    var form = drop.closest("[data-upload]");
    form.querySelector('input[type="file"]').files = e.dataTransfer.files;
    uploadAll(form);
  });

  // ---- labeling grid --------------------------------------------------------------------------
  var lastClicked = null;

  function tiles() { return Array.prototype.slice.call(document.querySelectorAll("[data-tile]")); }

  function refreshSelection() {
    var n = 0;
    tiles().forEach(function (t) {
      var box = t.querySelector("input[type=checkbox]");
      var on = !!(box && box.checked);
      t.classList.toggle("selected", on);
      if (on) n++;
    });
    document.querySelectorAll("[data-selected-count]").forEach(function (s) { s.textContent = n; });
    return n;
  }

  function setChecked(tile, on) {
    var box = tile.querySelector("input[type=checkbox]");
    if (box) box.checked = on;
  }

  document.addEventListener("click", function (e) {
    var tile = e.target.closest("[data-tile]");
    if (tile && !e.target.closest(".ds-tile-open") && tile.querySelector("input[type=checkbox]")) {
      e.preventDefault();  // we toggle ourselves so shift-click can select a range
      var all = tiles();
      var box = tile.querySelector("input[type=checkbox]");
      if (e.shiftKey && lastClicked && all.indexOf(lastClicked) >= 0) {
        var a = all.indexOf(lastClicked), b = all.indexOf(tile);
        all.slice(Math.min(a, b), Math.max(a, b) + 1).forEach(function (t) { setChecked(t, true); });
      } else {
        box.checked = !box.checked;
      }
      lastClicked = tile;
      tile.focus();
      refreshSelection();
      return;
    }
    var action = e.target.closest("[data-label-form] .ds-actions button[type=submit]");
    if (action && refreshSelection() === 0) {
      e.preventDefault();
      var flashes = document.getElementById("flashes");
      if (flashes) flashes.innerHTML = '<div class="flash flash-info" role="status">Select one or more images first (click them, or press a to select all on this page).</div>';
      return;
    }
    if (e.target.closest("[data-select-all]")) { tiles().forEach(function (t) { setChecked(t, true); }); refreshSelection(); }
    if (e.target.closest("[data-select-none]")) { tiles().forEach(function (t) { setChecked(t, false); }); refreshSelection(); }
  });

  function moveFocus(current, key) {
    var all = tiles();
    var i = all.indexOf(current);
    if (i < 0) { if (all[0]) all[0].focus(); return; }
    var step = 1;
    if (key === "ArrowUp" || key === "ArrowDown") {  // a row is as many tiles as share the first one's top
      var top = all[0].offsetTop;
      step = all.filter(function (t) { return t.offsetTop === top; }).length || 1;
    }
    var next = all[i + ((key === "ArrowLeft" || key === "ArrowUp") ? -step : step)];
    if (next) next.focus();
  }

  function applyToSelection(button, focused) {
    if (!button) return;
    if (refreshSelection() === 0 && focused) { setChecked(focused, true); refreshSelection(); }
    if (refreshSelection() > 0) button.click();
  }

  document.addEventListener("keydown", function (e) {
    if (!document.querySelector("[data-label-form]") || e.ctrlKey || e.metaKey || e.altKey) return;
    if (e.target.closest("input[type=text], input:not([type]), select, textarea")) return;
    var focused = e.target.closest ? e.target.closest("[data-tile]") : null;
    if (e.key.indexOf("Arrow") === 0) { e.preventDefault(); moveFocus(focused, e.key); return; }
    if (e.key === " " && focused) { e.preventDefault(); focused.click(); return; }
    if (/^[1-9]$/.test(e.key)) { applyToSelection(document.querySelector('[data-class-key="' + e.key + '"]'), focused); return; }
    if (e.key === "u") { applyToSelection(document.querySelector("[data-unlabel]"), focused); return; }
    if (e.key === "a") { tiles().forEach(function (t) { setChecked(t, true); }); refreshSelection(); return; }
    if (e.key === "Delete" || e.key === "Backspace") { e.preventDefault(); applyToSelection(document.querySelector("[data-delete]"), focused); }
  });

  document.addEventListener("htmx:afterSwap", function () {
    lastClicked = null;
    refreshSelection();
    var first = document.querySelector("[data-tile]");
    if (first && document.activeElement === document.body) first.focus();
  });
  document.addEventListener("DOMContentLoaded", refreshSelection);
})();
