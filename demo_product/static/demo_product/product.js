// The demo product's page script (an external file: the page's CSP allows no inline script).
// After the product's success action, the page that follows tells Flywheel through the kit:
// element.track('first_success') (docs/in-product.md). The kit's module may still be loading,
// so this waits until <flywheel-kit> is defined.
(function () {
  "use strict";
  var name = document.body.getAttribute("data-success");
  if (!name || !window.customElements) return;
  window.customElements.whenDefined("flywheel-kit").then(function () {
    var kit = document.querySelector("flywheel-kit");
    if (kit && typeof kit.track === "function") {
      Promise.resolve(kit.track(name)).catch(function () { /* analytics must never break the page */ });
    }
  });
})();

// A feature some plans lack (Tracker's "Sync with GitHub"): the product does not know what the
// organization bought (it reads no entitlements; Flywheel's kit is its only line to Flywheel),
// so the button asks the kit: element.requestFeature(code) resolves { entitled }, and when the
// organization lacks the feature the kit shows what grants it, its price and how to get it.
(function () {
  "use strict";
  if (!window.customElements) return;
  var status = document.querySelector("[data-feature-status]");
  Array.prototype.forEach.call(document.querySelectorAll("[data-feature]"), function (button) {
    button.addEventListener("click", function () {
      var kit = document.querySelector("flywheel-kit");
      if (!kit || typeof kit.requestFeature !== "function" || button.getAttribute("aria-busy")) return;
      button.setAttribute("aria-busy", "true");
      Promise.resolve(kit.requestFeature(button.getAttribute("data-feature")))
        .then(function (answer) {
          if (answer && answer.entitled && status) {
            status.textContent = button.getAttribute("data-feature-done");
            status.hidden = false;
          }
        })
        .catch(function () { /* the kit says what went wrong in its own card or console */ })
        .then(function () { button.removeAttribute("aria-busy"); });
    });
  });
})();
