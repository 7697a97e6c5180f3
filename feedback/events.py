"""Analytics events recorded by feedback (registered with experiments.events at startup)."""

FEEDBACK_SURVEY_ASKED = "feedback_survey_asked"
FEEDBACK_SURVEY_DISMISSED = "feedback_survey_dismissed"
FEEDBACK_RESPONSE_SUBMITTED = "feedback_response_submitted"
FEEDBACK_CATEGORY_CORRECTED = "feedback_category_corrected"
FEEDBACK_FOLLOW_UP_OPENED = "feedback_follow_up_opened"
FEEDBACK_FOLLOW_UP_RESOLVED = "feedback_follow_up_resolved"
FEEDBACK_DIGEST_CLAIMED = "feedback_digest_claimed"
FEEDBACK_ORGANIZATION_REPORT_SENT = "feedback_organization_report_sent"

EVENTS: list[str] = [
    FEEDBACK_SURVEY_ASKED,
    FEEDBACK_SURVEY_DISMISSED,
    FEEDBACK_RESPONSE_SUBMITTED,
    FEEDBACK_CATEGORY_CORRECTED,
    FEEDBACK_FOLLOW_UP_OPENED,
    FEEDBACK_FOLLOW_UP_RESOLVED,
    FEEDBACK_DIGEST_CLAIMED,
    FEEDBACK_ORGANIZATION_REPORT_SENT,
]
