from common.exceptions import FlywheelError


class ProvisioningError(FlywheelError):
    default_message = "The workspace could not be prepared."


class TransientProvisioningError(ProvisioningError):
    """Worth retrying: a timeout, a refused connection, a 5xx."""


class PermanentProvisioningError(ProvisioningError):
    """Not worth retrying: the product refused the request (4xx) or answered nonsense."""


class CallbackRejected(FlywheelError):
    """A provisioning callback that was refused; `status` is the HTTP status to answer."""

    def __init__(self, message: str, *, status: int = 400) -> None:
        self.status = status
        super().__init__(message)
