"""The usage charts: a MAU trend, a retention heat map and lifecycle bars (docs/activity.md#charts).

The first two come twice (the lifecycle bars only as SVG, for the staff page): inline SVG for pages (plain strings, no matplotlib in a web request), and PNG
bytes for emails (matplotlib's Agg backend, imported inside the function: loading it takes a
noticeable fraction of a second and only the emails need it). Both draw the same things:

- a month still running on as_of is drawn lighter with a dashed outline and labelled "so far";
- a retention cell whose period is still running is lighter; a period after as_of is blank;
- a small cohort is grey with "small"; shares are percentages, counts beside their labels;
- every SVG carries role="img" and an aria-label that reads out the figures.
"""

from __future__ import annotations

import io
from dataclasses import replace
from datetime import date
from html import escape

from .selectors import LifecyclePoint, MonthUsage, Retention

INK = "#1b2230"
MUTED = "#555e6e"
LINE = "#dde1e9"
BRAND = "#3446c4"
SMALL_FILL = "#eef0f5"
# The heat map's scale runs from the brand's soft tint (0 %) to its strong shade (100 %).
SCALE_LOW = (0xE9, 0xEC, 0xFB)
SCALE_HIGH = (0x26, 0x35, 0x9E)
# Above this share the cell is dark enough for white text (4.5:1), below it ink is.
WHITE_TEXT_FROM = 0.5


def people(count: int) -> str:
    return f"{count:,} {'person' if count == 1 else 'people'}"


def percent(share: float | None) -> str:
    return "" if share is None else f"{round(share * 100)} %"


def month_label(point: MonthUsage) -> str:
    return f"{point.month:%b %Y}"


def cohort_label(retention: Retention, index: int) -> str:
    start = retention.cohorts[index].start
    return f"{start:%-d %b}" if retention.period == "week" else f"{start:%b %Y}"


def heat_colour(share: float) -> str:
    share = max(0.0, min(1.0, share))
    red, green, blue = (
        round(low + (high - low) * share) for low, high in zip(SCALE_LOW, SCALE_HIGH, strict=True)
    )
    return f"#{red:02x}{green:02x}{blue:02x}"


def _svg_open(css_class: str, width: int, height: int, label: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="{css_class}" viewBox="0 0 {width} {height}" '
        f'width="100%" style="min-width:{width / 16:.1f}rem;height:auto" '
        f'role="img" aria-label="{escape(label)}">'
    )


def mau_trend_svg(points: list[MonthUsage]) -> str:
    """One bar per month at its MAU, the number above it, and under the month the share of the
    month before's people who came back ("kept 64 %")."""
    width = max(320, 60 + 58 * len(points))
    height = 240
    left, right, top, bottom = 44, width - 10, 22, height - 46
    step = (right - left) / max(len(points), 1)
    highest = max((point.active for point in points), default=0)
    ceiling = _nice_ceiling(highest)

    def y(value: float) -> float:
        return bottom - value / ceiling * (bottom - top)

    described = "; ".join(
        f"{month_label(point)}{' so far' if not point.complete else ''} {people(point.active)}"
        + (
            f", kept {percent(point.retained_share)} of the month before"
            if point.retained_share is not None
            else ""
        )
        for point in points
    )
    parts = [_svg_open("mau-trend", width, height, f"People active each month: {described}")]
    for tick in (0, ceiling / 2, ceiling):
        parts.append(
            f'<line x1="{left}" y1="{y(tick):.1f}" x2="{right}" y2="{y(tick):.1f}" stroke="{LINE}" stroke-width="1"/>'
            f'<text x="{left - 6}" y="{y(tick) + 4:.1f}" font-size="11" text-anchor="end" fill="{MUTED}">{_short(tick)}</text>'
        )
    bar = min(36.0, step * 0.62)
    for index, point in enumerate(points):
        x = left + step * (index + 0.5)
        top_of_bar = y(point.active)
        style = (
            f'fill="{BRAND}"'
            if point.complete
            else f'fill="{BRAND}" fill-opacity="0.35" stroke="{BRAND}" stroke-width="1.5" stroke-dasharray="4 3"'
        )
        if point.active:
            parts.append(
                f'<rect x="{x - bar / 2:.1f}" y="{top_of_bar:.1f}" width="{bar:.1f}" height="{bottom - top_of_bar:.1f}" {style}/>'
            )
        parts.append(
            f'<text x="{x:.1f}" y="{top_of_bar - 5:.1f}" font-size="11" text-anchor="middle" fill="{INK}">{point.active}</text>'
            f'<text x="{x:.1f}" y="{bottom + 15}" font-size="11" text-anchor="middle" fill="{MUTED}">{point.month:%b ’%y}</text>'
        )
        second = (
            "so far"
            if not point.complete
            else (
                f"kept {percent(point.retained_share)}" if point.retained_share is not None else ""
            )
        )
        if second:
            parts.append(
                f'<text x="{x:.1f}" y="{bottom + 30}" font-size="10" text-anchor="middle" fill="{MUTED}">{second}</text>'
            )
    parts.append("</svg>")
    return "".join(parts)


