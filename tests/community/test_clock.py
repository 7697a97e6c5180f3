"""Clock arithmetic: nights, weekends, holidays, time zones and daylight-saving changes."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import pytest

from community.clock import (
    Calendar,
    add_business_seconds,
    business_seconds_between,
    deadline_after,
    seconds_left,
)

HOUR = 3600
WEEKDAYS = frozenset({1, 2, 3, 4, 5})


def calendar(zone="UTC", holidays=()):
    return Calendar(
        time_zone=zone, working_days=WEEKDAYS, day_starts_at=time(9), day_ends_at=time(17), holidays=frozenset(holidays)
    )


def utc(*args):
    return datetime(*args, tzinfo=UTC)


def test_within_one_working_day():
    # Monday 2026-03-02 10:00 + 3h = 13:00 the same day.
    assert add_business_seconds(calendar(), utc(2026, 3, 2, 10), 3 * HOUR) == utc(2026, 3, 2, 13)


def test_carries_over_the_night():
    # Monday 15:00 + 4h: 2h on Monday, 2h from Tuesday 09:00.
    assert add_business_seconds(calendar(), utc(2026, 3, 2, 15), 4 * HOUR) == utc(2026, 3, 3, 11)


def test_asked_at_night_starts_next_morning():
    assert add_business_seconds(calendar(), utc(2026, 3, 2, 22), 1 * HOUR) == utc(2026, 3, 3, 10)
    assert add_business_seconds(calendar(), utc(2026, 3, 3, 6), 1 * HOUR) == utc(2026, 3, 3, 10)


def test_skips_the_weekend():
    # Friday 2026-03-06 16:00 + 2h: 1h Friday, 1h Monday 09:00-10:00.
    assert add_business_seconds(calendar(), utc(2026, 3, 6, 16), 2 * HOUR) == utc(2026, 3, 9, 10)
    # Asked on Saturday: counting starts Monday morning.
    assert add_business_seconds(calendar(), utc(2026, 3, 7, 12), 8 * HOUR) == utc(2026, 3, 9, 17)


def test_skips_holidays():
    # Monday 2026-03-09 is a holiday: Friday 16:00 + 2h ends Tuesday 10:00.
    cal = calendar(holidays={date(2026, 3, 9)})
    assert add_business_seconds(cal, utc(2026, 3, 6, 16), 2 * HOUR) == utc(2026, 3, 10, 10)


def test_forty_eight_business_hours_is_six_working_days():
    # Monday 09:00 + 48h of 8-hour days = end of the following Monday (6 days, weekend skipped).
    assert add_business_seconds(calendar(), utc(2026, 3, 2, 9), 48 * HOUR) == utc(2026, 3, 9, 17)


def test_the_calendar_time_zone_decides_the_working_day():
    # 09:00-17:00 in Tokyo is 00:00-08:00 UTC. Asked Monday 07:00 UTC (16:00 Tokyo) + 2h:
    # 1h Monday, then Tuesday 09:00 Tokyo = Tuesday 00:00 UTC, + 1h.
    tokyo = calendar("Asia/Tokyo")
    assert add_business_seconds(tokyo, utc(2026, 3, 2, 7), 2 * HOUR) == utc(2026, 3, 3, 1)
    # Friday 23:30 UTC is Saturday in Tokyo: nothing counts until Monday 09:00 Tokyo.
    assert add_business_seconds(tokyo, utc(2026, 3, 6, 23, 30), HOUR) == utc(2026, 3, 9, 1)


def test_daylight_saving_change_moves_the_window_with_the_wall_clock():
    # New York springs forward on Sunday 2026-03-08: the working day is 14:00-22:00 UTC on
    # Friday the 6th (EST), 13:00-21:00 UTC on Monday the 9th (EDT).
    new_york = calendar("America/New_York")
    assert add_business_seconds(new_york, utc(2026, 3, 6, 21), HOUR) == utc(2026, 3, 6, 22)
    assert add_business_seconds(new_york, utc(2026, 3, 6, 22), HOUR) == utc(2026, 3, 9, 14)
    assert add_business_seconds(new_york, utc(2026, 3, 6, 21), 2 * HOUR) == utc(2026, 3, 9, 14)
    assert business_seconds_between(new_york, utc(2026, 3, 6, 12), utc(2026, 3, 9, 23)) == 16 * HOUR


def test_seconds_between_is_the_inverse_of_adding():
    cal = calendar("Europe/Paris", holidays={date(2026, 4, 6)})
    start = utc(2026, 3, 27, 15, 17)  # a Friday, across the spring-forward weekend and Easter Monday
    for hours in (1, 5, 8, 13, 24, 48, 100):
        end = add_business_seconds(cal, start, hours * HOUR)
        assert business_seconds_between(cal, start, end) == hours * HOUR


def test_seconds_between_counts_only_working_time():
    cal = calendar()
    assert business_seconds_between(cal, utc(2026, 3, 6, 16), utc(2026, 3, 9, 10)) == 2 * HOUR
    assert business_seconds_between(cal, utc(2026, 3, 7, 1), utc(2026, 3, 8, 23)) == 0
    assert business_seconds_between(cal, utc(2026, 3, 9, 10), utc(2026, 3, 9, 9)) == 0


def test_calendar_hours_run_around_the_clock():
    start = utc(2026, 3, 6, 22)
    assert deadline_after(calendar=calendar(), business=False, start=start, seconds=4 * HOUR) == start + timedelta(hours=4)
    assert seconds_left(calendar=calendar(), business=False, now=start, deadline=start + timedelta(hours=4)) == 4 * HOUR


def test_a_calendar_without_working_days_is_refused():
    empty = Calendar(time_zone="UTC", working_days=frozenset(), day_starts_at=time(9), day_ends_at=time(17))
    with pytest.raises(ValueError, match="no working hours"):
        add_business_seconds(empty, utc(2026, 3, 2, 9), HOUR)
