"""The NPS trend chart as a PNG (matplotlib, Agg backend: no display, safe in a worker).

The only importer of matplotlib; imported lazily, since loading it takes a noticeable fraction
of a second and only the digest needs it.
"""

from __future__ import annotations

import io

from .reports import MonthPoint


def trend_png(points: list[MonthPoint], *, title: str = "NPS by month") -> bytes:
    """A line of the monthly NPS with its 95% margin as error bars; months with too few answers
    are left as gaps (and named in the axis label) rather than drawn as a number."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6.4, 2.8), dpi=100)
    axes = figure.add_subplot()
    labels = [f"{point.month:%b %y}" for point in points]
    positions = list(range(len(points)))
    shown = [(index, point.group) for index, point in enumerate(points) if point.group.nps is not None]
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
