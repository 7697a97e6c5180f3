from common.exceptions import FlywheelError, NotFound


class PartnerError(FlywheelError):
    default_message = "That cannot be done for this partner."


class NotAPartner(NotFound):
    """The current organization is not an approved, active partner (or the user is not one of
    its people). A NotFound: nobody learns what exists behind a partner page."""

    default_message = "This page is for approved partners. Apply to become one from /partner/apply/."


class CustomerNotLinked(NotFound):
    """No active link between this partner and that customer: answered exactly as a customer
    that does not exist, whatever the id names."""

    default_message = "No customer of yours has that id."


class QuoteInvalid(FlywheelError):
    default_message = "That quote cannot be made."


class QuoteNotAcceptable(FlywheelError):
    """Expired, withdrawn or already accepted: nothing is bought."""

    default_message = "This quote can no longer be accepted."
