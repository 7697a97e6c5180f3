// The demo product's page script (an external file: the page's CSP allows no inline script).
// Every page tells Flywheel what the person did through the kit, element.track(name)
// (docs/in-product.md): the view (board_viewed, page_viewed, queue_viewed) and, on the page
// after the product's success action, what was created (card_created, ...) and the success
// moment first_success. The names are the body's data-track; the kit sends them as one batch.
// Its module may still be loading, so this waits until <flywheel-kit> is defined.
(function () {
  "use strict";
  var names = (document.body.getAttribute("data-track") || "").split(" ").filter(Boolean);
  if (!names.length || !window.customElements) return;
  window.customElements.whenDefined("flywheel-kit").then(function () {
    var kit = document.querySelector("flywheel-kit");
    if (!kit || typeof kit.track !== "function") return;
    names.forEach(function (name) {
      Promise.resolve(kit.track(name)).catch(function () { /* analytics must never break the page */ });
    });
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
