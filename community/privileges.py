"""Reputation: what each event earns, and the privileges that unlock at thresholds.

docs/community.md shows these tables to members; keep both in step.
"""

from __future__ import annotations

# Reputation each event moves (to the post's author unless said otherwise).
QUESTION_UPVOTED = 5
ANSWER_UPVOTED = 10
POST_DOWNVOTED = -2
DOWNVOTER_ON_ANSWER = -1  # the voter pays a little for a down vote on an answer
ANSWER_ACCEPTED = 15
ACCEPTOR = 2  # the asker, for closing the loop

# Privileges and the reputation that unlocks them. Staff hold every privilege.
VOTE_UP = "vote_up"
FLAG = "flag"
VOTE_DOWN = "vote_down"
EDIT_OTHERS = "edit_others"
CLOSE = "close"

THRESHOLDS: dict[str, int] = {
    VOTE_UP: 15,
    FLAG: 15,
    VOTE_DOWN: 125,
    EDIT_OTHERS: 1000,
    CLOSE: 3000,
}

LABELS: dict[str, str] = {
    VOTE_UP: "vote up",
    FLAG: "flag posts",
    VOTE_DOWN: "vote down",
    EDIT_OTHERS: "edit other people's posts",
    CLOSE: "close questions and mark duplicates",
}


def has_privilege(*, user, reputation: int, privilege: str) -> bool:
    return bool(user.is_staff) or reputation >= THRESHOLDS[privilege]
