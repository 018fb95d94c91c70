// Adding images to a dataset from the browser, any number at once.
// Loose images are sent in batches (at most data-batch-files files / data-batch-bytes bytes per request)
// with one overall progress bar; each .zip is sent on its own and becomes a background import whose
// progress card (images/_import_progress.html) polls itself. Without JS the form posts normally.
(function () {
  "use strict";

  function csrfToken() {
    try { return JSON.parse(document.body.getAttribute("hx-headers"))["X-CSRFToken"]; } catch (e) { /* fall through */ }
    var input = document.querySelector('input[name="csrf_token"]');
    return input ? input.value : "";
  }

  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text) node.textContent = text;
    return node;
  }

  function n(x) { return window.studio.num(x); }
  function t(key, values) { return window.studio.t(key, values); }
  function isZip(file) { return /\.zip$/i.test(file.name); }

  // Split files into requests of at most maxFiles files and (unless one file is bigger) maxBytes bytes.
  function batches(files, maxFiles, maxBytes) {
    var out = [], current = [], bytes = 0;
    files.forEach(function (file) {
      if (current.length && (current.length >= maxFiles || bytes + file.size > maxBytes)) {
        out.push(current); current = []; bytes = 0;
      }
      current.push(file); bytes += file.size;
    });
    if (current.length) out.push(current);
    return out;
  }

  // One request; resolves with {status, body}; status 0 = network error or stopped.
  function send(job, files, onProgress) {
    return new Promise(function (resolve) {
      var data = new FormData();
      files.forEach(function (file) { data.append("files", file, file.name); });
      var xhr = new XMLHttpRequest();
      job.xhr = xhr;
      xhr.open("POST", job.form.action);
      xhr.setRequestHeader("X-CSRFToken", csrfToken());
      xhr.setRequestHeader("Accept", "application/json");
      xhr.upload.onprogress = function (e) { if (e.lengthComputable) onProgress(e.loaded / e.total); };
      xhr.onload = function () {
        var body = {};
        try { body = JSON.parse(xhr.responseText); } catch (e) { /* not JSON */ }
        resolve({ status: xhr.status, body: body });
      };
      xhr.onerror = xhr.onabort = function () { resolve({ status: 0, body: {} }); };
      xhr.send(data);
    });
  }

  function wait(ms) { return new Promise(function (resolve) { setTimeout(resolve, ms); }); }

  // Send, and once more after a pause when the network or the server failed (not for refusals); over the
  // upload rate limit (429), wait as long as the server says and send the same files again.
  async function sendWithRetry(job, files, onProgress) {
    var answer = await send(job, files, onProgress);
    if ((answer.status === 0 || answer.status >= 500) && !job.stopped) {
      await wait(1500);
      answer = await send(job, files, onProgress);
    }
    for (var tries = 0; answer.status === 429 && !job.stopped && tries < 10; tries++) {
      await wait(1000 * Math.min(120, Math.max(1, answer.body.retry_after || 5)));
      if (!job.stopped) answer = await send(job, files, onProgress);
    }
    return answer;
  }

  // ---- the progress panel ------------------------------------------------------------------------
  function panel(box, files) {
    box.innerHTML = "";
    var ui = {
      status: el("p", "ds-upload-status"),
      bar: el("div", "progress"),
      counts: el("p", "ds-upload-counts muted"),
      errors: el("ul", "ds-results"),
      totalBytes: files.reduce(function (s, f) { return s + f.size; }, 0) || 1,
      totalFiles: files.length, sentBytes: 0, sentFiles: 0, added: 0, duplicates: 0, failed: 0, imports: 0
    };
    ui.status.setAttribute("role", "status");
    ui.bar.setAttribute("role", "progressbar");
    ui.bar.setAttribute("aria-label", t("upload_progress"));
    ui.bar.setAttribute("aria-valuemin", "0");
    ui.bar.setAttribute("aria-valuemax", "100");
    ui.bar.appendChild(el("div"));
    [ui.status, ui.bar, ui.counts, ui.errors].forEach(function (node) { box.appendChild(node); });
    showBar(ui, 0);
    return ui;
  }

  function showBar(ui, currentBytes) {
    var pct = Math.min(100, Math.round(100 * (ui.sentBytes + currentBytes) / ui.totalBytes));
    ui.bar.firstChild.style.width = pct + "%";
    ui.bar.setAttribute("aria-valuenow", String(pct));
  }

  function showCounts(ui) {
    var parts = [];
    if (ui.sentFiles > ui.imports) parts.push(t("added", { n: ui.added }));
    if (ui.duplicates) parts.push(t("duplicates", { n: ui.duplicates }));
    if (ui.failed) parts.push(t("unusable", { n: ui.failed }));
    if (ui.imports) parts.push(t("zips", { n: ui.imports }));
    ui.counts.textContent = parts.join(" · ");
  }

  function addError(ui, name, message) {
    ui.failed += 1;
    if (ui.errors.children.length < 100) {
      var row = el("li", "ds-result ds-result-error");
      row.appendChild(el("span", "ds-result-name", name));
      row.appendChild(el("span", "", message));
      ui.errors.appendChild(row);
    }
  }

  function record(ui, files, answer) {
    var results = answer.body.results || [];
    results.forEach(function (r) {
      if (r.status === "added") ui.added += 1;
      else if (r.status === "duplicate") ui.duplicates += 1;
      else addError(ui, r.filename, r.message);
    });
    (answer.body.imports || []).forEach(function (imp) { ui.imports += 1; showImport(imp); });
    if (!(answer.status === 200 || answer.status === 202)) {
      var why = answer.body.error || (answer.status === 413 ? t("too_large")
        : t("upload_failed", { status: answer.status || t("network_error") }));
      files.forEach(function (f) { addError(ui, f.name, why); });
    }
  }

  function showImport(imp) {
    var list = document.getElementById("imports");
    if (list && window.htmx) window.htmx.ajax("GET", imp.page_url, { target: "#imports", swap: "afterbegin" });
  }

  // ---- the whole upload --------------------------------------------------------------------------
  async function sendAll(job, ui, groups) {
    for (var i = 0; i < groups.length && !job.stopped; i++) {
      var files = groups[i];
      var bytes = files.reduce(function (s, f) { return s + f.size; }, 0);
      ui.status.textContent = files.length === 1 ? t("sending_one", { name: files[0].name })
        : t("sending_files", { first: n(ui.sentFiles + 1), last: n(ui.sentFiles + files.length), total: n(ui.totalFiles) });
      var answer = await sendWithRetry(job, files, function (fraction) { showBar(ui, fraction * bytes); });
      if (job.stopped) break;
      record(ui, files, answer);
      ui.sentBytes += bytes;
      ui.sentFiles += files.length;
      showBar(ui, 0);
      showCounts(ui);
      if ([401, 403, 404].indexOf(answer.status) >= 0) { job.stopped = true; break; }  // no point going on
    }
  }

  function finalText(ui, stopped) {
    var text = (stopped ? t("stopped", { sent: n(ui.sentFiles), n: ui.totalFiles })
      : t("files_sent", { n: ui.totalFiles })) + " ";
    if (ui.sentFiles > ui.imports) text += nothingAdded(ui) || t("images_added", { n: ui.added });
    if (ui.imports) text += " " + t("zips_background", { n: ui.imports });
    return text;
  }

  // Loose files sent and not one added: said as such (not "0 images added", which reads like success);
  // why each was refused is in the list below.
  function nothingAdded(ui) {
    if (ui.added) return "";
    if (ui.failed) return t("nothing_added", { n: ui.failed });
    if (ui.duplicates) return t("nothing_new", { n: ui.duplicates });
    return "";
  }

  async function uploadAll(form) {
    var input = form.querySelector('input[type="file"]');
    var files = Array.prototype.slice.call(input.files);
    if (!files.length) {  // say why nothing happens
      var box = form.parentNode.querySelector("[data-upload-results]");
      box.textContent = "";
      box.appendChild(el("p", "ds-upload-status error", t("choose_first")));
      input.focus();
      return;
    }
    var maxFiles = parseInt(form.dataset.batchFiles, 10) || 100;
    var maxBytes = parseInt(form.dataset.batchBytes, 10) || 50 * 1048576;
    var zips = files.filter(isZip), images = files.filter(function (f) { return !isZip(f); });
    var groups = zips.map(function (z) { return [z]; }).concat(batches(images, maxFiles, maxBytes));
    var job = { form: form, stopped: false, xhr: null };
    var button = form.querySelector("[data-upload-button]"), stop = form.querySelector("[data-upload-stop]");
    var ui = panel(form.parentNode.querySelector("[data-upload-results]"), files);
    button.disabled = true;
    stop.hidden = false;
    stop.onclick = function () { job.stopped = true; if (job.xhr) job.xhr.abort(); };
    await sendAll(job, ui, groups);
    ui.status.textContent = finalText(ui, job.stopped);
    ui.status.classList.toggle("error", ui.sentFiles > ui.imports && !ui.added && ui.failed > 0);
    button.disabled = false;
    stop.hidden = true;
    input.value = "";  // the zone is ready for the next files
    form.querySelector("[data-drop] strong").textContent = t("drop_more");
    form.querySelector("[data-drop-hint]").textContent = form.querySelector("[data-drop-hint]").dataset.default;
    refreshSummary();
  }

  function refreshSummary() {
    if (window.htmx && document.getElementById("summary")) {
      window.htmx.ajax("GET", window.location.pathname, { target: "#summary", select: "#summary", swap: "outerHTML" });
    }
    if (window.htmx && document.getElementById("train-button")) {  // what training still needs has changed
      window.htmx.ajax("GET", window.location.pathname, { target: "#train-button", select: "#train-button", swap: "outerHTML" });
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
    if (form && e.target.type === "file" && e.target.files.length) {
      form.querySelector("[data-drop] strong").textContent = t("files_chosen", { n: e.target.files.length });
      form.querySelector("[data-drop-hint]").textContent = t("click_upload", { n: e.target.files.length });
    }
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

  // When an import card stops polling (its import ended), the dataset's counts have changed.
  var ended = {};
  function noteEnded(initial) {
    document.querySelectorAll("[data-import]").forEach(function (card) {
      var status = card.getAttribute("data-import-status");
      if (status === "queued" || status === "running" || ended[card.id]) return;
      ended[card.id] = true;
      if (!initial) refreshSummary();
    });
  }
  document.addEventListener("DOMContentLoaded", function () { noteEnded(true); });
  document.addEventListener("htmx:afterSettle", function () { noteEnded(false); });
})();
