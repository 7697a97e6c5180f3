// The card form of Flywheel's billing pages: Stripe.js mounts its card element in
// #card-element, confirms the SetupIntent whose client secret the element carries (3-D Secure
// when the card asks), then submits the form with the SetupIntent's id in #setup-intent.
function flywheelCardForm(formId, buttonId, publishableKey) {
  const stripe = Stripe(publishableKey);
  const card = stripe.elements().create("card");
  const mount = document.getElementById("card-element");
  card.mount(mount);
  const form = document.getElementById(formId);
  form.addEventListener("submit", async (event) => {
    if (document.getElementById("setup-intent").value) return;
    event.preventDefault();
    const button = document.getElementById(buttonId);
    button.disabled = true;
    const result = await stripe.confirmCardSetup(mount.dataset.clientSecret, {payment_method: {card}});
    if (result.error) {
      document.getElementById("card-error").textContent = result.error.message || "The card was not accepted.";
      button.disabled = false;
      return;
    }
    document.getElementById("setup-intent").value = result.setupIntent.id;
    form.submit();
  });
}
