// The site header: on a phone the navigation collapses behind the Menu button; the dropdown
// menus (<details data-menu>) close on Escape, on a click elsewhere, and when another opens.
// Without this script the button stays hidden and every link is shown, so nothing is lost.
// A button with data-copy="text" copies that text to the clipboard (ids, new API keys).
(function () {
  "use strict";
  function setUp() {
    var header = document.querySelector("[data-site-header]");
    if (!header) return;
    var toggle = header.querySelector("[data-menu-toggle]");
    var nav = toggle && document.getElementById(toggle.getAttribute("aria-controls"));
    var menus = Array.prototype.slice.call(header.querySelectorAll("details[data-menu]"));

    if (toggle && nav) {
      header.classList.add("is-collapsible");
      toggle.hidden = false;
      toggle.addEventListener("click", function () {
        var open = toggle.getAttribute("aria-expanded") !== "true";
        toggle.setAttribute("aria-expanded", String(open));
        header.classList.toggle("is-open", open);
        if (open) {
          var first = nav.querySelector("a, summary, button");
          if (first) first.focus();
        }
      });
    }

    menus.forEach(function (menu) {
      menu.addEventListener("toggle", function () {
        if (!menu.open) return;
        menus.forEach(function (other) { if (other !== menu) other.open = false; });
      });
    });

    document.addEventListener("click", function (event) {
      menus.forEach(function (menu) {
        if (menu.open && !menu.contains(event.target)) menu.open = false;
      });
    });

    document.addEventListener("keydown", function (event) {
      if (event.key !== "Escape") return;
      var openMenu = menus.filter(function (menu) { return menu.open; })[0];
      if (openMenu) {
        openMenu.open = false;
        openMenu.querySelector("summary").focus();
      } else if (toggle && toggle.getAttribute("aria-expanded") === "true") {
        toggle.setAttribute("aria-expanded", "false");
        header.classList.remove("is-open");
        toggle.focus();
      }
    });
  }
  function setUpCopyButtons() {
    document.addEventListener("click", function (event) {
      var button = event.target.closest("button[data-copy]");
      if (!button || !navigator.clipboard) return;
      var label = button.getAttribute("data-label") || button.textContent;
      button.setAttribute("data-label", label);
      navigator.clipboard.writeText(button.getAttribute("data-copy")).then(function () {
        button.textContent = "Copied";
        window.setTimeout(function () { button.textContent = label; }, 2000);
      });
    });
  }
  function showCopyButtons() {
    // The buttons are rendered hidden: without a script or a clipboard the text stays selectable.
    if (!navigator.clipboard) return;
    Array.prototype.forEach.call(document.querySelectorAll("button[data-copy]"), function (button) {
      button.hidden = false;
    });
  }
  function makeScrollersReachable() {
    // A table or a block of code wider than a phone scrolls inside itself; a keyboard user can
    // only scroll it once it takes focus (WCAG 2.1.1), so each one that overflows gets a tab stop
    // and a name, and loses them when the window grows wide enough to show it whole.
    var selector = ".table-scroll, main pre, main table";
    Array.prototype.forEach.call(document.querySelectorAll(selector), function (region) {
      var overflows = region.scrollWidth > region.clientWidth + 1;
      if (overflows && !region.hasAttribute("tabindex")) {
        region.setAttribute("tabindex", "0");
        region.setAttribute("data-scroll-stop", "");
        if (!region.hasAttribute("aria-label") && region.tagName !== "TABLE") {
          var caption = region.querySelector("caption");
          region.setAttribute("role", "region");
          region.setAttribute("aria-label", caption ? caption.textContent.trim() : "Scrollable content");
        }
      } else if (!overflows && region.hasAttribute("data-scroll-stop")) {
        region.removeAttribute("tabindex");
        region.removeAttribute("data-scroll-stop");
      }
    });
  }
  setUpCopyButtons();
  window.addEventListener("resize", makeScrollersReachable);
  function ready() { setUp(); showCopyButtons(); makeScrollersReachable(); }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", ready);
  else ready();
})();
