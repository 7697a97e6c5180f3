"""One person's use of a product before a given day: how many days they were active and their
lifecycle state, as the NPS snapshot stores it beside each answer (docs/feedback.md#nps-beside-use-of-the-products).

Over the 30 whole UTC days before `day` (W0 = day-30 .. day-1) and the 30 before those
(W1 = day-60 .. day-31), in one organization, for one product (or all its products):

- active_days: distinct days active in W0 (0..30);
- state: "new" (their first active day ever is in W0), "returning" (active in W0 and in W1),
  "resurrecting" (active in W0, not in W1, active before W1), "dormant" (not active in W0,
  active before), "none" (no activity reported at all before `day`).

Read from the daily rollups (ActivityDay), which are never pruned, so the same answer comes out
whenever it is computed.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta

from django.db.models import Count, Min, Q

from .models import ActivityDay

WINDOW_DAYS = 30

NEW = "new"
RETURNING = "returning"
RESURRECTING = "resurrecting"
DORMANT = "dormant"
NONE = "none"

# (state, label, definition), in the order reports list them.
USAGE_STATES: list[tuple[str, str, str]] = [
    (NEW, "New", "first active day ever in the 30 days before answering"),
    (RETURNING, "Returning", "active in the 30 days before answering and in the 30 before those"),
    (
        RESURRECTING,
        "Back after a break",
        "active in the 30 days before answering, not in the 30 before those, active earlier",
    ),
    (DORMANT, "Dormant", "not active in the 30 days before answering, active earlier"),
    (NONE, "No activity reported", "no activity at all before answering"),
]

# (key, label, lowest, highest) of the days active in the 30 days before answering.
ACTIVE_DAYS_BANDS: list[tuple[str, str, int, int]] = [
    ("0", "0 days", 0, 0),
    ("1-3", "1-3 days", 1, 3),
    ("4-9", "4-9 days", 4, 9),
    ("10-19", "10-19 days", 10, 19),
    ("20-30", "20-30 days", 20, 30),
]


@dataclass(frozen=True)
class PersonUsage:
    active_days: int
    state: str  # "new" | "returning" | "resurrecting" | "dormant" | "none"


def active_days_band(active_days: int) -> str:
    """The band key ("1-3", ...) of a number of active days."""
    for key, _, lowest, highest in ACTIVE_DAYS_BANDS:
        if lowest <= active_days <= highest:
            return key
    return ACTIVE_DAYS_BANDS[-1][0]


def usage_state(*, active_in_w0: bool, active_in_w1: bool, active_before_w1: bool) -> str:
    """The lifecycle state from the three windows (see the module docstring)."""
    if active_in_w0:
        if active_in_w1:
            return RETURNING
        return RESURRECTING if active_before_w1 else NEW
    return DORMANT if (active_in_w1 or active_before_w1) else NONE


def usage_from_days(days: Iterable[date], *, day: date) -> PersonUsage:
    """The usage before `day` from the days a person was active (any order, repeats allowed;
    days on or after `day` are ignored)."""
    w0_start = day - timedelta(days=WINDOW_DAYS)
    w1_start = day - timedelta(days=2 * WINDOW_DAYS)
    before = {active for active in days if active < day}
    w0 = {active for active in before if active >= w0_start}
    return PersonUsage(
        active_days=len(w0),
        state=usage_state(
            active_in_w0=bool(w0),
            active_in_w1=any(w1_start <= active < w0_start for active in before),
            active_before_w1=any(active < w1_start for active in before),
        ),
    )


def person_usage_before(
    *, user_id: int, organization_id: int, product_id: int | None, day: date
) -> PersonUsage:
    """The person's use of the product (every product of the organization when None) in that
    organization over the 30 whole UTC days before `day`, and their lifecycle state. One
    aggregate query over their rollups."""
    w0_start = day - timedelta(days=WINDOW_DAYS)
    w1_start = day - timedelta(days=2 * WINDOW_DAYS)
    rows = ActivityDay.objects.filter(
        organization_id=organization_id, user_id=user_id, active_events__gt=0, day__lt=day
    )
    if product_id is not None:
        rows = rows.filter(product_id=product_id)
    found = rows.aggregate(
        active_days=Count("day", distinct=True, filter=Q(day__gte=w0_start)),
        in_w1=Count("pk", filter=Q(day__gte=w1_start, day__lt=w0_start)),
        first=Min("day"),
    )
    first = found["first"]
    return PersonUsage(
        active_days=found["active_days"],
        state=usage_state(
            active_in_w0=found["active_days"] > 0,
            active_in_w1=found["in_w1"] > 0,
            active_before_w1=first is not None and first < w1_start,
        ),
    )
