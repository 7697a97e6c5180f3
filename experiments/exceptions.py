from common.exceptions import FlywheelError


class AnalyticsUnavailable(FlywheelError):
    default_message = "The analytics service could not be reached; events stay queued."


class UnknownEvent(FlywheelError):
    default_message = "That analytics event is not defined."


class DefinitionInvalid(FlywheelError):
    default_message = "The experiment definitions are not valid."
