from common.exceptions import FlywheelError


class AnalyticsUnavailable(FlywheelError):
    default_message = "The analytics service could not be reached; events stay queued."


class UnknownEvent(FlywheelError):
    default_message = "That analytics event is not defined."


class DefinitionInvalid(FlywheelError):
    default_message = "The experiment definitions are not valid."


class AnalyticsRefused(AnalyticsUnavailable):
    """PostHog answered that it will never take these events (a 4xx other than 408/429):
    retrying the same payload cannot succeed. `status` is PostHog's HTTP status."""

    default_message = "PostHog refused the events."

    def __init__(self, message: str = "", *, status: int = 0) -> None:
        self.status = status
        super().__init__(message)
