"""The kit's refusals. Each carries the HTTP status its endpoints answer with and a sentence
naming what was wrong; the endpoints answer `{"detail": <message>}` (docs/in-product.md)."""

from __future__ import annotations

from common.exceptions import FlywheelError, NotFound, PermissionDenied, ValidationError

__all__ = [
    "FlywheelError", "NotFound", "PermissionDenied", "ValidationError", "KitError", "KitBadRequest", "KitTokenRefused",
    "KitSessionExpired", "KitForbidden", "KitMethodNotAllowed", "AskedToday", "MessageNotDue", "DoneOnFlywheel",
]


class KitError(FlywheelError):
    """A kit request refused; `status` is the HTTP status the endpoint answers with."""

    status = 400
    default_message = "That request could not be read: nothing was saved."


class KitBadRequest(KitError):
    """The request itself is malformed (not JSON, a field missing or of the wrong type)."""

    status = 400


class KitTokenRefused(KitError):
    """The token is forged, malformed, expired, too long-lived, signed with an unknown or
    retired key, or already exchanged."""

    status = 401
    default_message = "The token was refused."


class KitSessionExpired(KitError):
    """The session credential is missing, expired, tampered with, or names a session or
    membership that no longer exists: the kit exchanges a fresh token."""

    status = 401
    default_message = "Your Flywheel session has expired: reload the page."


class KitForbidden(KitError):
    """The caller is known but not allowed: an origin the product has not registered, or a
    user who is not a member of the token's organization."""

    status = 403
    default_message = "You are not allowed to do that."


class KitOriginRefused(KitForbidden):
    """The request comes from no origin, or from one the product has not registered (or not the
    one its credential was issued to). Answered without CORS headers: the page cannot read it."""


class KitMethodNotAllowed(KitError):
    status = 405
    default_message = "This address does not answer that method."


class AskedToday(KitError):
    """A member asked the admins about this kind of message today already."""

    status = 429
    default_message = "You asked the admins about this today already; they have your request."


class MessageNotDue(NotFound):
    """The message named no longer applies to the person (resolved, dismissed, or never theirs)."""

    default_message = "This message no longer applies: reload the page."


class DoneOnFlywheel(KitError):
    """What was asked cannot be done from the kit, but Flywheel's page at `url` does it (or says
    why not): the kit turns its button into a link there."""

    status = 409

    def __init__(self, message: str, *, url: str) -> None:
        super().__init__(message)
        self.url = url
