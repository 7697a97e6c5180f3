from common.exceptions import FlywheelError


class LinkInvalid(FlywheelError):
    default_message = "This link is not valid. Check that you copied all of it."


class UnsubscribeInvalid(LinkInvalid):
    default_message = (
        "This unsubscribe link is not valid. Check that you copied all of it, or use the link "
        "in the most recent email we sent you."
    )
