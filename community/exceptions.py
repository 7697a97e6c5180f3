"""Refusals of the community forum, each with a message the member can read."""

from common.exceptions import FlywheelError, NotFound, PermissionDenied, ValidationError

__all__ = [
    "FlywheelError",
    "NotFound",
    "PermissionDenied",
    "ValidationError",
    "PostInvalid",
    "PrivilegeRequired",
    "RateLimited",
    "AlreadyFlagged",
    "QuestionNotOpen",
]


class PostInvalid(ValidationError):
    default_message = "The post is not valid."


class PrivilegeRequired(PermissionDenied):
    default_message = "You need more reputation to do that."


class RateLimited(FlywheelError):
    default_message = "You are posting too fast. Please wait a while before posting again."


class AlreadyFlagged(FlywheelError):
    default_message = "You have already flagged this post."


class QuestionNotOpen(FlywheelError):
    default_message = "This question is closed; it takes no new answers."
