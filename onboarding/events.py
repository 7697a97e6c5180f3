"""Analytics events recorded by onboarding (registered with experiments.events at startup)."""

ONBOARDING_ENROLLED = "onboarding_enrolled"
ONBOARDING_EMAIL_SENT = "onboarding_email_sent"
ONBOARDING_EMAIL_SKIPPED = "onboarding_email_skipped"
ONBOARDING_EMAIL_OPENED = "onboarding_email_opened"
ONBOARDING_EMAIL_CLICKED = "onboarding_email_clicked"
ONBOARDING_EXITED = "onboarding_exited"
ONBOARDING_COMPLETED = "onboarding_completed"
MARKETING_UNSUBSCRIBED = "marketing_unsubscribed"

EVENTS: list[str] = [
    ONBOARDING_ENROLLED,
    ONBOARDING_EMAIL_SENT,
    ONBOARDING_EMAIL_SKIPPED,
    ONBOARDING_EMAIL_OPENED,
    ONBOARDING_EMAIL_CLICKED,
    ONBOARDING_EXITED,
    ONBOARDING_COMPLETED,
    MARKETING_UNSUBSCRIBED,
]
