from common.exceptions import FlywheelError


class TrialNotOffered(FlywheelError):
    default_message = "This edition has no free trial."


class TrialSpent(TrialNotOffered):
    """The organization had its one trial of the product: it can only be bought now."""

    default_message = "Your organization has had this product's trial already."


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


class StripeObjectMissing(PaymentSetupInvalid):
    """Stripe answered 404 (resource_missing): the object does not exist in this account (a
    Connect account's object, deleted test data, a dashboard test event). Permanent: asking
    again never finds it."""

    default_message = "Stripe has no such object."


class WebhookNotOurs(FlywheelError):
    """A stored Stripe event that concerns nothing Flywheel knows (no payment, customer or
    card of ours): recorded as "not ours" with this message as the reason, never retried."""

    default_message = "This event is about nothing Flywheel knows."


class TrainingRefused(FlywheelError):
    """A training assignment or withdrawal that cannot be done; the message says why and what
    to do (buy a pack, pick another colleague)."""

    default_message = "That training assignment is not possible."


class ManagedByPayer(CheckoutInvalid):
    """The subscription is billed to another organization (a channel partner): buying, adding
    seats, changing the edition or adding an add-on is the payer's to do. Cancel, keep and
    viewing stay the organization's own."""

    default_message = "This product is managed by your partner: ask them from the billing page."
