// "Use camera": this device's camera on two pages. Plain JS, no dependencies.
// - [data-camera=capture] (a dataset page, images/_camera.html): one click takes one photo; holding "Hold to
//   record" (mouse, finger, Space or Enter) takes BURST_FPS photos a second. The photos (JPEG from a canvas,
//   at most FRAME_MAX px on their long side) are sent in batches through the page's upload route with the
//   chosen class (label_id), one request at a time; the dataset's counts are refreshed after.
// - [data-camera=live] (the "Try it" page, predict/_camera.html): a frame goes to the try form's
//   data-predict-url, its answer is shown, and only then the next frame is sent.
// The camera starts only when asked, and every track is stopped on Stop, when the panel is closed, when the
// page is hidden and when it is left.
(function () {
  "use strict";

  var FRAME_MAX = 640;        // px, the long side of a photo or frame
  var BURST_FPS = 5;
  var BATCH_FILES = 10;       // photos per upload request
  var BATCH_WAIT_MS = 1000;   // while recording: send what was taken at least this often
  var SHOT_WAIT_MS = 300;     // a single photo: sent almost at once (a quick second click joins it)
  var LIVE_GAP_MS = 250;      // at most 4 live frames a second: under the anonymous predict rate limit

  function t(key, values) { return window.studio.t(key, values); }
  function wait(ms) { return new Promise(function (resolve) { setTimeout(resolve, ms); }); }
  function q(root, name) { return root.querySelector("[data-camera-" + name + "]"); }

  function csrfToken() {
    try { return JSON.parse(document.body.getAttribute("hx-headers"))["X-CSRFToken"]; } catch (e) { /* fall through */ }
    var input = document.querySelector('input[name="csrf_token"]');
    return input ? input.value : "";
  }

  // Why getUserMedia failed, in the page's language.
  function cameraError(err) {
    var name = (err && err.name) || "";
    if (!window.isSecureContext) return t("cam_insecure");
    if (name === "NotAllowedError" || name === "PermissionDeniedError" || name === "SecurityError") return t("cam_denied");
    if (name === "NotFoundError" || name === "DevicesNotFoundError" || name === "OverconstrainedError") return t("cam_none");
    if (name === "NotReadableError" || name === "TrackStartError" || name === "AbortError") return t("cam_busy");
    return t("cam_failed", { name: name || String(err) });
  }

  function retryAfter(resp, body) {
    var s = (body && body.retry_after) || parseInt(resp.headers.get("Retry-After"), 10) || 5;
    return 1000 * Math.min(120, Math.max(1, s));
  }

  // ---- the camera itself (both pages) ------------------------------------------------------------
  function Camera(root, hooks) {
    this.root = root;
    this.hooks = hooks;
    this.video = q(root, "video");
    this.stream = null;
    this.wanted = false;  // false once Stop was pressed (or the page hidden) while the browser was asking
    this.canvas = document.createElement("canvas");
    var self = this;
    q(root, "start").addEventListener("click", function () { self.start(); });
    q(root, "stop").addEventListener("click", function () { self.stop(t("cam_off")); });
    q(root, "panel").addEventListener("toggle", function (e) { if (!e.target.open) self.stop(""); });
  }

  Camera.prototype.say = function (text) { q(this.root, "status").textContent = text; };

  Camera.prototype.fail = function (text) {
    var box = q(this.root, "error");
    box.textContent = text || "";
    box.hidden = !text;
  };

  Camera.prototype.show = function (on) {
    var root = this.root;
    q(root, "start").hidden = on;
    q(root, "stop").hidden = !on;
    q(root, "stage").hidden = !on;
    root.querySelectorAll("[data-camera-controls]").forEach(function (node) { node.hidden = !on; });
  };

  Camera.prototype.start = async function () {
    this.fail("");
    if (this.stream) return;
    if (!window.isSecureContext) { this.fail(t("cam_insecure")); return; }
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) { this.fail(t("cam_unsupported")); return; }
    var button = q(this.root, "start");
    button.disabled = true;
    this.wanted = true;
    this.say(t("cam_starting"));
    try {
      var stream = await navigator.mediaDevices.getUserMedia({
        audio: false, video: { facingMode: "environment", width: { ideal: 1280 }, height: { ideal: 720 } } });
      if (!this.wanted || document.hidden) { stopTracks(stream); this.say(""); return; }
      this.stream = stream;
      this.video.srcObject = stream;
      this.show(true);
      await this.video.play();
      await this.ready();
      this.say(t("cam_on"));
      q(this.root, "stop").focus();
      this.hooks.started();
    } catch (err) {
      this.stop("");
      this.fail(cameraError(err));
    } finally {
      button.disabled = false;
    }
  };

  // Resolves once the video has a size (the first frame arrived).
  Camera.prototype.ready = function () {
    var video = this.video;
    return new Promise(function (resolve) {
      (function check(tries) {
        if (video.videoWidth || tries > 100) resolve(); else setTimeout(function () { check(tries + 1); }, 50);
      })(0);
    });
  };

  Camera.prototype.stop = function (why) {
    var wasOn = !!this.stream;
    this.wanted = false;
    if (this.stream) stopTracks(this.stream);
    this.stream = null;
    this.video.srcObject = null;
    var focusInside = this.root.contains(document.activeElement) && document.activeElement !== q(this.root, "start");
    this.show(false);
    if (wasOn) this.hooks.stopped();
    if (why !== undefined && (wasOn || why === "")) this.say(why);
    if (focusInside && wasOn) q(this.root, "start").focus();  // the focused button was just hidden
  };

  // One frame as a JPEG Blob: the whole picture, its long side at most FRAME_MAX px.
  Camera.prototype.frame = function (quality) {
    var video = this.video, canvas = this.canvas;
    var w = video.videoWidth, h = video.videoHeight;
    if (!this.stream || !w || !h) return Promise.resolve(null);
    var scale = Math.min(1, FRAME_MAX / Math.max(w, h));
    canvas.width = Math.round(w * scale);
    canvas.height = Math.round(h * scale);
    canvas.getContext("2d").drawImage(video, 0, 0, canvas.width, canvas.height);
    return new Promise(function (resolve) { canvas.toBlob(resolve, "image/jpeg", quality); });
  };

  function stopTracks(stream) { stream.getTracks().forEach(function (track) { track.stop(); }); }

  var cameras = [];
  function stopAll(why) { cameras.forEach(function (cam) { if (cam.stream || cam.wanted) cam.stop(why); }); }
  document.addEventListener("visibilitychange", function () { if (document.hidden) stopAll(t("cam_hidden")); });
  window.addEventListener("pagehide", function () { stopAll(""); });

  // ---- taking photos into a dataset ----------------------------------------------------------------
  function setUpCapture(root) {
    var s = { taken: 0, sent: 0, added: 0, duplicates: 0, failed: 0, queue: [], sending: false,
              timer: null, burst: null, refresh: null, seq: 0,
              dropped: 0 };  // photos refused as a batch (not stored), counted in `failed` too
    var burstButton = q(root, "burst");
    var cam = new Camera(root, { started: function () {}, stopped: endBurst });
    cameras.push(cam);

    function showCounts() {
      var parts = [t("cam_taken", { n: s.taken }), t("cam_sent", { n: s.sent }), t("added", { n: s.added })];
      if (s.duplicates) parts.push(t("duplicates", { n: s.duplicates }));
      if (s.failed) parts.push(t("unusable", { n: s.failed }));
      var waiting = s.taken - s.sent - s.dropped;
      if (waiting > 0) parts.push(t("cam_waiting", { n: waiting }));
      q(root, "counts").textContent = parts.join(" · ");
    }

    function flash() {
      var stage = q(root, "stage");
      stage.classList.add("cam-flash");
      setTimeout(function () { stage.classList.remove("cam-flash"); }, 80);
    }

    function takePhoto() {
      if (!cam.stream) return;
      if (!cam.video.videoWidth) { cam.say(t("cam_not_ready")); return; }
      var label = q(root, "class").value;
      var name = "camera-" + new Date().toISOString().replace(/[-:]/g, "").replace(/\..*/, "") + "-" + (++s.seq) + ".jpg";
      s.taken += 1;
      flash();
      showCounts();
      cam.frame(0.9).then(function (blob) {
        if (!blob) { s.taken -= 1; showCounts(); return; }
        s.queue.push({ blob: blob, name: name, label: label });
        schedule();
      });
    }

    function schedule() {
      if (s.queue.length >= BATCH_FILES) { sendSoon(0); return; }
      sendSoon(s.burst ? BATCH_WAIT_MS : SHOT_WAIT_MS);
    }

    function sendSoon(ms) {
      if (s.timer && ms > 0) return;
      clearTimeout(s.timer);
      s.timer = setTimeout(function () { s.timer = null; pump(); }, ms);
    }

    async function pump() {
      if (s.sending || !s.queue.length) return;
      s.sending = true;
      var label = s.queue[0].label, batch = [];
      while (s.queue.length && batch.length < BATCH_FILES && s.queue[0].label === label) batch.push(s.queue.shift());
      try {
        await sendBatch(batch, label);
      } finally {
        s.sending = false;
      }
      if (s.queue.length) sendSoon(s.burst ? BATCH_WAIT_MS : 0);
    }

    async function post(batch, label) {
      var data = new FormData();
      batch.forEach(function (item) { data.append("files", item.blob, item.name); });
      if (label) data.append("label_id", label);
      try {
        var resp = await fetch(root.dataset.uploadUrl, {
          method: "POST", body: data, credentials: "same-origin",
          headers: { "X-CSRFToken": csrfToken(), "Accept": "application/json" } });
        var body = {};
        try { body = await resp.json(); } catch (e) { /* not JSON */ }
        return { resp: resp, status: resp.status, body: body };
      } catch (e) {
        return { resp: null, status: 0, body: {} };
      }
    }

    async function sendBatch(batch, label) {
      var answer = await post(batch, label);
      if (answer.status === 0 || answer.status >= 500) { await wait(1500); answer = await post(batch, label); }
      for (var tries = 0; answer.status === 429 && tries < 10; tries++) {
        cam.say(t("cam_retrying"));
        await wait(retryAfter(answer.resp, answer.body));
        answer = await post(batch, label);
      }
      record(batch, answer);
    }

    function record(batch, answer) {
      if (answer.status === 200 || answer.status === 202) {
        s.sent += batch.length;
        (answer.body.results || []).forEach(function (r) {
          if (r.status === "added") s.added += 1;
          else if (r.status === "duplicate") s.duplicates += 1;
          else { s.failed += 1; cam.fail(r.filename + ": " + r.message); }
        });
        if (cam.stream) cam.say(t("cam_on"));
        refreshSoon();
      } else {
        var why = answer.body.error || (answer.status === 413 ? t("too_large")
          : t("cam_send_failed", { status: answer.status || t("network_error") }));
        cam.fail(why);
        s.failed += batch.length;
        s.dropped += batch.length;
        if ([401, 403, 404, 422].indexOf(answer.status) >= 0) {  // refused (no access, quota full...): stop here
          s.failed += s.queue.length;
          s.dropped += s.queue.length;
          s.queue = [];
          endBurst();
        }
      }
      showCounts();
    }

    // The dataset's counts (and what training still needs) changed: the same refresh an upload makes.
    function refreshSoon() {
      if (s.refresh) return;
      s.refresh = setTimeout(function () {
        s.refresh = null;
        if (!window.htmx) return;
        ["#summary", "#train-button"].forEach(function (sel) {
          if (document.querySelector(sel)) {
            window.htmx.ajax("GET", window.location.pathname, { target: sel, select: sel, swap: "outerHTML" });
          }
        });
      }, 800);
    }

    function startBurst() {
      if (!cam.stream || s.burst) return;
      cam.fail("");
      takePhoto();
      s.burst = setInterval(takePhoto, 1000 / BURST_FPS);
      burstButton.classList.add("cam-recording");
      burstButton.setAttribute("aria-pressed", "true");
      cam.say(t("cam_recording"));
    }

    function endBurst() {
      if (!s.burst) return;
      clearInterval(s.burst);
      s.burst = null;
      burstButton.classList.remove("cam-recording");
      burstButton.removeAttribute("aria-pressed");
      if (cam.stream) cam.say(t("cam_on"));
      if (s.queue.length) sendSoon(0);
    }

    q(root, "shot").addEventListener("click", function () { cam.fail(""); takePhoto(); });
    burstButton.addEventListener("pointerdown", function (e) {
      if (e.button !== 0) return;
      e.preventDefault();
      if (burstButton.setPointerCapture) burstButton.setPointerCapture(e.pointerId);
      startBurst();
    });
    ["pointerup", "pointercancel", "lostpointercapture"].forEach(function (type) {
      burstButton.addEventListener(type, endBurst);
    });
    burstButton.addEventListener("keydown", function (e) {
      if (e.key !== " " && e.key !== "Enter") return;
      e.preventDefault();  // no click: the key is held, not pressed
      if (!e.repeat) startBurst();
    });
    burstButton.addEventListener("keyup", function (e) {
      if (e.key !== " " && e.key !== "Enter") return;
      e.preventDefault();
      endBurst();
    });
    burstButton.addEventListener("blur", endBurst);
    burstButton.addEventListener("contextmenu", function (e) { e.preventDefault(); });  // a long press on a phone
    // A click with no pointer or key behind it (a screen reader's "activate"): one photo.
    burstButton.addEventListener("click", function (e) { if (e.detail === 0 && !s.burst) takePhoto(); });

    // Classes added, renamed or removed in another tab: read the list again when the panel opens and when
    // the page comes back into view, keeping the chosen class.
    q(root, "panel").addEventListener("toggle", function (e) { if (e.target.open) refreshClasses(); });
    document.addEventListener("visibilitychange", function () {
      if (!document.hidden && q(root, "panel").open) refreshClasses();
    });

    async function refreshClasses() {
      var select = q(root, "class");
      try {
        var resp = await fetch(window.location.pathname, { credentials: "same-origin" });
        if (!resp.ok) return;
        var page = new DOMParser().parseFromString(await resp.text(), "text/html");
        var fresh = page.querySelector("[data-camera-class]");
        if (!fresh || fresh.innerHTML === select.innerHTML) return;
        var chosen = select.value;
        select.innerHTML = fresh.innerHTML;
        if ([].some.call(select.options, function (o) { return o.value === chosen; })) select.value = chosen;
      } catch (err) { /* offline for a moment: the list stays as it was */ }
    }
  }

  // ---- live answers on the Try page ----------------------------------------------------------------
  function setUpLive(root) {
    var form = document.getElementById("try-form");
    if (!form || !form.dataset.predictUrl) return;
    var live = { running: false, controller: null, said: "" };
    var cam = new Camera(root, {
      started: function () { live.running = true; loop(); },
      stopped: function () { live.running = false; if (live.controller) live.controller.abort(); }
    });
    cameras.push(cam);

    function show(answer) {
      var verdict = q(root, "verdict"), confidence = q(root, "confidence");
      var pct = window.studio.pct(answer.confidence, 1);
      var said;
      if (answer.unknown) {
        said = t("not_sure", { name: answer.top_k[0].category, confidence: pct });
        verdict.textContent = said;
        confidence.textContent = "";
      } else {
        said = t("cam_answer", { name: answer.category, confidence: pct });
        verdict.textContent = answer.category;
        confidence.textContent = t("cam_confidence", { confidence: pct });
      }
      verdict.classList.toggle("unsure", !!answer.unknown);
      var key = (answer.unknown ? "?" : "") + answer.category;
      if (key !== live.said) { live.said = key; q(root, "said").textContent = said; }  // read out on a change only
    }

    async function ask(blob) {
      var data = new FormData();
      data.append("file", blob, "camera.jpg");
      var topK = form.querySelector("[name=top_k]");
      if (topK) data.append("top_k", topK.value);
      live.controller = window.AbortController ? new AbortController() : null;
      var resp = await fetch(form.dataset.predictUrl, {
        method: "POST", body: data, credentials: "same-origin", signal: live.controller && live.controller.signal,
        headers: { "X-CSRFToken": form.dataset.csrf, "Accept": "application/json" } });
      var body = {};
      try { body = await resp.json(); } catch (e) { /* not JSON */ }
      return { resp: resp, body: body };
    }

    async function loop() {
      q(root, "verdict").textContent = t("cam_looking");
      q(root, "confidence").textContent = "";
      live.said = "";
      while (live.running) {
        var began = Date.now();
        var blob = await cam.frame(0.8);
        if (!live.running) break;
        if (!blob) { await wait(100); continue; }
        var pause = 0;
        try {
          var res = await ask(blob);
          if (!live.running) break;
          var answer = res.body.predictions && res.body.predictions[0];
          if (res.resp.ok && answer && !answer.error) { show(answer); cam.fail(""); }
          else {
            cam.fail(window.studio.codeText((answer || res.body).code) || (answer || res.body).error || t("refused"));
            if (res.resp.status === 429) pause = retryAfter(res.resp, res.body);
            else if ([401, 403, 404, 409].indexOf(res.resp.status) >= 0) { cam.stop(""); break; }
            else pause = 2000;
          }
        } catch (err) {
          if (!live.running) break;  // stopped: the request was aborted
          cam.fail(t("unreachable"));
          pause = 2000;
        }
        await wait(Math.max(pause, LIVE_GAP_MS - (Date.now() - began)));
      }
    }
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-camera=capture]").forEach(setUpCapture);
    document.querySelectorAll("[data-camera=live]").forEach(setUpLive);
  });
})();