def _nice_ceiling(value: int) -> float:
    """The axis top: the next 1, 2 or 5 times a power of ten at or above the highest bar."""
    if value <= 0:
        return 1.0
    power = 1
    while True:
        for factor in (1, 2, 5):
            if factor * power >= value:
                return float(factor * power)
        power *= 10


def _short(value: float) -> str:
    if value >= 1_000_000:
        return f"{value / 1_000_000:g}M"
    if value >= 1_000:
        return f"{value / 1_000:g}k"
    return f"{value:g}"


def retention_heatmap_svg(retention: Retention) -> str:
    """The retention triangle: a row per cohort (its start and size), a column per period n,
    each cell coloured by its share; an "Average" row under them."""
    unit = "Week" if retention.period == "week" else "Month"
    cell_w, cell_h = 50, 26
    label_w, size_w, head_h = 78, 54, 24
    columns = retention.periods
    width = label_w + size_w + cell_w * columns + 4
    height = head_h + cell_h * (len(retention.cohorts) + 1) + 4
    described = "; ".join(
        f"{unit.lower()} of {cohort_label(retention, index)}, {people(cohort.size)}"
        + (" (small)" if cohort.small else "")
        + ": "
        + ", ".join(
            percent(cohort.share(n)) for n in range(columns) if cohort.retained[n] is not None
        )
        for index, cohort in enumerate(retention.cohorts)
    )
    parts = [
        _svg_open(
            "retention-heatmap",
            width,
            height,
            f"{retention.product_name} retention by {retention.period} "
            f"({'on' if retention.mode == 'n_day' else 'on or after'} {retention.period} n): {described}",
        ),
        f'<text x="4" y="16" font-size="11" font-weight="600" fill="{INK}">{unit} of</text>',
        f'<text x="{label_w + size_w - 6}" y="16" font-size="11" font-weight="600" text-anchor="end" fill="{INK}">People</text>',
    ]
    for n in range(columns):
        x = label_w + size_w + cell_w * n + cell_w / 2
        parts.append(
            f'<text x="{x:.0f}" y="16" font-size="11" font-weight="600" text-anchor="middle" fill="{INK}">{unit[0]}{n}</text>'
        )
    rows: list[tuple[str, str, list[tuple[float | None, bool, bool]]]] = []
    for index, cohort in enumerate(retention.cohorts):
        cells = [
            (cohort.share(n), cohort.small, retention.cell_complete(cohort, n))
            if cohort.retained[n] is not None
            else (None, False, True)
            for n in range(columns)
        ]
        rows.append(
            (
                cohort_label(retention, index),
                f"{cohort.size}{' small' if cohort.small else ''}",
                cells,
            )
        )
    averages = [retention.average(n) for n in range(columns)]
    rows.append(("Average", "", [(share, False, True) for share in averages]))
    for row_index, (label, size, cells) in enumerate(rows):
        y = head_h + cell_h * row_index
        weight = ' font-weight="600"' if label == "Average" else ""
        parts.append(
            f'<text x="4" y="{y + 17}" font-size="11"{weight} fill="{INK}">{escape(label)}</text>'
            f'<text x="{label_w + size_w - 6}" y="{y + 17}" font-size="11" text-anchor="end" fill="{MUTED}">{size}</text>'
        )
        if label == "Average" and all(share is None for share in averages):
            # An empty row would read as a missing figure: say why there is none.
            parts.append(
                f'<text x="{label_w + size_w + 4}" y="{y + 17}" font-size="11" fill="{MUTED}">'
                f"none yet: no cohort of {retention.min_cohort} people or more</text>"
            )
        for n, (share, small, complete) in enumerate(cells):
            if share is None:
                continue
            x = label_w + size_w + cell_w * n
            fill = SMALL_FILL if small else heat_colour(share)
            light = (
                "" if complete else ' fill-opacity="0.45" stroke="#7d8699" stroke-dasharray="3 2"'
            )
            ink = (
                "#ffffff"
                if not small and complete and share >= WHITE_TEXT_FROM
                else (MUTED if small else INK)
            )
            parts.append(
                f'<rect x="{x + 1}" y="{y + 1}" width="{cell_w - 2}" height="{cell_h - 2}" rx="3" fill="{fill}"{light}/>'
                f'<text x="{x + cell_w / 2:.0f}" y="{y + 17}" font-size="11" text-anchor="middle" fill="{ink}">{percent(share)}</text>'
            )
    parts.append("</svg>")
    return "".join(parts)


