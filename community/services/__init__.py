"""Every write of the community forum and its escalation clock, one module per subject.

Modules import one way, each only from those below it (none imports the package itself):

    posts, votes, moderation    questions, answers, comments; votes and acceptance; flags,
                                reviews, closing and deleting
    escalations                 the escalation tick, the round robin, resolving, the lead's flags
    question_clock              support tiers, policies, each question's clock, the question lock
    members                     the member row, privileges, the moderator check, reputation

escalations imports community.tasks at the top (to tell engineers after the tick); the tasks
import their service inside the task body, so there is no circle. Nothing is re-exported
here: import from the module.

Lock order, everywhere: the question, then its answer, then escalations, then support engineers
(by pk), then members (by pk). Counters move with F(); uniqueness (one vote, one flag per user
and post, one escalation per question) is a database constraint.
"""
