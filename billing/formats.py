"""How billing writes dates and spans for people: one format everywhere ("6 Dec 2026"), the
same as the templates' `date:"j M Y"`, in pages, emails, invoice lines and PDFs."""

from __future__ import annotations

import math
from datetime import datetime

from django.utils import dateformat, timezone

DAY_FORMAT = "j M Y"


def day(moment: datetime | None) -> str:
    """6 Dec 2026 (in the site's time zone); empty for no date."""
    if moment is None:
        return ""
    return dateformat.format(timezone.localtime(moment) if timezone.is_aware(moment) else moment, DAY_FORMAT)


def span(start: datetime, end: datetime) -> str:
    """6 Dec 2026 – 6 Jan 2027."""
    return f"{day(start)} – {day(end)}"


def time_left(seconds: float, *, round_up: bool = False) -> str:
    """A duration in days, or in hours under a day: "31 days", "1 day", "5 hours". A deadline
    (a trial's end) rounds up, so 12 days and an hour read "13 days" until the day is gone."""
    whole = math.ceil if round_up else round
    days = whole(seconds / 86400) if seconds >= 86400 or not round_up else 0
    if days >= 1:
        return f"{days} day{'s' if days != 1 else ''}"
    hours = max(1, whole(seconds / 3600))
    return f"{hours} hour{'s' if hours != 1 else ''}"


def time_left_until(moment: datetime | None) -> str:
    """How long until `moment`, as time_left says it for a deadline; empty when it has passed."""
    if moment is None:
        return ""
    seconds = (moment - timezone.now()).total_seconds()
    return time_left(seconds, round_up=True) if seconds > 0 else ""


def seats_text(count: int) -> str:
    """1 seat, 2 seats."""
    return f"{count} seat{'s' if count != 1 else ''}"
