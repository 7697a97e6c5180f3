from common.exceptions import FlywheelError


class TrialNotOffered(FlywheelError):
    default_message = "This edition has no free trial."


class SubscriptionExists(FlywheelError):
    default_message = "Your organization already has this product."