def mau_trend_png(points: list[MonthUsage], *, title: str) -> bytes:
    """The MAU trend for an email: bars per month, the running month lighter and hatched."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    figure = Figure(figsize=(max(6.4, 0.7 * len(points)), 2.9), dpi=100)
    axes = figure.add_subplot()
    positions = list(range(len(points)))
    for index, point in enumerate(points):
        axes.bar(
            index,
            point.active,
            color=BRAND,
            alpha=1.0 if point.complete else 0.35,
            hatch=None if point.complete else "//",
            edgecolor=BRAND,
            width=0.62,
        )
        axes.annotate(
            str(point.active),
            (index, point.active),
            ha="center",
            va="bottom",
            fontsize=8,
            color=INK,
            xytext=(0, 2),
            textcoords="offset points",
        )
    axes.set_xticks(positions)
    axes.set_xticklabels(
        [
            f"{point.month:%b ’%y}\n{'so far' if not point.complete else ('kept ' + percent(point.retained_share)) if point.retained_share is not None else ''}"
            for point in points
        ],
        fontsize=7,
    )
    axes.set_ylim(
        0, max(_nice_ceiling(max((point.active for point in points), default=0)), 1) * 1.12
    )
    axes.set_ylabel("people")
    axes.set_title(title, fontsize=10)
    for spine in ("top", "right"):
        axes.spines[spine].set_visible(False)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def retention_heatmap_png(retention: Retention, *, title: str) -> bytes:
    """The retention triangle for an email, as the page draws it: cohorts down, periods across."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure
    from matplotlib.patches import Rectangle

    columns = retention.periods
    rows = len(retention.cohorts) + 1
    figure = Figure(figsize=(max(4.0, 1.6 + 0.5 * columns), max(2.2, 0.8 + 0.28 * rows)), dpi=100)
    axes = figure.add_subplot()
    unit = "W" if retention.period == "week" else "M"
    labels = [
        f"{cohort_label(retention, index)} ({cohort.size}{' small' if cohort.small else ''})"
        for index, cohort in enumerate(retention.cohorts)
    ]
    labels.append("Average")
    for row, cohort in enumerate(retention.cohorts):
        for n in range(columns):
            share = cohort.share(n) if cohort.retained[n] is not None else None
            if share is None:
                continue
            complete = retention.cell_complete(cohort, n)
            fill = SMALL_FILL if cohort.small else heat_colour(share)
            axes.add_patch(
                Rectangle(
                    (n, row),
                    0.96,
                    0.92,
                    facecolor=fill,
                    alpha=1.0 if complete else 0.45,
                    hatch=None if complete else "//",
                    edgecolor=fill if complete else MUTED,
                    linestyle="-" if complete else "--",
                )
            )
            ink = (
                "#ffffff"
                if not cohort.small and complete and share >= WHITE_TEXT_FROM
                else (MUTED if cohort.small else INK)
            )
            axes.text(
                n + 0.48, row + 0.5, percent(share), ha="center", va="center", fontsize=7, color=ink
            )
    for n in range(columns):
        share = retention.average(n)
        if share is not None:
            axes.add_patch(Rectangle((n, rows - 1), 0.96, 0.92, color=heat_colour(share)))
            axes.text(
                n + 0.48,
                rows - 0.5,
                percent(share),
                ha="center",
                va="center",
                fontsize=7,
                color="#ffffff" if share >= WHITE_TEXT_FROM else INK,
            )
    axes.set_xlim(0, columns)
    axes.set_ylim(rows, 0)
    axes.set_xticks([n + 0.48 for n in range(columns)])
    axes.set_xticklabels([f"{unit}{n}" for n in range(columns)], fontsize=7)
    axes.xaxis.tick_top()
    axes.set_yticks([row + 0.5 for row in range(rows)])
    axes.set_yticklabels(labels, fontsize=7)
    axes.set_title(title, fontsize=10, pad=20)  # above the period labels, which sit on top
    for spine in axes.spines.values():
        spine.set_visible(False)
    axes.tick_params(length=0)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


LIFECYCLE_COLOURS = {
    "new": BRAND,
    "returning": "#0f6b3f",
    "resurrecting": "#a15c00",
    "dormant": "#b42318",
}
LIFECYCLE_LABELS = {
    "new": "New",
    "returning": "Returning",
    "resurrecting": "Resurrecting",
    "dormant": "Dormant",
}


