"""Analytics events recorded by the in-product kit (registered with experiments.events at
startup). Each carries the message's `type` (prompt, survey, try_product, invite_nudge), its
`kind` (the prompt's kind, "nps", "invite" or the products to try), the product the person was
in, and `channel: "kit"`; docs/in-product.md lists them."""

KIT_MESSAGE_SHOWN = "kit_message_shown"
KIT_MESSAGE_CLICKED = "kit_message_clicked"
KIT_MESSAGE_DISMISSED = "kit_message_dismissed"
KIT_SURVEY_ANSWERED = "kit_survey_answered"
KIT_SURVEY_DISMISSED = "kit_survey_dismissed"
KIT_ADMINS_ASKED = "kit_admins_asked"
KIT_TRIAL_STARTED = "kit_trial_started"
KIT_SUCCESS = "kit_success"
KIT_INVITE_NUDGE_EMAILED = "kit_invite_nudge_emailed"

EVENTS: list[str] = [
    KIT_MESSAGE_SHOWN,
    KIT_MESSAGE_CLICKED,
    KIT_MESSAGE_DISMISSED,
    KIT_SURVEY_ANSWERED,
    KIT_SURVEY_DISMISSED,
    KIT_ADMINS_ASKED,
    KIT_TRIAL_STARTED,
    KIT_SUCCESS,
    KIT_INVITE_NUDGE_EMAILED,
]
