/* Live alerts: the tray disclosure and its live items, the screen-reader announcer, and re-fetch after
 * (re)connect.
 * The stream itself is htmx's SSE extension on <body sse-connect>; elements that show live state
 * re-fetch their own fragment on `sse:<event>` or on `live:resync` (sent when the stream (re)opens).
 * Changes are also sent on <body> as `live:changed` ({type, data}), for page scripts that decide
 * which panels refresh (status.js, platform.js): hx-trigger filters cannot, as htmx may not eval. */
(function () {
  "use strict";

  /* Announcer: polite, at most once every ANNOUNCE_MS; arrivals within GATHER_MS become one summary. */
  var ANNOUNCE_MS = 2000;
  var GATHER_MS = 500;
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
      announce(items[0].prefix + items[0].title);
    } else {
      announce(words().several.replace("{n}", String(items.length)) + " " +
               items.map(function (i) { return i.title; }).join("; "));
    }
    timer = setTimeout(flush, ANNOUNCE_MS);
  }

  function queueAnnouncement(prefix, title) {
    pending.push({ prefix: prefix, title: title });
    if (!timer) { timer = setTimeout(flush, GATHER_MS); }
  }

  /* The announcer's own words, translated by the server (base.html). A raised alert's title is the problem,
   * so it is introduced; a resolution's ("Cleared: …"), a flapping alert's ("Keeps coming back: …") and a
   * summary's title say what they are themselves. */
  function words() {
    return JSON.parse(document.body.dataset.announceWords);
  }

  function onNotification(event) {
    var data = {};
    try { data = JSON.parse(event.data); } catch (e) { return; }
    if (!deliver(data)) { document.body.dispatchEvent(new CustomEvent("live:tray", { bubbles: true })); }
    queueAnnouncement(data.event === "raised" ? words().raised + " " : "", data.title || "");
  }

  /* The tray in one hop: a notification's event carries its item and the tray button's label, rendered by the
   * server for this person (the event came on their own channel). The item goes in the list by time, in place
   * of an item of the same notification; the list keeps its size. Without an item, or one in another language
   * than the page, the list is fetched instead, as after a (re)connect and on TRAY_CHANGED. A fetch answered
   * before the notification was committed can take a delivered item away: then the list is fetched again; and
   * a second after an insert the list is fetched to confirm it (confirmSoon, below). */
  var delivered = {}; /* notification id -> when its item was inserted */
  var DELIVERED_MS = 10000;

  function itemOrder(item) {
    var time = item.querySelector("time[datetime]");
    return [time ? Date.parse(time.getAttribute("datetime")) : 0, Number(item.dataset.notificationId)];
  }

  function newer(a, b) {
    return a[0] > b[0] || (a[0] === b[0] && a[1] > b[1]);
  }

  function deliver(data) {
    var list = document.getElementById("tray-list");
    var label = document.getElementById("tray-label");
    if (!list || !label || !data.html || data.lang !== document.documentElement.lang) { return false; }
    var template = document.createElement("template");
    template.innerHTML = data.html.trim();
    var item = template.content.firstElementChild;
    if (!item || item.dataset.notificationId !== String(data.id)) { return false; }
    /* The freshest token: a fetched tray form's (signed minutes ago), else the page's (signed when it loaded). */
    var fetched = list.querySelector("input[name='csrf_token']");
    var meta = document.querySelector("meta[name='csrf-token']");
    var token = fetched ? fetched.value : (meta ? meta.getAttribute("content") : "");
    Array.prototype.forEach.call(item.querySelectorAll("input[name='csrf_token']"), function (input) {
      input.value = token;
    });
    var items = Array.prototype.slice.call(list.querySelectorAll(":scope > li[data-notification-id]"));
    var old = items.filter(function (li) { return li.dataset.notificationId === String(data.id); })[0];
    if (old) {
      var active = document.activeElement;
      var focusedId = old.contains(active) ? active.id : null;
      list.replaceChild(item, old);
      if (focusedId !== null) {
        var again = (focusedId && document.getElementById(focusedId)) || item.querySelector("a[href]");
        if (again) { again.focus({ preventScroll: true }); }
      }
    } else {
      var order = itemOrder(item);
      var before = items.filter(function (li) { return newer(order, itemOrder(li)); })[0] || null;
      var size = Number(list.dataset.size) || 0;
      if (before || !size || items.length < size) { /* else it is older than every item the list shows */
        Array.prototype.forEach.call(list.querySelectorAll(":scope > li.empty"), function (li) { list.removeChild(li); });
        list.insertBefore(item, before);
        for (var i = items.length; size && i >= size; i--) {
          var last = list.querySelector(":scope > li[data-notification-id]:last-of-type");
          if (!last || last.contains(document.activeElement)) { break; }
          list.removeChild(last);
        }
      }
    }
    label.innerHTML = data.label;
    if (item.isConnected) {
      if (window.htmx) { window.htmx.process(item); }
      delivered[String(data.id)] = Date.now();
    }
    confirmSoon();
    return true;
  }

  /* The event's item and count were rendered inside the transaction that made the notification: another
   * transaction committing meanwhile (a notification of another organization, "Mark all as read") can make the
   * count stale. Shortly after the insert, once the title is on screen, the list is fetched from what is
   * committed, which also renews the forms' tokens; arrivals close together share one fetch. */
  var CONFIRM_MS = 1000;
  var confirmTimer = null;

  function confirmSoon() {
    if (confirmTimer) { clearTimeout(confirmTimer); }
    confirmTimer = setTimeout(function () {
      confirmTimer = null;
      document.body.dispatchEvent(new CustomEvent("live:tray", { bubbles: true }));
    }, CONFIRM_MS);
  }

  function watchDelivered(wrap) {
    new MutationObserver(function () {
      var now = Date.now();
      Object.keys(delivered).forEach(function (id) {
        if (now - delivered[id] > DELIVERED_MS) { delete delivered[id]; return; }
        if (!wrap.querySelector("li[data-notification-id='" + id + "']")) {
          delete delivered[id];
          document.body.dispatchEvent(new CustomEvent("live:tray", { bubbles: true }));
        }
      });
    }).observe(wrap, { childList: true, subtree: true });
  }
  document.addEventListener("DOMContentLoaded", function () {
    var wrap = document.getElementById("tray-list-wrap");
    if (wrap) { watchDelivered(wrap); }
  });

  /* A page reached after an action (a redirect with a flash message: "Record X is excluded from sync.")
   * says the result once it has loaded; the live region exists from the start, so this is spoken. */
  document.addEventListener("DOMContentLoaded", function () {
    var flashes = document.querySelector(".flashes");
    if (flashes) {
      setTimeout(function () { announce(flashes.textContent.replace(/\s+/g, " ").trim()); }, 500);
    }
  });

  function resync() {
    document.body.dispatchEvent(new CustomEvent("live:resync", { bubbles: true }));
  }

  /* After every (re)connect, and when the server says it missed events, re-fetch live state. */
  var bound = typeof WeakSet === "function" ? new WeakSet() : null;
  document.addEventListener("htmx:sseOpen", function (e) {
    var source = e.detail && e.detail.source;
    if (source && bound && !bound.has(source)) {
      bound.add(source);
      /* Event names come from the server's vocabulary (dashboard/vocabulary.py LiveEvent). */
      var names = JSON.parse(document.body.dataset.liveEvents);
      source.addEventListener(names.NOTIFICATION, onNotification);
      source.addEventListener(names.RESYNC, resync);
      [names.RECORDS_CHANGED, names.ALERT_CHANGED, names.PLATFORM_CHANGED].forEach(function (type) {
        source.addEventListener(type, function (event) {
          var data = {};
          try { data = JSON.parse(event.data) || {}; } catch (e) { /* still a change, of unknown scope */ }
          document.body.dispatchEvent(new CustomEvent("live:changed", { detail: { type: type, data: data } }));
        });
      });
    }
    document.body.dataset.live = "open";
    resync();
  });
  document.addEventListener("htmx:sseError", function () { document.body.dataset.live = "reconnecting"; });

  /* The tray: a disclosure button. Escape closes it and returns focus to the button; it also closes,
   * leaving focus where it went, when focus moves out of it or on a click outside it, so the open panel
   * never covers what the user works on. */
  function trayParts() {
    return { tray: document.getElementById("tray"), button: document.getElementById("tray-button"),
             panel: document.getElementById("tray-panel") };
  }
  function isOpen(t) {
    return Boolean(t.button) && t.button.getAttribute("aria-expanded") === "true";
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
      setOpen(!isOpen(t));
    } else if (isOpen(t) && e.target.isConnected && !t.tray.contains(e.target)) {
      setOpen(false);
    }
  });
  document.addEventListener("keydown", function (e) {
    var t = trayParts();
    if (e.key === "Escape" && isOpen(t)) {
      setOpen(false);
      t.button.focus();
    }
  });
  /* Focus that goes nowhere (the focused item was refreshed away) is not focus leaving the tray. */
  document.addEventListener("focusout", function (e) {
    var t = trayParts();
    if (isOpen(t) && t.tray.contains(e.target) && e.relatedTarget && !t.tray.contains(e.relatedTarget)) {
      setOpen(false);
    }
  });

  /* After the tray list is refreshed, keep focus in it: on the same notification's link when the
   * focused control was replaced (htmx restores focus only to elements with a stable id). */
  document.addEventListener("htmx:afterSettle", function (e) {
    if (!e.target || e.target.id !== "tray-list-wrap") { return; }
    if (document.activeElement && document.activeElement !== document.body) { return; }
    var elt = e.detail.requestConfig && e.detail.requestConfig.elt;
    var item = elt && elt.closest ? elt.closest("[data-notification-id]") : null;
    if (!item) { return; }
    var link = document.getElementById("tray-notification-" + item.dataset.notificationId + "-link");
    if (link) { link.focus(); }
  });
})();