def lifecycle_svg(points: list[LifecyclePoint], *, period: str) -> str:
    """Per period a stacked bar above the line (new, returning, resurrecting) and the dormant
    below it; the running period lighter with a dashed edge. The legend is the page's: it sits
    beside each definition (LIFECYCLE_COLOURS), where a phone shows it whole."""
    width = max(320, 60 + 52 * len(points))
    height = 250
    left, right, top, bottom = 44, width - 10, 18, height - 40
    step = (right - left) / max(len(points), 1)
    up = max((point.active for point in points), default=0)
    down = max((point.dormant for point in points), default=0)
    ceiling = _nice_ceiling(up)
    floor = _nice_ceiling(down) if down else 0.0
    span = ceiling + floor

    def y(value: float) -> float:
        return top + (ceiling - value) / span * (bottom - top)

    described = "; ".join(
        f"{_period_label(point.start, period)}{'' if point.complete else ' so far'}: {point.new} new, {point.returning} returning, "
        f"{point.resurrecting} resurrecting, {point.dormant} dormant"
        for point in points
    )
    parts = [
        _svg_open(
            "lifecycle-chart", width, height, f"People by lifecycle, by {period}: {described}"
        )
    ]
    for tick in sorted({0.0, ceiling, -floor}):
        if tick < 0 and y(tick) - y(0) < 14:
            continue  # too close to the zero line to label: the bars' table gives the numbers
        parts.append(
            f'<line x1="{left}" y1="{y(tick):.1f}" x2="{right}" y2="{y(tick):.1f}" stroke="{"#9aa3b2" if tick == 0 else LINE}" stroke-width="1"/>'
            f'<text x="{left - 6}" y="{y(tick) + 4:.1f}" font-size="11" text-anchor="end" fill="{MUTED}">{"-" if tick < 0 else ""}{_short(abs(tick))}</text>'
        )
    bar = min(30.0, step * 0.6)
    for index, point in enumerate(points):
        middle = left + step * (index + 0.5)
        light = (
            "" if point.complete else ' fill-opacity="0.4" stroke-dasharray="3 2" stroke="#555e6e"'
        )
        base = 0
        for key in ("returning", "resurrecting", "new"):
            value = getattr(point, key)
            if value:
                parts.append(
                    f'<rect x="{middle - bar / 2:.1f}" y="{y(base + value):.1f}" width="{bar:.1f}" height="{y(base) - y(base + value):.1f}" '
                    f'fill="{LIFECYCLE_COLOURS[key]}"{light}/>'
                )
            base += value
        if point.dormant:
            parts.append(
                f'<rect x="{middle - bar / 2:.1f}" y="{y(0):.1f}" width="{bar:.1f}" height="{y(-point.dormant) - y(0):.1f}" '
                f'fill="{LIFECYCLE_COLOURS["dormant"]}"{light}/>'
            )
        parts.append(
            f'<text x="{middle:.1f}" y="{y(point.active) - 4:.1f}" font-size="10" text-anchor="middle" fill="{INK}">{point.active}</text>'
            f'<text x="{middle:.1f}" y="{bottom + 15}" font-size="11" text-anchor="middle" fill="{MUTED}">{_period_label(point.start, period)}</text>'
        )
        if not point.complete:
            parts.append(
                f'<text x="{middle:.1f}" y="{bottom + 29}" font-size="10" text-anchor="middle" fill="{MUTED}">so far</text>'
            )
    parts.append("</svg>")
    return "".join(parts)


def _period_label(start: date, period: str) -> str:
    return f"{start:%-d %b}" if period == "week" else f"{start:%b ’%y}"


def from_first_use(months: list[MonthUsage], *, at_least: int = 3) -> list[MonthUsage]:
    """The MAU trend from its first month with anyone active (at least the last `at_least`)."""
    first = next((index for index, point in enumerate(months) if point.active), len(months))
    return months[min(first, max(len(months) - at_least, 0)) :]


def from_first_cohort(retention: Retention, *, at_least: int = 3) -> Retention:
    """The heat map from its first cohort with anyone in it (at least the last `at_least`), with
    as many columns as cohorts: the oldest cohort shown fills its row, no column stays empty."""
    first = next(
        (index for index, cohort in enumerate(retention.cohorts) if cohort.size),
        len(retention.cohorts),
    )
    cohorts = retention.cohorts[min(first, max(len(retention.cohorts) - at_least, 0)) :]
    return replace(retention, cohorts=cohorts, periods=min(retention.periods, len(cohorts)))
