// Sign-in and signup pages: a "Show" button beside each password field marked
// data-password-toggle, and the browser's time zone in hidden fields marked
// data-browser-time-zone (for quiet hours in email). Without JavaScript the fields work as
// plain fields.
(function () {
  function passwordToggle(input) {
    const button = document.createElement("button");
    button.type = "button";
    button.className = "secondary password-toggle";
    button.textContent = "Show";
    button.setAttribute("aria-controls", input.id);
    button.setAttribute("aria-pressed", "false");
    button.setAttribute("aria-label", "Show password");
    button.addEventListener("click", function () {
      const shown = input.type === "text";
      input.type = shown ? "password" : "text";
      button.textContent = shown ? "Show" : "Hide";
      button.setAttribute("aria-pressed", shown ? "false" : "true");
      button.setAttribute("aria-label", shown ? "Show password" : "Hide password");
      input.focus();
    });
    const row = document.createElement("div");
    row.className = "row password-row";
    input.parentNode.insertBefore(row, input);
    row.appendChild(input);
    row.appendChild(button);
  }

  function ready() {
    document.querySelectorAll("input[data-password-toggle]").forEach(passwordToggle);
    let zone = "";
    try {
      zone = Intl.DateTimeFormat().resolvedOptions().timeZone || "";
    } catch (error) {
      zone = "";
    }
    document.querySelectorAll("input[data-browser-time-zone]").forEach(function (input) {
      input.value = zone;
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", ready);
  } else {
    ready();
  }
})();
