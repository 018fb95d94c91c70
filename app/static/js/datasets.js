// The labeling grid: selection (click, shift-click, keys) and shortcuts. Uploads: uploads.js.
(function () {
  "use strict";

  // ---- labeling grid --------------------------------------------------------------------------
  var lastClicked = null;
  // Number keys act on a tile only when the user put the focus there (click, Tab, arrows), never on one
  // focused by the page itself.
  var chosenTile = null;

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

  function showSelectFirst(flashes) {
    flashes.innerHTML = '<div class="flash flash-info" role="status"></div>';
    flashes.firstChild.textContent = window.studio.t("select_first");
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
      chosenTile = tile;
      refreshSelection();
      return;
    }
    var action = e.target.closest("[data-label-form] .ds-actions button[type=submit]");
    if (action && refreshSelection() === 0) {
      e.preventDefault();
      var flashes = document.getElementById("flashes");
      if (flashes) showSelectFirst(flashes);
      return;
    }
    if (e.target.closest("[data-select-all]")) { tiles().forEach(function (t) { setChecked(t, true); }); refreshSelection(); }
    if (e.target.closest("[data-select-none]")) { tiles().forEach(function (t) { setChecked(t, false); }); refreshSelection(); }
  });

  function moveFocus(current, key) {
    var all = tiles();
    var i = all.indexOf(current);
    if (i < 0) { if (all[0]) { all[0].focus(); chosenTile = all[0]; } return; }  // an arrow key: the user's choice
    var step = 1;
    if (key === "ArrowUp" || key === "ArrowDown") {  // a row is as many tiles as share the first one's top
      var top = all[0].offsetTop;
      step = all.filter(function (t) { return t.offsetTop === top; }).length || 1;
    }
    var next = all[i + ((key === "ArrowLeft" || key === "ArrowUp") ? -step : step)];
    if (next) { next.focus(); chosenTile = next; }
  }

  // Where the keyboard was when a key labeled or deleted: the grid comes back new, and the focus goes on to
  // the next image there (not out of the grid), so the user can go on with the keys.
  var place = null;

  function imageId(tile) {
    var box = tile && tile.querySelector("input[type=checkbox]");
    return box ? box.value : null;
  }

  // stay: the focus comes back to the same image when it is still shown (an undo), not to the next one.
  function rememberPlace(focused, stay) {
    var all = tiles(), i = all.indexOf(focused);
    place = i < 0 ? null : {tile: focused, id: imageId(focused), index: i, stay: !!stay,
                            after: all.slice(i + 1).map(imageId)};
  }

  function tileAfter(p) {
    var all = tiles(), ids = all.map(imageId);
    if (!all.length) return null;
    var same = ids.indexOf(p.id);  // still shown (e.g. under "All"): the one after it
    if (same >= 0) return p.stay ? all[same] : (all[same + 1] || all[same]);
    for (var k = 0; k < p.after.length; k++) {  // gone from this view: the first of those after it still here
      var at = ids.indexOf(p.after[k]);
      if (at >= 0) return all[at];
    }
    return all[Math.min(p.index, all.length - 1)];
  }

  // The image a key last acted on: z (undo) brings the focus back to it when the undo shows it again.
  var lastKeyed = null;

  function applyToSelection(button, focused) {
    if (!button) return;
    if (refreshSelection() === 0 && focused && focused === chosenTile) { setChecked(focused, true); refreshSelection(); }
    if (refreshSelection() > 0) { rememberPlace(focused); lastKeyed = imageId(focused); button.click(); return; }
    var flashes = document.getElementById("flashes");
    if (flashes) showSelectFirst(flashes);
  }

  // A tile reached with Tab was chosen by the user, too.
  document.addEventListener("keyup", function (e) {
    if (e.key === "Tab" && document.activeElement && document.activeElement.matches("[data-tile]")) chosenTile = document.activeElement;
  });

  document.addEventListener("keydown", function (e) {
    if (!document.querySelector("[data-label-form]") || e.ctrlKey || e.metaKey || e.altKey) return;
    if (e.target.closest("input[type=text], input[type=search], input:not([type]), select, textarea")) return;
    var focused = e.target.closest ? e.target.closest("[data-tile]") : null;
    if (e.key.indexOf("Arrow") === 0) { e.preventDefault(); moveFocus(focused, e.key); return; }
    if (e.key === " " && focused) { e.preventDefault(); focused.click(); return; }
    if (/^[1-9]$/.test(e.key)) { applyToSelection(document.querySelector('[data-class-key="' + e.key + '"]'), focused); return; }
    if (e.key === "u") { applyToSelection(document.querySelector("[data-unlabel]"), focused); return; }
    if (e.key === "a") { tiles().forEach(function (t) { setChecked(t, true); }); refreshSelection(); return; }
    if (e.key === "z") {
      var undo = document.querySelector("[data-toast] [data-undo]");
      if (undo) {
        rememberPlace(focused, true);
        if (place && lastKeyed) place.id = lastKeyed;  // the image the undone key acted on, once it is back
        undo.click();
      }
      return;
    }
    if (e.key === "Escape") { tiles().forEach(function (t) { setChecked(t, false); }); refreshSelection(); return; }
    if (e.key === "Delete" || e.key === "Backspace") { e.preventDefault(); applyToSelection(document.querySelector("[data-delete]"), focused); }
  });

  // After a filter, a page link or a bulk action the grid is new: no tile is chosen, and the focus goes to
  // the grid's heading area (the active filter), never onto a tile by itself - except after a key pressed
  // on a tile: then the focus stays in the grid, on the next image, chosen for the next key.
  document.addEventListener("htmx:afterSwap", function (e) {
    if (e.target && e.target.id === "image-grid") {  // a hint from before the action is done with
      document.querySelectorAll("#flashes .flash-info").forEach(function (f) { f.remove(); });
    }
    // a search (typed, or the × that clears it): say how many images match, where a screen reader hears it
    var status = document.getElementById("find-status");
    var elt = e.detail && e.detail.requestConfig && e.detail.requestConfig.elt;
    if (status && elt && elt.closest && elt.closest("[data-find]")) {
      var count = document.querySelector("#image-grid .ds-find-count");
      status.textContent = count ? count.textContent.replace(/\s+/g, " ").trim() : "";
    }
    lastClicked = null;
    chosenTile = null;
    refreshSelection();
    var was = place;
    place = null;
    if (was && !document.body.contains(was.tile)) {
      var next = tileAfter(was);
      if (next) { next.focus(); chosenTile = next; return; }
    }
    if (document.activeElement === document.body || !document.activeElement) {
      var active = document.querySelector(".ds-filters .ds-chip.active");
      if (active) active.focus();
    }
  });
  // ---- find by file name ------------------------------------------------------------------------
  // The × is a link to the grid without the search (so it works without JavaScript); with htmx it empties
  // the box and searches again, so only the grid is swapped and the box keeps the focus.
  document.addEventListener("click", function (e) {
    var clear = e.target.closest("[data-find-clear]");
    var box = clear && clear.closest("[data-find]") && clear.closest("[data-find]").querySelector("input[name=q]");
    if (!box || !window.htmx) return;
    e.preventDefault();
    box.value = "";
    box.focus();
    window.htmx.trigger(box, "search");
  });
  // One history step per search. A pause in typing replaces the address (the box's hx-replace-url) - but
  // the first pause of a search pushes, or Back after it would leave the grid instead of returning to the
  // page the search started from. Enter, Find and × push (the form's hx-push-url) - but never an address
  // that is already current (after a pause the typed search is there already): Back would seem to do
  // nothing. Which entry typing made is kept here, not in history.state: htmx rewrites that on every save.
  var typedAt = null;  // the address of the entry typing goes on replacing (null: none, the next push)
  document.addEventListener("htmx:beforeHistoryUpdate", function (e) {
    var elt = e.detail.requestConfig && e.detail.requestConfig.elt;
    if (!elt || !elt.closest || !elt.closest("[data-find]")) return;
    var update = e.detail.history;
    var here = window.location.href;
    var typed = elt.hasAttribute("data-find-typed");
    if (sameAddress(update.path, here)) {
      update.type = "replace";
      if (!typed) typedAt = null;  // Enter on a typed search settles it: typing on starts the next
    } else if (typed) {
      update.type = typedAt !== null && sameAddress(typedAt, here) ? "replace" : "push";
      typedAt = new URL(update.path, here).href;
    } else {
      update.type = "push";
      typedAt = null;
    }
  });
  function sameAddress(a, b) {
    var urls = [new URL(a, window.location.href), new URL(b, window.location.href)];
    urls.forEach(function (u) { u.searchParams.sort(); });
    return urls[0].pathname + urls[0].search === urls[1].pathname + urls[1].search;
  }
  // Back and Forward bring back htmx's copy of the page, taken when the next search left it - the box then
  // held the next text already. The address says what that grid was found with.
  document.addEventListener("htmx:historyRestore", function () {
    var q = new URLSearchParams(window.location.search).get("q") || "";
    document.querySelectorAll("[data-find] input[name=q]").forEach(function (box) { box.value = q; });
  });
  document.addEventListener("DOMContentLoaded", refreshSelection);
})();
