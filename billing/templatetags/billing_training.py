"""`{{ course.duration_minutes|duration }}`: a course's length as people say it ("45 minutes",
"1 hour", "2 hours 30 minutes")."""

from __future__ import annotations

from django import template

register = template.Library()


@register.filter
def duration(minutes: int) -> str:
    hours, rest = divmod(int(minutes or 0), 60)
    parts = []
    if hours:
        parts.append(f"{hours} hour{'s' if hours != 1 else ''}")
    if rest or not hours:
        parts.append(f"{rest} minute{'s' if rest != 1 else ''}")
    return " ".join(parts)
