/* Quiet refreshes: a region that fetches itself again because something changed elsewhere (a live event, a
 * resync, or the answer to an action, all sent as script events) is fetched here instead of by htmx, and the
 * new HTML is morphed onto the old one. Only what differs is touched, so
 * - a refresh that changes nothing changes nothing in the DOM (no aria-busy, no htmx classes either);
 * - the focused element stays focused, or, when it is gone, focus moves to its nearest neighbour (same row,
 *   then the next or previous row, then the region's heading) without scrolling;
 * - the reader's scroll position is kept: the focused element, or what is at the top of the viewport, stays
 *   where it was on the screen (measured after the layout the browser's own scroll anchoring adjusts in, so
 *   only what that missed is corrected).
 * A region qualifies when it is its own htmx target (hx-target="this") and the event that asked for the
 * request was not the user's (a click, a key press or a submit goes through htmx as usual). */
(function () {
  "use strict";

  var FOCUSABLE = "a[href], button:not([disabled]), input:not([disabled]):not([type='hidden']), " +
    "select:not([disabled]), textarea:not([disabled]), [tabindex]:not([tabindex='-1'])";
  var inFlight = new WeakMap(); /* region -> {again}: one request at a time, and one more if asked meanwhile */

  /* Morphing. Children are matched by key (id, data-key, or a notification's id), the rest by position and
   * kind; `changed` records whether anything was written. A CSRF token is signed anew on every render, so a
   * new one is written only along with a real change (it stays valid for the session's idle time). */
  var changed = false;
  var freshTokens = [];

  function isToken(element) {
    return element.nodeName === "INPUT" && element.type === "hidden" && element.name === "csrf_token";
  }

  function keyOf(node) {
    if (node.nodeType !== 1) { return ""; }
    return node.id || node.getAttribute("data-key") || node.getAttribute("data-notification-id") || "";
  }

  function sameKind(a, b) {
    return a.nodeType === b.nodeType && a.nodeName === b.nodeName;
  }

  function morphAttributes(old, neu) {
    var i, attribute;
    if (isToken(old) && isToken(neu)) {
      if (old.value !== neu.value) { freshTokens.push({ input: old, value: neu.value }); }
      return;
    }
    for (i = neu.attributes.length - 1; i >= 0; i--) {
      attribute = neu.attributes[i];
      if (old.getAttribute(attribute.name) !== attribute.value) {
        old.setAttribute(attribute.name, attribute.value);
        changed = true;
      }
    }
    for (i = old.attributes.length - 1; i >= 0; i--) {
      attribute = old.attributes[i];
      if (old.nodeName === "DETAILS" && attribute.name === "open") { continue; } /* the reader opened it */
      if (!neu.hasAttribute(attribute.name)) {
        old.removeAttribute(attribute.name);
        changed = true;
      }
    }
    /* A check box shows what the server says (a live refresh never runs while one is checked). */
    if (old.nodeName === "INPUT" && (old.type === "checkbox" || old.type === "radio") &&
        old.checked !== neu.hasAttribute("checked")) {
      old.checked = neu.hasAttribute("checked");
      changed = true;
    }
  }

  function morphNode(old, neu) {
    if (old.nodeType !== 1) {
      if (old.nodeValue !== neu.nodeValue) {
        old.nodeValue = neu.nodeValue;
        changed = true;
      }
      return;
    }
    morphAttributes(old, neu);
    morphChildren(old, neu);
  }

  function remove(parent, node) {
    parent.removeChild(node);
    changed = true;
  }

  /* True when every node from `from` up to (not including) `to` may go: unkeyed, or keyed and not wanted. */
  function disposableUntil(from, to, wanted) {
    for (var node = from; node && node !== to; node = node.nextSibling) {
      if (keyOf(node) && wanted[keyOf(node)]) { return false; }
    }
    return node === to;
  }

  function morphChildren(oldParent, newParent) {
    var keyed = {}, wanted = {}, node, key;
    for (node = oldParent.firstChild; node; node = node.nextSibling) {
      key = keyOf(node);
      if (key) { keyed[key] = node; }
    }
    for (node = newParent.firstChild; node; node = node.nextSibling) {
      key = keyOf(node);
      if (key) { wanted[key] = true; }
    }
    var cursor = oldParent.firstChild;
    Array.prototype.slice.call(newParent.childNodes).forEach(function (neu) {
      while (cursor && keyOf(cursor) && !wanted[keyOf(cursor)]) {
        var gone = cursor;
        cursor = cursor.nextSibling;
        remove(oldParent, gone);
      }
      var newKey = keyOf(neu);
      var match = null;
      if (newKey) {
        match = keyed[newKey] && keyed[newKey].nodeName === neu.nodeName ? keyed[newKey] : null;
        delete keyed[newKey];
      } else if (cursor && !keyOf(cursor) && sameKind(cursor, neu)) {
        match = cursor;
      }
      if (!match) {
        oldParent.insertBefore(neu, cursor);
        changed = true;
        return;
      }
      if (match !== cursor) {
        /* Rather drop what lies between than move the match: moving an element takes focus out of it. */
        if (cursor && disposableUntil(cursor, match, wanted)) {
          while (cursor !== match) {
            var skipped = cursor;
            cursor = cursor.nextSibling;
            remove(oldParent, skipped);
          }
        } else {
          oldParent.insertBefore(match, cursor);
          changed = true;
        }
      }
      if (match === cursor) { cursor = cursor.nextSibling; }
      morphNode(match, neu);
    });
    while (cursor) {
      var rest = cursor;
      cursor = cursor.nextSibling;
      remove(oldParent, rest);
    }
  }

  /* Focus. */
  function canFocus(element) {
    return element && element.isConnected && element.getClientRects().length > 0 &&
      !element.disabled && !element.closest("[hidden]");
  }

  /* In `container`: the control of the same kind (its id differs only in the number, as retry-12 and
   * retry-13 do), else the first in the same cell, else the first at all. */
  function firstFocusable(container, preferredChild, kind) {
    if (!container || !container.isConnected) { return null; }
    var all = Array.prototype.filter.call(container.querySelectorAll(FOCUSABLE), canFocus);
    var sameKind = kind && all.filter(function (element) { return element.id.replace(/\d+/g, "#") === kind; })[0];
    var inCell = preferredChild && all.filter(function (element) { return preferredChild.contains(element); })[0];
    return sameKind || inCell || all[0] || null;
  }

  /* Where focus goes when the focused element disappears, nearest first: itself (or its id's new element),
   * the button of the disclosure it was in, the same cell then the rest of its row (or list item), the next
   * rows, the previous rows, the heading. */
  function focusPlan(active, region) {
    var row = active.parentElement;
    while (row && row !== region && !keyOf(row)) { row = row.parentElement; }
    if (row === region) { row = null; }
    var cell = null;
    if (row) {
      cell = active;
      while (cell.parentElement !== row) { cell = cell.parentElement; }
    }
    var cellIndex = cell ? Array.prototype.indexOf.call(row.children, cell) : -1;
    var after = [], before = [], sibling;
    for (sibling = row && row.nextElementSibling; sibling; sibling = sibling.nextElementSibling) { after.push(sibling); }
    for (sibling = row && row.previousElementSibling; sibling; sibling = sibling.previousElementSibling) { before.push(sibling); }
    var id = active.id;
    var kind = id ? id.replace(/\d+/g, "#") : "";
    var controller = null; /* the button of a disclosure (a history row) the focused element is in */
    for (var part = active.parentElement; part && part !== region && !controller; part = part.parentElement) {
      controller = part.id ? region.querySelector("[aria-controls='" + part.id + "']") : null;
    }
    return function () {
      if (canFocus(active)) { return active; }
      var same = id && document.getElementById(id);
      if (canFocus(same)) { return same; }
      if (canFocus(controller)) { return controller; }
      var candidates = [row].concat(after, before);
      for (var i = 0; i < candidates.length; i++) {
        var candidate = candidates[i];
        var found = candidate && candidate.isConnected &&
          firstFocusable(candidate, cellIndex >= 0 ? candidate.children[cellIndex] : null, kind);
        if (found) { return found; }
      }
      var heading = region.querySelector("h1, h2, h3");
      if (heading && !heading.hasAttribute("tabindex")) { heading.setAttribute("tabindex", "-1"); }
      return heading || null;
    };
  }

  /* Scroll: elements whose place on the screen should not move, best first (the focused element, then
   * what is at the top of the viewport), each with its place now. */
  function scrollAnchors(active) {
    var height = window.innerHeight;
    var width = document.documentElement.clientWidth;
    var found = [];
    if (active && active !== document.body) { found.push(active); }
    var probes = [[0.5, 0.02], [0.2, 0.02], [0.5, 0.25], [0.2, 0.5]];
    for (var i = 0; i < probes.length; i++) {
      var hit = document.elementFromPoint(width * probes[i][0], height * probes[i][1]);
      if (hit && hit !== document.body && hit !== document.documentElement &&
          hit.getBoundingClientRect().height < height) {
        found.push(hit);
        break;
      }
    }
    return found.filter(function (element) {
      var box = element.getBoundingClientRect();
      return box.bottom > 0 && box.top < height;
    }).map(function (element) {
      return { element: element, top: element.getBoundingClientRect().top };
    });
  }

  /* Run `morph` on `region` keeping focus and scroll; returns whether anything changed. */
  function keepingPlace(region, morph) {
    var active = document.activeElement;
    var inside = active && active !== document.body && region.contains(active);
    var plan = inside ? focusPlan(active, region) : null;
    var anchors = scrollAnchors(active);
    var x = window.scrollX, y = window.scrollY;
    changed = false;
    freshTokens = [];
    morph();
    if (!changed) { return false; }
    freshTokens.forEach(function (token) { token.input.value = token.value; });
    if (plan && document.activeElement !== active) {
      var next = plan();
      if (next) { next.focus({ preventScroll: true }); }
    }
    var anchor = anchors.filter(function (a) { return a.element.isConnected; })[0];
    if (anchor) {
      var moved = anchor.element.getBoundingClientRect().top - anchor.top;
      if (Math.abs(moved) >= 1) { window.scrollBy(0, moved); }
    } else if (window.scrollX !== x || window.scrollY !== y) {
      window.scrollTo(x, y);
    }
    return true;
  }

  /* Applying an answer: out-of-band pieces (hx-swap-oob="innerHTML:#id" or "true") onto their targets, the
   * rest onto the region, as its hx-swap says (outerHTML: the answer's element of the same id). */
  function apply(region, html) {
    var template = document.createElement("template");
    template.innerHTML = html;
    var fragment = template.content;
    var pieces = [];
    Array.prototype.slice.call(fragment.children).forEach(function (element) {
      var oob = element.getAttribute("hx-swap-oob");
      if (oob === null) { return; }
      fragment.removeChild(element);
      element.removeAttribute("hx-swap-oob");
      var parts = oob.split(":");
      var inner = parts[0] === "innerHTML";
      var target = parts.length > 1 ? document.querySelector(parts.slice(1).join(":")) : document.getElementById(element.id);
      if (target) { pieces.push({ target: target, from: element, inner: inner }); }
    });
    var outer = (region.getAttribute("hx-swap") || "innerHTML").split(" ")[0] === "outerHTML";
    var replacement = outer ? fragment.getElementById(region.id) : fragment;
    if (!replacement) { return; }
    pieces.unshift({ target: region, from: replacement, inner: !outer });
    pieces.forEach(function (piece) {
      var touched = keepingPlace(piece.target, function () {
        if (piece.inner) { morphChildren(piece.target, piece.from); } else { morphNode(piece.target, piece.from); }
      });
      if (touched && window.htmx) { window.htmx.process(piece.target); }
    });
  }

  function refresh(region) {
    var state = inFlight.get(region);
    if (state) { state.again = true; return; }
    state = { again: false };
    inFlight.set(region, state);
    var url = region.getAttribute("hx-get");
    fetch(url, {
      credentials: "same-origin",
      cache: "no-store",
      headers: { "HX-Request": "true", "HX-Trigger": region.id, "HX-Target": region.id, "HX-Current-URL": location.href },
    }).then(function (response) {
      /* A redirect (to the sign-in page) or an error is no new content: the next event tries again. */
      return response.ok && !response.redirected ? response.text() : null;
    }).then(function (html) {
      if (html !== null && region.isConnected) { apply(region, html); }
    }).catch(function () { /* offline for a moment: the stream's resync fetches again */ }).then(function () {
      inFlight.delete(region);
      if (state.again && region.isConnected) { refresh(region); }
    });
  }

  document.addEventListener("htmx:confirm", function (evt) {
    var detail = evt.detail || {};
    var region = detail.elt;
    var cause = detail.triggeringEvent;
    if (!cause || cause.isTrusted || detail.verb !== "get" || region !== detail.target || !region.id ||
        !region.getAttribute("hx-get")) {
      return;
    }
    evt.preventDefault();
    refresh(region);
  });
})();
