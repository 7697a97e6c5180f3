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
