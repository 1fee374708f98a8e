/* Live alerts: the tray disclosure, the screen-reader announcer, and re-fetch after (re)connect.
 * The stream itself is htmx's SSE extension on <body sse-connect>; elements that show live state
 * re-fetch their own fragment on `sse:<event>` or on `live:resync` (sent when the stream (re)opens). */
(function () {
  "use strict";

  /* Announcer: polite, at most once every ANNOUNCE_MS; several arrivals become one summary. */
  var ANNOUNCE_MS = 2000;
  var pending = [];
  var timer = null;
  var lastText = "";

  function announce(text) {
    var region = document.getElementById("sr-status");
    if (!region) { return; }
    if (text === lastText) {          /* identical text: clear, then write, so it is spoken again */
      region.textContent = "";
      setTimeout(function () { region.textContent = text; }, 50);
    } else {
      region.textContent = text;
    }
    lastText = text;
  }

  function flush() {
    timer = null;
    if (!pending.length) { return; }
    var items = pending;
    pending = [];
    if (items.length === 1) {
      announce(items[0]);
    } else {
      announce(items.length + " new notifications: " + items.join("; "));
    }
    timer = setTimeout(flush, ANNOUNCE_MS);
  }

  function queueAnnouncement(text) {
    pending.push(text);
    if (!timer) { flush(); }
  }

  function onNotification(event) {
    var data = {};
    try { data = JSON.parse(event.data); } catch (e) { return; }
    var prefix = data.event === "resolved" ? "Resolved: " : "New alert: ";
    queueAnnouncement(prefix + (data.title || ""));
  }

  function resync() {
    document.body.dispatchEvent(new CustomEvent("live:resync", { bubbles: true }));
  }

  /* After every (re)connect, and when the server says it missed events, re-fetch live state. */
  var bound = typeof WeakSet === "function" ? new WeakSet() : null;
  document.addEventListener("htmx:sseOpen", function (e) {
    var source = e.detail && e.detail.source;
    if (source && bound && !bound.has(source)) {
      bound.add(source);
      source.addEventListener("notification", onNotification);
      source.addEventListener("resync", resync);
    }
    document.body.dataset.live = "open";
    resync();
  });
  document.addEventListener("htmx:sseError", function () { document.body.dataset.live = "reconnecting"; });

  /* The tray: a disclosure button. Escape closes it and returns focus to the button. */
  function trayParts() {
    return { button: document.getElementById("tray-button"), panel: document.getElementById("tray-panel") };
  }
  function setOpen(open) {
    var t = trayParts();
    if (!t.button || !t.panel) { return; }
    t.button.setAttribute("aria-expanded", open ? "true" : "false");
    t.panel.hidden = !open;
  }
  document.addEventListener("click", function (e) {
    var t = trayParts();
    if (!t.button) { return; }
    if (t.button.contains(e.target)) {
      setOpen(t.button.getAttribute("aria-expanded") !== "true");
    }
  });
  document.addEventListener("keydown", function (e) {
    var t = trayParts();
    if (e.key === "Escape" && t.button && t.button.getAttribute("aria-expanded") === "true") {
      setOpen(false);
      t.button.focus();
    }
  });

  /* Expose for tests and for pages that pause live updates. */
  window.liveAlerts = { announce: queueAnnouncement };
})();
