"""The kit's refusals, each with a sentence the person can read (the kit shows it as it is)."""

from common.exceptions import FlywheelError, NotFound, PermissionDenied, ValidationError

__all__ = ["FlywheelError", "NotFound", "PermissionDenied", "ValidationError", "AskedToday", "MessageNotDue"]


class AskedToday(FlywheelError):
    default_message = "You asked the admins about this today already; they have your request."


class MessageNotDue(NotFound):
    default_message = "This message no longer applies: reload the page."
