/* Early Help assistant launcher for a council's own page:
 *   <script src="https://ASSISTANT-HOST/widget.js" defer></script>
 * It adds one button that opens the assistant on its own site, in a new window. The chat is not put
 * inside the council's page (no iframe): its session cookie is strict to its own site, and a frame could
 * be covered or read by the host page. Everything here is created with DOM calls; no HTML is parsed. */
(function () {
  "use strict";
  var script = document.currentScript;
  if (!script || document.getElementById("earlyhelp-launcher")) return;
  var origin;
  try {
    origin = new URL(script.src, window.location.href).origin;
  } catch (e) {
    return;
  }
  var label = script.getAttribute("data-label") || "Chat to the Early Help assistant";
  var button = document.createElement("button");
  button.type = "button";
  button.id = "earlyhelp-launcher";
  button.textContent = label;
  var s = button.style;
  s.position = "fixed";
  s.right = "1rem";
  s.bottom = "1rem";
  s.zIndex = "2147483000";
  s.padding = "0.75rem 1rem";
  s.minHeight = "2.75rem";
  s.font = "700 1rem/1.25 system-ui, -apple-system, 'Segoe UI', Roboto, Arial, sans-serif";
  s.color = "#ffffff";
  s.background = "#1d4f91";
  s.border = "2px solid #ffffff";
  s.borderRadius = "0.25rem";
  s.boxShadow = "0 2px 6px rgba(0,0,0,0.35)";
  s.cursor = "pointer";
  button.addEventListener("focus", function () { s.outline = "3px solid #ffdd00"; s.outlineOffset = "2px"; });
  button.addEventListener("blur", function () { s.outline = ""; });
  button.addEventListener("click", function () {
    var opened = window.open(origin + "/", "_blank");
    if (opened) opened.opener = null; else window.location.assign(origin + "/");
  });
  function add() { document.body.appendChild(button); }
  if (document.body) add(); else document.addEventListener("DOMContentLoaded", add);
})();
