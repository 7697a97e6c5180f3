"""The usage charts: what the SVG shows (values, the running month lighter and "so far", small
cohorts grey with "small", blank cells after as_of, an aria-label that reads the figures out)
and that the PNGs for emails are images."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import date

from activity.charts import (
    lifecycle_svg,
    mau_trend_png,
    mau_trend_svg,
    retention_heatmap_png,
    retention_heatmap_svg,
)
from activity.selectors import LifecyclePoint, MonthUsage, Retention, RetentionCohort

POINTS = [
    MonthUsage(month=date(2026, 10, 1), active=40, previous_active=0, retained=0, complete=True),
    MonthUsage(
        month=date(2026, 11, 1), active=1250, previous_active=40, retained=30, complete=True
    ),
    MonthUsage(
        month=date(2026, 12, 1), active=300, previous_active=1250, retained=280, complete=False
    ),
]

RETENTION = Retention(
    product=None,
    period="week",
    mode="n_day",
    as_of=date(2026, 12, 5),
    cohorts=[
        RetentionCohort(start=date(2026, 11, 16), size=40, small=False, retained=[40, 30, 10]),
        RetentionCohort(start=date(2026, 11, 23), size=5, small=True, retained=[5, 1, None]),
        RetentionCohort(start=date(2026, 11, 30), size=25, small=False, retained=[25, None, None]),
    ],
    periods=3,
    min_cohort=20,
    definition="",
)


def test_the_mau_trend_draws_each_month_with_its_number_and_the_running_one_lighter():
    svg = mau_trend_svg(POINTS)
    assert svg.startswith('<svg xmlns="http://www.w3.org/2000/svg" class="mau-trend"')
    assert 'role="img"' in svg
    assert (
        'aria-label="People active each month: Oct 2026 40 people; Nov 2026 1,250 people, kept 75 % of the month before; '
        'Dec 2026 so far 300 people, kept 22 % of the month before"' in svg
    )
    assert ">kept 75 %</text>" in svg and ">so far</text>" in svg
    assert len(re.findall(r"<rect ", svg)) == 3
    assert svg.count('fill-opacity="0.35"') == 1  # only December, still running
    assert ">2k</text>" in svg  # the axis top: the next 1, 2 or 5 above 1,250


def test_an_empty_trend_still_draws():
    svg = mau_trend_svg(
        [
            MonthUsage(
                month=date(2026, 12, 1), active=0, previous_active=0, retained=0, complete=False
            )
        ]
    )
    assert "<rect " not in svg and ">0</text>" in svg


def test_the_heat_map_colours_each_cell_and_greys_small_cohorts():
    svg = retention_heatmap_svg(RETENTION)
    assert 'class="retention-heatmap"' in svg
    assert (
        "All products retention by week (on week n): week of 16 Nov, 40 people: 100 %, 75 %, 25 %"
        in svg
    )
    assert "week of 23 Nov, 5 people (small): 100 %, 20 %" in svg
    # 3 + 2 + 1 cells with a value, and the average row's weeks 0 and 1 (week 2 has no ended cell).
    cells = re.findall(r'<rect [^>]*fill="(#[0-9a-f]{6})"', svg)
    assert len(cells) == 6 + 2
    assert ">5 small</text>" in svg
    assert svg.count('fill="#eef0f5"') == 2  # the small cohort's cells
    # The week of 30 Nov runs on as_of: its cells are lighter with a dashed edge.
    assert (
        svg.count('stroke-dasharray="3 2"') == 3
    )  # 16 Nov's week 2, 23 Nov's week 1, 30 Nov's week 0
    # Average: week 0 (40 + 25) / 65 is not complete for 30 Nov, so 40/40; week 1: 30/40; week 2: none complete.
    assert (
        RETENTION.average(0) == 1.0
        and RETENTION.average(1) == 0.75
        and RETENTION.average(2) is None
    )
    assert ">Average</text>" in svg


def test_the_pngs_are_images():
    for png in (
        mau_trend_png(POINTS, title="Monthly active people"),
        retention_heatmap_png(RETENTION, title="Retention"),
    ):
        assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 5_000


def test_the_lifecycle_bars_stack_above_the_line_and_dormant_below():
    points = [
        LifecyclePoint(
            start=date(2026, 11, 23), new=3, returning=10, resurrecting=2, dormant=4, complete=True
        ),
        LifecyclePoint(
            start=date(2026, 11, 30), new=1, returning=0, resurrecting=0, dormant=15, complete=False
        ),
    ]
    svg = lifecycle_svg(points, period="week")
    assert (
        'aria-label="People by lifecycle, by week: 23 Nov: 3 new, 10 returning, 2 resurrecting, 4 dormant; '
        '30 Nov so far: 1 new, 0 returning, 0 resurrecting, 15 dormant"' in svg
    )
    # One rect per value above 0: 3 + 1 (dormant) for 23 Nov, 1 + 1 for 30 Nov; no legend inside.
    assert len(re.findall(r"<rect ", svg)) == 6
    assert svg.count('fill="#b42318"') == 2  # dormant
    assert svg.count('fill-opacity="0.4"') == 2  # the running week's two bars
    assert ">15</text>" in svg and ">1</text>" in svg  # each period's active people above its bar
    assert ">so far</text>" in svg


def test_a_heat_map_of_small_cohorts_only_says_why_it_has_no_average():
    only_small = replace(RETENTION, cohorts=[cohort for cohort in RETENTION.cohorts if cohort.small])
    svg = retention_heatmap_svg(only_small)
    assert f"none yet: no cohort of {RETENTION.min_cohort} people or more</text>" in svg
    assert "none yet" not in retention_heatmap_svg(RETENTION)
