from common.exceptions import FlywheelError


class SubscriptionExists(FlywheelError):
    default_message = "Your organization already has this product."
