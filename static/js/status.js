/* The integration status screen: confirm dialogs, history rows, announcements and focus after htmx swaps.
 * Everything here enhances pages that work without it. */
(function () {
  "use strict";

  var PROGRESS_ANNOUNCE_MS = 10000;
  var lastProgressAnnouncement = 0;
  var lastProgressText = "";
  var streamOpens = 0;

  /* Live events become htmx triggers here, not in hx-trigger filters (htmx runs without eval, for the
   * Content-Security-Policy). A panel names the live event it follows in data-refresh-on and gets
   * - status:refresh when that event arrives for this organization (the panel's hx-trigger adds a delay),
   * - status:resync when the stream reopens after a drop, or the server says it missed events.
   * The records table gets neither while the user works in it (tableIsLive). These requests are not the
   * user's, so refresh.js makes them and morphs the answer in: focus and scroll stay put. */
  var REFRESH = "status:refresh";
  var RESYNC = "status:resync";

  /* live.js sends live:resync while the stream opens; counted after it, so the first open (page load,
   * whose panels are fresh) is skipped and every reconnect re-fetches. */
  document.addEventListener("htmx:sseOpen", function () { streamOpens += 1; });

  function mine(data) {
    var screen = document.getElementById("status-screen");
    return !screen || !data || !data.channel || data.channel === screen.dataset.channel;
  }

  function tableIsLive() {
    var toggle = document.getElementById("records-live");
    return (!toggle || toggle.checked) &&
      !document.querySelector("#records input[name='record_id']:checked") &&
      !document.querySelector("#records .history-row:not([hidden])");
  }

  function nudgePanels(name, liveEvent) {
    if (!window.htmx) { return; }
    Array.prototype.forEach.call(document.querySelectorAll("[data-refresh-on]"), function (panel) {
      if (liveEvent && panel.dataset.refreshOn !== liveEvent) { return; }
      if (panel.id === "records" && !tableIsLive()) { return; }
      window.htmx.trigger(panel, name);
    });
  }

  document.body.addEventListener("live:changed", function (evt) {
    var detail = evt.detail || {};
    if (mine(detail.data)) { nudgePanels(REFRESH, detail.type); }
  });

  document.body.addEventListener("live:resync", function () {
    if (streamOpens > 0) { nudgePanels(RESYNC); }
  });

  /* Write to a live region that exists from page load; clear first so identical text is spoken again. */
  function announce(text, regionId) {
    var region = document.getElementById(regionId || "sr-status");
    if (!region || !text) { return; }
    region.textContent = "";
    window.setTimeout(function () { region.textContent = text; }, 100);
  }

  function focusTarget(element) {
    if (!element) { return; }
    if (!element.hasAttribute("tabindex")) { element.setAttribute("tabindex", "-1"); }
    element.focus();
  }

  /* Bulk actions confirm in a modal dialog; focus goes back to the button that asked. */
  function confirmWith(question, trigger) {
    var dialog = document.getElementById("confirm-dialog");
    if (!dialog || typeof dialog.showModal !== "function") {
      return Promise.resolve(window.confirm(question));
    }
    dialog.querySelector("#confirm-dialog-text").textContent = question;
    return new Promise(function (resolve) {
      dialog.addEventListener("close", function () {
        resolve(dialog.returnValue === "confirm");
        if (trigger && document.body.contains(trigger)) { trigger.focus(); }
      }, { once: true });
      dialog.returnValue = "";
      dialog.showModal();
    });
  }

  document.addEventListener("htmx:confirm", function (evt) {
    var submitter = evt.detail.triggeringEvent && evt.detail.triggeringEvent.submitter;
    var question = submitter && submitter.dataset.confirm;
    if (!question) { return; }
    if (submitter.id === "retry-selected" && submitter.form &&
        !submitter.form.querySelector("input[name='record_id']:checked")) {
      return; /* nothing selected: the server says so */
    }
    evt.preventDefault();
    confirmWith(question, submitter).then(function (confirmed) {
      if (confirmed) { evt.detail.issueRequest(true); }
    });
  });

  /* The history row is a disclosure: the button toggles it, and opening it loads the history while the row
   * still holds its placeholder (again after a refresh put the placeholder back). */
  document.addEventListener("click", function (evt) {
    var button = evt.target.closest && evt.target.closest("button[aria-controls^='history-']");
    if (!button) { return; }
    var row = document.getElementById(button.getAttribute("aria-controls"));
    if (!row) { return; }
    var expanded = button.getAttribute("aria-expanded") === "true";
    button.setAttribute("aria-expanded", expanded ? "false" : "true");
    row.hidden = expanded;
    if (!expanded && row.querySelector("[data-history-placeholder]") && window.htmx) {
      window.htmx.trigger(button, "history:load");
    }
  });

  /* Turning live updates back on catches the table up at once. */
  document.addEventListener("change", function (evt) {
    if (evt.target.id === "records-live" && evt.target.checked && window.htmx) {
      window.htmx.trigger(document.body, JSON.parse(document.body.dataset.liveEvents).RECORDS_CHANGED);
    }
  });

  /* Form errors (422) are swapped in like any answer; other errors are announced. */
  document.addEventListener("htmx:beforeSwap", function (evt) {
    if (evt.detail.xhr.status === 422) {
      evt.detail.shouldSwap = true;
      evt.detail.isError = false;
    }
  });

  document.addEventListener("htmx:responseError", function () {
    var screen = document.getElementById("status-screen");
    announce(screen ? screen.dataset.errorText : "", "sr-alert");
  });

  document.addEventListener("htmx:beforeRequest", function (evt) {
    var target = evt.detail.target;
    /* Never on a live region (the connection check's results): it would hold back the announcement. */
    if (target && target.id !== "action-result" && target.getAttribute("role") !== "status") {
      target.setAttribute("aria-busy", "true");
    }
  });

  document.addEventListener("htmx:afterRequest", function (evt) {
    var target = evt.detail.target;
    if (target) { target.removeAttribute("aria-busy"); }
  });

  /* Whether focus was in the records table when a swap replaced it (the user's own request: paging,
   * filters, sort; refreshes are morphed by refresh.js and keep focus themselves). */
  var focusWasInRecords = false;
  document.addEventListener("htmx:beforeSwap", function (evt) {
    var target = evt.detail.target;
    if (target && target.id === "records") { focusWasInRecords = target.contains(document.activeElement); }
  });

  /* Runs on each element a swap put in; with outerHTML that is the new section, not the replaced one. */
  document.addEventListener("htmx:afterSettle", function (evt) {
    var target = evt.target;
    if (!target || !target.id) { return; }
    var requester = evt.detail.requestConfig && evt.detail.requestConfig.elt;
    if (target.id === "records") {
      if (requester && requester.id !== "records") { announce(target.dataset.announce); }
      /* The control used is gone (the Next link on the last page): the new page starts at its heading. */
      if (focusWasInRecords && (document.activeElement === document.body || !document.activeElement)) {
        focusTarget(document.getElementById("records-title"));
      }
      focusWasInRecords = false;
    } else if (target.id === "action-result") {
      /* Progress is spoken when it changed, at most every PROGRESS_ANNOUNCE_MS; the closing summary at once. */
      var text = target.dataset.announce;
      var final = target.dataset.announceFinal === "true";
      var now = Date.now();
      if (text !== lastProgressText && (final || now - lastProgressAnnouncement >= PROGRESS_ANNOUNCE_MS)) {
        lastProgressAnnouncement = now;
        lastProgressText = final ? "" : text;
        announce(text, target.querySelector(".problem") ? "sr-alert" : "sr-status");
      }
    } else if (target.id === "connector-settings") {
      var summary = target.querySelector(".error-summary");
      if (summary) {
        focusTarget(summary);
      } else {
        var saved = target.querySelector("[data-announce]");
        if (saved) { announce(saved.dataset.announce); }
      }
    }
  });

  /* A page that comes back with a problem puts focus on it, so it is read first. */
  document.addEventListener("DOMContentLoaded", function () {
    var toggle = document.getElementById("records-live-toggle");
    if (toggle) { toggle.hidden = false; }
    focusTarget(document.querySelector(".error-summary, #action-error"));
  });
})();
