// The card form of Flywheel's billing pages: Stripe.js mounts its card element in
// #card-element, confirms the SetupIntent whose client secret the element carries (3-D Secure
// when the card asks), then submits the form with the SetupIntent's id in #setup-intent.
//
// In development Stripe.js is localstripe's stand-in: five bare inputs, and a year field that
// prefixes "20" to what is typed ("2030" became 202030, answered "Bad request"). The form
// labels those inputs, asks for MM / YY, and passes a four-digit year as its last two digits.

const CARD_DETAILS_HELP =
  "The card was not accepted: check the card number, the expiry date (MM / YY, for example 04 / 30) and the security code (CVC).";

// An error from Stripe.js, in words a customer can act on.
function flywheelCardErrorText(error) {
  const message = ((error && error.message) || "").trim();
  if (!message || /^bad request$/i.test(message) || /^\[object /.test(message)) return CARD_DETAILS_HELP;
  if (error.code === "invalid_expiry_year" || error.code === "invalid_expiry_month") {
    return `${message} Enter the expiry as MM / YY, for example 04 / 30.`;
  }
  return message;
}

// localstripe's inputs (absent with the real Stripe.js, whose element does all this itself).
function flywheelLocalInputs(mount) {
  const inputs = {};
  for (const name of ["number", "exp_month", "exp_year", "cvc", "postal_code"]) {
    inputs[name] = mount.querySelector(`input[placeholder=${name}]`);
  }
  return inputs.exp_year ? inputs : null;
}

function flywheelLabelLocalInputs(inputs) {
  const labels = {
    number: "Card number",
    exp_month: "Expiry month (MM)",
    exp_year: "Expiry year (YY)",
    cvc: "Security code (CVC)",
    postal_code: "Postal code",
  };
  const placeholders = {number: "Card number", exp_month: "MM", exp_year: "YY", cvc: "CVC", postal_code: "Postal code"};
  for (const [name, label] of Object.entries(labels)) {
    inputs[name].setAttribute("placeholder", placeholders[name]);
    inputs[name].setAttribute("aria-label", label);
    inputs[name].setAttribute("title", label);
    inputs[name].setAttribute("inputmode", name === "postal_code" ? "text" : "numeric");
  }
  inputs.exp_month.setAttribute("maxlength", "2");
  inputs.exp_year.setAttribute("maxlength", "4");
}

// "2030" -> "30", " 4 " -> "04": what localstripe's element expects, whatever was typed.
function flywheelNormalizeExpiry(inputs) {
  const month = inputs.exp_month.value.replace(/\D/g, "");
  const year = inputs.exp_year.value.replace(/\D/g, "");
  const normalized = {
    exp_month: month.length === 1 ? `0${month}` : month,
    exp_year: year.length === 4 ? year.slice(2) : year,
  };
  for (const [name, value] of Object.entries(normalized)) {
    if (inputs[name].value !== value) {
      inputs[name].value = value;
      inputs[name].dispatchEvent(new Event("input", {bubbles: true}));
    }
  }
  if (normalized.exp_month === "" || normalized.exp_year.length !== 2) {
    return "Enter the expiry date as MM / YY, for example 04 / 30.";
  }
  return "";
}

function flywheelCardForm(formId, buttonId, publishableKey) {
  const stripe = Stripe(publishableKey);
  const card = stripe.elements().create("card");
  const mount = document.getElementById("card-element");
  card.mount(mount);
  const localInputs = flywheelLocalInputs(mount);
  if (localInputs) flywheelLabelLocalInputs(localInputs);
  const form = document.getElementById(formId);
  const errorBox = document.getElementById("card-error");
  form.addEventListener("submit", async (event) => {
    if (document.getElementById("setup-intent").value) return;
    event.preventDefault();
    const button = document.getElementById(buttonId);
    errorBox.textContent = "";
    if (localInputs) {
      const problem = flywheelNormalizeExpiry(localInputs);
      if (problem) {
        errorBox.textContent = problem;
        return;
      }
    }
    button.disabled = true;
    let result;
    try {
      result = await stripe.confirmCardSetup(mount.dataset.clientSecret, {payment_method: {card}});
    } catch (error) {
      result = {error};
    }
    if (result.error) {
      errorBox.textContent = flywheelCardErrorText(result.error);
      button.disabled = false;
      return;
    }
    document.getElementById("setup-intent").value = result.setupIntent.id;
    form.submit();
  });
}
