"""Analytics events recorded by community (registered with experiments.events at startup)."""

QUESTION_ASKED = "community_question_asked"
QUESTION_EDITED = "community_question_edited"
ANSWER_POSTED = "community_answer_posted"
ANSWER_EDITED = "community_answer_edited"
COMMENT_POSTED = "community_comment_posted"
VOTE_CAST = "community_vote_cast"
ANSWER_ACCEPTED = "community_answer_accepted"
POST_FLAGGED = "community_post_flagged"
POST_HIDDEN = "community_post_hidden"
POST_REVIEWED = "community_post_reviewed"
QUESTION_CLOSED = "community_question_closed"
QUESTION_DELETED = "community_question_deleted"
CLOCK_PAUSED = "community_clock_paused"
CLOCK_RESUMED = "community_clock_resumed"
CLOCK_STOPPED = "community_clock_stopped"
# A running or paused clock moved to a better support tier (Premium support bought).
CLOCK_UPGRADED = "community_clock_upgraded"
QUESTION_ESCALATED = "community_question_escalated"
ESCALATION_ASSIGNED = "community_escalation_assigned"
ESCALATION_LEAD_FLAGGED = "community_escalation_lead_flagged"
ESCALATION_RESOLVED = "community_escalation_resolved"
NOTIFICATIONS_UNSUBSCRIBED = "community_notifications_unsubscribed"

EVENTS: list[str] = [
    QUESTION_ASKED,
    QUESTION_EDITED,
    ANSWER_POSTED,
    ANSWER_EDITED,
    COMMENT_POSTED,
    VOTE_CAST,
    ANSWER_ACCEPTED,
    POST_FLAGGED,
    POST_HIDDEN,
    POST_REVIEWED,
    QUESTION_CLOSED,
    QUESTION_DELETED,
    CLOCK_PAUSED,
    CLOCK_RESUMED,
    CLOCK_STOPPED,
    CLOCK_UPGRADED,
    QUESTION_ESCALATED,
    ESCALATION_ASSIGNED,
    ESCALATION_LEAD_FLAGGED,
    ESCALATION_RESOLVED,
    NOTIFICATIONS_UNSUBSCRIBED,
]
