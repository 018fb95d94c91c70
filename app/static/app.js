// Small progressive enhancements shared by every page. Page-specific code lives beside its template.
// No inline handlers anywhere (the Content-Security-Policy allows scripts from our files only).

// window.studio: the page's language for scripts. t(key, {name: value}) reads the catalog base.html puts in
// <script type="application/json" id="i18n"> (app/js_strings.py); a plural entry picks its form for {n}.
window.studio = (function () {
  "use strict";
  var catalog = null;
  function lang() { return document.documentElement.lang || "en"; }
  function load() {
    if (catalog) return catalog;
    var node = document.getElementById("i18n");
    try { catalog = JSON.parse(node.textContent); } catch (e) { catalog = {}; }
    return catalog;
  }
  function num(x) { return new Intl.NumberFormat(lang()).format(x); }
  function pct(fraction, digits) {
    return new Intl.NumberFormat(lang(), { style: "percent", maximumFractionDigits: digits || 0 }).format(fraction);
  }
  function t(key, vars) {
    var text = load()[key], values = vars || {};
    if (text === undefined) return key;
    if (typeof text !== "string") {
      text = new Intl.PluralRules(lang()).select(values.n) === "one" ? text[0] : text[1];
      values = Object.assign({}, values, { n: num(values.n) });
    }
    return text.replace(/\{(\w+)\}/g, function (whole, name) {
      return Object.prototype.hasOwnProperty.call(values, name) ? String(values[name]) : whole;
    });
  }
  // The API's answers are English with a stable code; a page says the known ones in its own language
  // (the catalog's "code_<code>"), else "" (the caller falls back to the answer's English text).
  function codeText(code) {
    var text = code ? t("code_" + code) : "";
    return text === "code_" + code ? "" : text;
  }
  return { t: t, num: num, pct: pct, lang: lang, codeText: codeText };
})();

// <form data-confirm="Question?">: ask before submitting (destructive actions).
document.addEventListener("submit", function (evt) {
  var form = evt.target;
  if (form.dataset && form.dataset.confirm && !window.confirm(form.dataset.confirm)) {
    evt.preventDefault();
    evt.stopImmediatePropagation();
  }
}, true);
// The header's language switcher comes back to the address the page shows now: htmx may have changed it
// since the page was served (a search or a class filter in the labeling grid), and the form holds that one.
document.addEventListener("submit", function (evt) {
  var form = evt.target;
  if (!form.classList || !form.classList.contains("lang-switch") || !form.elements.next) return;
  if (form.elements.next.value) form.elements.next.value = window.location.pathname + window.location.search;
});

// <form data-merge-confirm> (Merge two classes): the question names the two classes chosen and how many
// images move, instead of the form's general hx-confirm; two equal choices go straight to the server,
// which says what is wrong.
document.addEventListener("htmx:confirm", function (evt) {
  var form = evt.target.closest && evt.target.closest("form[data-merge-confirm]");
  if (!form || !form.elements.source || !form.elements.into) return;
  var source = form.elements.source.selectedOptions[0], into = form.elements.into.selectedOptions[0];
  if (!source || !into) return;
  evt.preventDefault();
  var moving = Number(source.dataset.count || 0);
  if (source.value === into.value || window.confirm(window.studio.t("merge_confirm", {
    n: moving, name: source.dataset.name, into: into.dataset.name }))) {
    evt.detail.issueRequest(true);
  }
});
document.addEventListener("htmx:responseError", function (evt) {
  var box = document.getElementById("flashes");
  if (box) box.innerHTML = '<div class="flash flash-error" role="alert"></div>';
  if (box) box.firstChild.textContent = window.studio.t("request_failed", { status: evt.detail.xhr.status });
});

// <input data-select-on-focus>: select the whole value when focused (e.g. a token to copy).
document.addEventListener("focusin", function (evt) {
  if (evt.target.matches && evt.target.matches("[data-select-on-focus]")) evt.target.select();
});

// <button data-copy="#field">: copy the field's value (a new API token, a password reset link).
document.addEventListener("click", function (evt) {
  var button = evt.target.closest && evt.target.closest("[data-copy]");
  if (!button) return;
  var field = document.querySelector(button.dataset.copy);
  field.select();
  var done = function () { button.textContent = window.studio.t("copied"); };
  if (navigator.clipboard) navigator.clipboard.writeText(field.value).then(done, function () { document.execCommand("copy"); done(); });
  else { document.execCommand("copy"); done(); }
});

// The toast after a labeling or deleting action (with its Undo button) goes away after 10 s, or when
// dismissed; a new one (after an htmx swap) starts its own 10 s.
(function () {
  var timer = null;
  function start() {
    var toast = document.querySelector("[data-toast]");
    if (timer) clearTimeout(timer);
    if (toast) timer = setTimeout(function () { toast.remove(); }, 10000);
  }
  document.addEventListener("DOMContentLoaded", start);
  document.addEventListener("htmx:afterSwap", start);
  document.addEventListener("click", function (evt) {
    var close = evt.target.closest && evt.target.closest("[data-toast-close]");
    if (close) close.closest("[data-toast]").remove();
  });
})();
