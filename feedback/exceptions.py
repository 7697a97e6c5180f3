from common.exceptions import FlywheelError, NotFound, PermissionDenied, ValidationError

__all__ = [
    "FlywheelError",
    "NotFound",
    "PermissionDenied",
    "ValidationError",
    "ResponseInvalid",
    "SurveyClosed",
]


class ResponseInvalid(ValidationError):
    default_message = "The answer is not valid."


class SurveyClosed(FlywheelError):
    default_message = "This survey was already answered or dismissed."
