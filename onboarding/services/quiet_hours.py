"""Time: quiet hours in the recipient's zone.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.conf import settings

from accounts.models import User


def user_zone(user: User) -> ZoneInfo:
    """The user's IANA zone, or settings.DEFAULT_USER_TIME_ZONE when blank or unknown."""
    for name in (user.time_zone, settings.DEFAULT_USER_TIME_ZONE, "UTC"):
        if not name:
            continue
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a directory, as "America"
            continue
    return ZoneInfo("UTC")


def quiet_hours_end(moment: datetime, zone: ZoneInfo) -> datetime:
    """`moment` itself if it is outside the recipient's quiet hours, else the end of them."""
    start, end = settings.ONBOARDING_QUIET_HOURS_START % 24, settings.ONBOARDING_QUIET_HOURS_END % 24
    if start == end:
        return moment
    local = moment.astimezone(zone)
    hour = local.hour
    if start > end:  # spans midnight, e.g. 21:00 to 08:00
        if not (hour >= start or hour < end):
            return moment
        day = local.date() if hour < end else local.date() + timedelta(days=1)
    else:
        if not (start <= hour < end):
            return moment
        day = local.date()
    return datetime.combine(day, time(end), tzinfo=zone).astimezone(UTC)
