"""The NPS trend chart as a PNG (matplotlib, Agg backend: no display, safe in a worker) and as
inline SVG; and the trimming of the usage charts (activity.charts draws them) to the months
that have something to show.

Imports matplotlib lazily, since loading it takes a noticeable fraction of a second and only
the digest needs it.
"""

from __future__ import annotations

import io
from html import escape

from activity.charts import (
    INK,
    MUTED,
    SMALL_FILL,
    WHITE_TEXT_FROM,
    cohort_label,
    from_first_cohort,
    from_first_use,
    heat_colour,
    percent,
)
from activity.selectors import MonthUsage, Retention

from .reports import MonthPoint, format_nps


def trend_png(points: list[MonthPoint], *, title: str = "NPS by month") -> bytes:
    """A line of the monthly NPS with its 95% margin as error bars; months with too few answers
    are left as gaps (and named in the axis label) rather than drawn as a number."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6.4, 2.8), dpi=100)
    axes = figure.add_subplot()
    labels = [f"{point.month:%b %Y}" for point in points]
    positions = list(range(len(points)))
    shown = [
        (index, point.group) for index, point in enumerate(points) if point.group.nps is not None
    ]
    if shown:
        axes.errorbar(
            [index for index, _ in shown],
            [group.nps for _, group in shown],
            yerr=[group.margin for _, group in shown],
            color="#3447c7",
            ecolor="#9aa6e8",
            marker="o",
            capsize=3,
            linewidth=2,
        )
    axes.axhline(0, color="#dde2ea", linewidth=1)
    axes.set_ylim(-100, 100)
    axes.set_xticks(positions)
    axes.set_xticklabels(labels, fontsize=8)
    axes.set_ylabel("NPS")
    axes.set_title(title, fontsize=10)
    hidden = len(points) - len(shown)
    if hidden:
        axes.set_xlabel(f"{hidden} month(s) with too few answers are not drawn", fontsize=8)
    for spine in ("top", "right"):
        axes.spines[spine].set_visible(False)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def trend_svg(points: list[MonthPoint], *, width: int | None = None, height: int = 220) -> str:
    """The same trend for a staff page, as inline SVG (no matplotlib in a web request): per month
    a dot at the NPS and a bar over its 95% margin; a month with too few answers is left empty
    and marked "too few" so a gap never reads as zero."""
    width = width or max(320, 50 + 50 * len(points))  # a few months draw as large as many
    left, right, top, bottom = 40, width - 10, 10, height - 30
    step = (right - left) / max(len(points), 1)

    def y(value: float) -> float:
        return top + (100 - max(-100.0, min(100.0, value))) / 200 * (bottom - top)

    described = ", ".join(
        f"{point.month:%b %Y} {'too few answers' if point.group.nps is None else format_nps(point.group.nps)}"
        for point in points
    )
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="nps-trend" viewBox="0 0 {width} {height}" '
        f'width="100%" style="min-width:{min(34.0, width / 18.8):.0f}rem;height:auto" '
        f'role="img" aria-label="NPS by month: {escape(described)}">',
    ]
    for tick in (100, 50, 0, -50, -100):
        parts.append(
            f'<line x1="{left}" y1="{y(tick):.1f}" x2="{right}" y2="{y(tick):.1f}" '
            f'stroke="{"#9aa3b2" if tick == 0 else "#e3e7ee"}" stroke-width="1"/>'
            f'<text x="{left - 6}" y="{y(tick) + 4:.1f}" font-size="11" text-anchor="end" fill="#4a5568">{f"{tick:+d}" if tick else "0"}</text>'
        )
    for index, point in enumerate(points):
        x = left + step * (index + 0.5)
        parts.append(
            f'<text x="{x:.1f}" y="{height - 10}" font-size="11" text-anchor="middle" fill="#4a5568">{point.month:%b %Y}</text>'
        )
        group = point.group
        if group.nps is None or group.margin is None:
            parts.append(
                f'<text x="{x:.1f}" y="{y(0) - 6:.1f}" font-size="10" text-anchor="middle" fill="#8a94a6">too few</text>'
            )
            continue
        parts.append(
            f'<line x1="{x:.1f}" y1="{y(group.nps + group.margin):.1f}" x2="{x:.1f}" y2="{y(group.nps - group.margin):.1f}" '
            f'stroke="#9aa6e8" stroke-width="6" stroke-linecap="round"/>'
            f'<circle cx="{x:.1f}" cy="{y(group.nps):.1f}" r="5" fill="#3447c7"/>'
            f'<text x="{x + 8:.1f}" y="{y(group.nps) + 4:.1f}" font-size="11" fill="#1a202c">{format_nps(group.nps)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def from_first_answers(points: list[MonthPoint], *, at_least: int = 3) -> list[MonthPoint]:
    """The trend from its first month with answers (at least the last `at_least` months), so a
    phone's narrow chart is not spent on empty months."""
    first = next(
        (index for index, point in enumerate(points) if point.group.score.responses), len(points)
    )
    return points[min(first, max(len(points) - at_least, 0)) :]


def mau_rows(months: list[MonthUsage]) -> list[dict]:
    """The MAU trend as rows for an email table (a bar drawn as a coloured cell, no image: the
    queued mail carries no attachments, and a table reads in every client): from the first
    month with anyone active."""
    shown = from_first_use(months)
    highest = max((point.active for point in shown), default=0)
    return [
        {
            "label": f"{point.month:%b %Y}",
            "active": point.active,
            "kept": percent(point.retained_share),
            "complete": point.complete,
            "bar": max(round(100 * point.active / highest), 1) if highest and point.active else 0,
        }
        for point in shown
    ]


def retention_rows(retention: Retention) -> dict:
    """The retention heat map as an email table: a row per cohort (its start, its size, "small"
    below the minimum) and a cell per period with its share, background and ink as the page's
    heat map draws them; None where the period has not come yet. Then the average row."""
    shown = from_first_cohort(retention)
    rows = []
    for index, cohort in enumerate(shown.cohorts):
        cells = []
        for n in range(shown.periods):
            share = cohort.share(n) if cohort.retained[n] is not None else None
            if share is None:
                cells.append(None)
                continue
            complete = shown.cell_complete(cohort, n)
            cells.append(_cell(share, small=cohort.small, complete=complete))
        rows.append(
            {
                "label": cohort_label(shown, index),
                "size": cohort.size,
                "small": cohort.small,
                "cells": cells,
                "shares": ", ".join(cell["text"] for cell in cells if cell is not None),
            }
        )
    average = [
        None if (share := shown.average(n)) is None else _cell(share, small=False, complete=True)
        for n in range(shown.periods)
    ]
    unit = "W" if shown.period == "week" else "M"
    return {
        "columns": [f"{unit}{n}" for n in range(shown.periods)],
        "rows": rows,
        "average": average,
    }


def _cell(share: float, *, small: bool, complete: bool) -> dict:
    if small:
        background, ink = SMALL_FILL, MUTED
    else:
        background = heat_colour(share)
        ink = "#ffffff" if share >= WHITE_TEXT_FROM else INK
    if not complete:  # still filling: lighter (45 % of the colour on white), as the page draws it
        red, green, blue = (int(background[index : index + 2], 16) for index in (1, 3, 5))
        background = "#" + "".join(
            f"{round(255 - (255 - part) * 0.45):02x}" for part in (red, green, blue)
        )
        ink = INK
    return {"text": percent(share), "background": background, "ink": ink, "complete": complete}
