"""Why a card payment failed, in the customer's words, from the code Stripe gave.

Stripe gives two codes for a refused card: a generic one (`card_declined`) and, from the bank,
a `decline_code` (`insufficient_funds` ...), documented at https://docs.stripe.com/declines/codes.
A payment keeps the most specific code either path (the worker's card error, Stripe's webhook)
brought (`reason_is_more_specific`), and pages and emails say it as a sentence
(`decline_reason`), never as the code itself.

For a card reported lost or stolen, or a charge the bank suspects of fraud, Stripe advises
telling the customer only that the card was declined: those codes read as the generic sentence.
"""

from __future__ import annotations

DECLINED = "Your bank declined the charge."

# Codes that say no more than "it failed": any other code is a more specific reason.
GENERIC_CODES = frozenset(
    {"card_declined", "generic_decline", "invalid_request", "processor_unavailable", "payment_intent_payment_attempt_failed"}
)

_CONTACT_BANK = "Your bank declined the charge: {}. Your bank can tell you more, or use another card."

DECLINE_REASONS: dict[str, str] = {
    # Stripe's decline codes (docs.stripe.com/declines/codes).
    "insufficient_funds": "Your bank declined the charge: the card has insufficient funds.",
    "card_velocity_exceeded": "Your bank declined the charge: the card's balance or credit limit is reached.",
    "withdrawal_count_limit_exceeded": "Your bank declined the charge: the card's limit is reached.",
    "expired_card": "Your bank declined the charge: the card has expired.",
    "incorrect_cvc": "Your bank declined the charge: the security code (CVC) is wrong.",
    "invalid_cvc": "Your bank declined the charge: the security code (CVC) is wrong.",
    "incorrect_number": "Your bank declined the charge: the card number is wrong.",
    "invalid_number": "Your bank declined the charge: the card number is wrong.",
    "incorrect_zip": "Your bank declined the charge: the postal code does not match the card.",
    "invalid_expiry_month": "Your bank declined the charge: the expiry month is wrong.",
    "invalid_expiry_year": "Your bank declined the charge: the expiry year is wrong.",
    "incorrect_pin": "Your bank declined the charge: the PIN is wrong.",
    "invalid_pin": "Your bank declined the charge: the PIN is wrong.",
    "pin_try_exceeded": "Your bank declined the charge: the PIN was entered wrong too many times.",
    "offline_pin_required": "Your bank declined the charge: it asks for the card's PIN, which cannot be given online.",
    "online_or_offline_pin_required": "Your bank declined the charge: it asks for the card's PIN, which cannot be given online.",
    "authentication_required": "Your bank asks you to confirm this payment: pay the invoice yourself to confirm it with your bank.",
    "payment_intent_authentication_failure": "The payment was not confirmed with your bank, so nothing was charged.",
    "card_not_supported": "Your bank declined the charge: the card does not support this kind of purchase.",
    "currency_not_supported": "Your bank declined the charge: the card does not support payments in this currency.",
    "invalid_amount": "Your bank declined the charge: the amount is more than the card allows.",
    "invalid_account": _CONTACT_BANK.format("the card or its account is not valid"),
    "new_account_information_available": _CONTACT_BANK.format("the card or its account is not valid"),
    "restricted_card": _CONTACT_BANK.format("the card cannot be used for this payment"),
    "transaction_not_allowed": _CONTACT_BANK.format("the card cannot be used for this payment"),
    "service_not_allowed": _CONTACT_BANK.format("the card cannot be used for this payment"),
    "not_permitted": _CONTACT_BANK.format("the card cannot be used for this payment"),
    "do_not_honor": _CONTACT_BANK.format("it gave no reason"),
    "do_not_try_again": _CONTACT_BANK.format("it gave no reason"),
    "call_issuer": _CONTACT_BANK.format("it asks you to call it"),
    "approve_with_id": "Your bank could not approve the charge. Try again, or use another card.",
    "issuer_not_available": "Your bank could not be reached to approve the charge. Try again, or use another card.",
    "reenter_transaction": "Your bank could not process the charge. Try again, or use another card.",
    "try_again_later": "Your bank could not process the charge. Try again, or use another card.",
    "processing_error": "The charge could not be processed. Try again, or use another card.",
    "no_action_taken": _CONTACT_BANK.format("it gave no reason"),
    "revocation_of_all_authorizations": _CONTACT_BANK.format("it was told to stop charges to this card"),
    "revocation_of_authorization": _CONTACT_BANK.format("it was told to stop charges to this card"),
    "stop_payment_order": _CONTACT_BANK.format("it was told to stop charges to this card"),
    "duplicate_transaction": "Your bank declined the charge: a charge of the same amount on the same card was just made.",
    "card_decline_rate_limit_exceeded": "This card was declined too many times today. Use another card, or try again tomorrow.",
    "testmode_decline": "The card is a test card: it cannot pay.",
    # Reasons Flywheel records itself.
    "no_card": "No card was on file to pay with: add a card.",
    "canceled": "The payment was canceled before anything was charged.",
    "invalid_request": "The payment could not be made with this card. Try another card.",
    "processor_unavailable": "Our payment processor could not be reached, so nothing was charged.",
}
# Lost or stolen cards, fraud: the customer hears only that the card was declined (Stripe's advice).
for _code in ("lost_card", "stolen_card", "pickup_card", "fraudulent", "merchant_blacklist", "security_violation"):
    DECLINE_REASONS[_code] = DECLINED


def decline_reason(code: str) -> str:
    """Why a payment failed as a sentence for the customer; the generic one for a code that
    says nothing more or that Flywheel does not know."""
    return DECLINE_REASONS.get((code or "").strip().lower(), DECLINED)


def specificity(code: str) -> int:
    """How much a failure code says: 0 nothing, 1 only that it failed, 2 why."""
    if not code:
        return 0
    return 1 if code in GENERIC_CODES else 2


def reason_is_more_specific(new: str, current: str) -> bool:
    """Whether `new` says more than `current`: a payment's failure code is only ever replaced
    by a more specific one, whichever path (worker, webhook) reported it first."""
    return specificity(new) > specificity(current)
