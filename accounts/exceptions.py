from common.exceptions import FlywheelError, NotFound, PermissionDenied, ValidationError

__all__ = [
    "FlywheelError",
    "NotFound",
    "PermissionDenied",
    "ValidationError",
    "SeatLimitReached",
    "InviteInvalid",
    "AlreadyMember",
]


class SeatLimitReached(FlywheelError):
    """Raised by the seat policy: the organization has no free seat for one more user."""

    default_message = (
        "Your organization has used all its seats. An admin can move to a bigger edition, or "
        "free a seat by removing a member or withdrawing an invite."
    )

    def __init__(
        self, message: str | None = None, *, limit: int | None = None, product: str = "", to_admin: str = ""
    ) -> None:
        self.limit = limit
        self.product = product
        super().__init__(message)
        # The same refusal said to an admin, who is the one who can act on it ("you can move to").
        self.to_admin = to_admin or self.message


class InviteInvalid(FlywheelError):
    default_message = "This invitation link is not valid."


class AlreadyMember(FlywheelError):
    default_message = "That person is already a member of this organization."
