/* Live refresh of the platform panels: at most one refresh every 2 s while syncs land across all
 * organizations, always followed by one after the last change; paused by the checkbox (WCAG 2.2.2). */
(function () {
  "use strict";

  var WAIT_MS = 2000, timer = null, again = false;
  var box = document.getElementById("platform-live");
  function fire() { document.body.dispatchEvent(new CustomEvent("platform:refresh")); }
  function tick() {
    if (again) { again = false; fire(); timer = setTimeout(tick, WAIT_MS); } else { timer = null; }
  }
  document.body.addEventListener("live:changed", function () {
    if (box && !box.checked) { return; }
    if (timer) { again = true; return; }
    fire();
    timer = setTimeout(tick, WAIT_MS);
  });
  if (box) { box.addEventListener("change", function () { if (box.checked) { fire(); } }); }
})();
