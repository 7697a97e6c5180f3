"""How billing writes dates and spans for people: one format everywhere ("6 Dec 2026"), the
same as the templates' `date:"j M Y"`, in pages, emails, invoice lines and PDFs."""

from __future__ import annotations

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


def time_left(seconds: int) -> str:
    """A duration in days, or in hours under a day: "31 days", "1 day", "5 hours"."""
    days = round(seconds / 86400)
    if days >= 1:
        return f"{days} day{'s' if days != 1 else ''}"
    hours = max(1, round(seconds / 3600))
    return f"{hours} hour{'s' if hours != 1 else ''}"


def seats_text(count: int) -> str:
    """1 seat, 2 seats."""
    return f"{count} seat{'s' if count != 1 else ''}"
