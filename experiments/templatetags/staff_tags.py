"""Filters every staff page uses, so a figure reads the same everywhere (`{% load staff_tags %}`).

- `duration`: seconds (a number) or a timedelta, as a person says it: "10 seconds",
  "4 min 5 s", "3 h 20 min", "2 days 4 h". Never "0:00:09.959477" or "9.96 s".
- `percent`: a share (0..1) as a whole percentage, "67%"; a dash when there is none.
"""

from __future__ import annotations

from datetime import timedelta

from django import template

register = template.Library()

MINUTE = 60
HOUR = 60 * MINUTE
DAY = 24 * HOUR


def duration_text(value: float | timedelta | None) -> str:
    """A duration in words, precise to the unit that matters at its size (see the module)."""
    if value is None or value == "":
        return "–"
    seconds = value.total_seconds() if isinstance(value, timedelta) else float(value)
    if seconds < 0:
        return f"-{duration_text(-seconds)}"
    if seconds < 1:
        return "under a second"
    if seconds < MINUTE:
        whole = round(seconds)
        if whole == MINUTE:
            return "1 min"
        return f"{whole} second{'s' if whole != 1 else ''}"
    if seconds < HOUR:
        minutes, rest = divmod(round(seconds), MINUTE)
        if minutes >= 10 or not rest:
            return f"{round(seconds / MINUTE)} min" if minutes < 60 else "1 h"
        return f"{minutes} min {rest} s"
    if seconds < DAY:
        hours, minutes = divmod(round(seconds / MINUTE), 60)
        if hours == 24:
            return "1 day"
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(round(seconds / HOUR), 24)
    if days >= 7 or not hours:
        total = round(seconds / DAY)
        return f"{total} day{'s' if total != 1 else ''}"
    return f"{days} day{'s' if days != 1 else ''} {hours} h"


def percent_text(share: float | None) -> str:
    """0.6667 -> "67%"; None -> "–"."""
    if share is None:
        return "–"
    return f"{round(100 * share)}%"


@register.filter
def duration(value: float | timedelta | None) -> str:
    return duration_text(value)


@register.filter
def percent(share: float | None) -> str:
    return percent_text(share)


@register.filter
def timesince_duration(moment) -> str:
    """How long ago `moment` was, as a duration ("3 h 20 min"); a dash without one."""
    if not moment:
        return "–"
    from django.utils import timezone

    return duration_text(timezone.now() - moment)
