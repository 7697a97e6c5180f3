"""The one error type every Flywheel error derives from.

Each subclass carries a message a user can read; views show it as it is.
"""


class FlywheelError(Exception):
    """A refusal or failure with a message meant for the person who caused it."""

    default_message = "Something went wrong."

    def __init__(self, message: str | None = None) -> None:
        self.message = message or self.default_message
        super().__init__(self.message)


class NotFound(FlywheelError):
    default_message = "Not found."


class PermissionDenied(FlywheelError):
    default_message = "You do not have permission to do that."


class ValidationError(FlywheelError):
    default_message = "The input is not valid."


class RequestMalformed(FlywheelError):
    """A request none of Flywheel's pages sends, such as an id that is not an id. Raised from a
    view, it is answered 400 with its message (common.middleware.RequestMalformedMiddleware)."""

    default_message = "That request could not be read: nothing was saved."
