from common.exceptions import FlywheelError


class TrialNotOffered(FlywheelError):
    default_message = "This edition has no free trial."


class SubscriptionExists(FlywheelError):
    default_message = "Your organization already has this product."


class PaymentError(FlywheelError):
    default_message = "The payment did not go through."


class CardDeclined(PaymentError):
    """The bank refused the card; `message` is the bank's reason as Stripe words it."""

    def __init__(self, message: str, *, code: str = "card_declined", decline_code: str = "", payment_intent_id: str = "") -> None:
        self.code = code
        self.decline_code = decline_code
        self.payment_intent_id = payment_intent_id
        super().__init__(message)


class PaymentProcessorUnavailable(PaymentError):
    default_message = "Our payment processor did not answer. Try again in a minute."


class PaymentSetupInvalid(PaymentError):
    default_message = "The payment request was refused."


class NoCardOnFile(PaymentError):
    default_message = "Add a card first."


class WebhookSignatureInvalid(FlywheelError):
    default_message = "Webhook signature refused."


class CheckoutInvalid(FlywheelError):
    default_message = "That choice is not possible."
