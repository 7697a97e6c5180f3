"""Escalation-clock arithmetic: business seconds between two instants, and an instant plus a
number of business seconds, in a calendar's own time zone. Pure functions, no queries.

Working hours are taken day by day in local time (zoneinfo), so a daylight-saving change moves
the working window with the wall clock, as people experience it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

# Far enough for any sane policy (a year of weekdays), short enough to stop a calendar with no
# working day at all from looping forever.
MAX_DAYS = 800


@dataclass(frozen=True)
class Calendar:
    """A business calendar as plain values (community.models.BusinessCalendar, loaded)."""

    time_zone: str
    working_days: frozenset[int]  # ISO weekdays, Monday = 1
    day_starts_at: time
    day_ends_at: time
    holidays: frozenset[date] = field(default_factory=frozenset)

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone)

    def windows(self, start: datetime) -> Iterator[tuple[datetime, datetime]]:
        """Working windows (UTC) from the local day holding `start` on, in order."""
        zone = self.zone
        day = start.astimezone(zone).date()
        for offset in range(MAX_DAYS):
            current = day + timedelta(days=offset)
            if current.isoweekday() not in self.working_days or current in self.holidays:
                continue
            opens = datetime.combine(current, self.day_starts_at, tzinfo=zone).astimezone(UTC)
            closes = datetime.combine(current, self.day_ends_at, tzinfo=zone).astimezone(UTC)
            if closes > opens:
                yield opens, closes


def add_business_seconds(calendar: Calendar, start: datetime, seconds: int) -> datetime:
    """The instant at which `seconds` of working time have passed since `start`.

    Zero seconds from outside working hours is `start` itself (nothing is left to count).
    """
    if seconds <= 0:
        return start
    remaining = seconds
    for opens, closes in calendar.windows(start):
        if closes <= start:
            continue
        begin = max(opens, start)
        available = (closes - begin).total_seconds()
        if remaining <= available:
            return begin + timedelta(seconds=remaining)
        remaining -= available
    raise ValueError("The business calendar has no working hours in the next two years.")


def business_seconds_between(calendar: Calendar, start: datetime, end: datetime) -> int:
    """Working seconds in [start, end); 0 when end is not after start."""
    if end <= start:
        return 0
    total = 0.0
    for opens, closes in calendar.windows(start):
        if opens >= end:
            break
        begin, finish = max(opens, start), min(closes, end)
        if finish > begin:
            total += (finish - begin).total_seconds()
    return int(round(total))


def deadline_after(*, calendar: Calendar, business: bool, start: datetime, seconds: int) -> datetime:
    """`start` plus `seconds` of the policy's time: business seconds, or plain seconds."""
    if business:
        return add_business_seconds(calendar, start, seconds)
    return start + timedelta(seconds=seconds)


def seconds_left(*, calendar: Calendar, business: bool, now: datetime, deadline: datetime) -> int:
    """What is left of a clock at `now`, in the policy's seconds (never negative)."""
    if business:
        return business_seconds_between(calendar, now, deadline)
    return max(0, int((deadline - now).total_seconds()))
