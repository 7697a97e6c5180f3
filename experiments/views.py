from datetime import date, datetime, time, timedelta

from django.shortcuts import get_object_or_404, render
from django.utils import timezone
from django.utils.dateparse import parse_date
from django.utils.safestring import mark_safe

from common.staff import staff_required

from .analysis import baseline_of, experiment_analyse, uplift_chart_svg, variation_role
from .models import Experiment
from .selectors import (
    FUNNEL_PERIODS,
    experiments_with_exposures,
    funnel_default_window,
    funnel_report,
)


def _date_param(request, name: str) -> tuple[date | None, str]:
    text = request.GET.get(name, "").strip()
    if not text:
        return None, ""
    try:
        # None when not shaped like a date; ValueError when shaped like one that does not
        # exist (2026-02-30), which would otherwise be a 500.
        parsed = parse_date(text)
    except ValueError:
        parsed = None
    if parsed is None:
        return None, f"'{name}' must be a date like 2026-11-01, got {text!r}."
    return parsed, ""


@staff_required
def funnel(request):
    """Staff: the signup funnel of a period (the last 7, 30 or 90 days, or from one date to
    another), drawn, with conversion between steps and the time they took."""
    now = timezone.now()
    days = request.GET.get("days", "30")
    if days not in FUNNEL_PERIODS:
        days = "30"
    since, until = funnel_default_window(now, days=FUNNEL_PERIODS[days])
    first_day, since_error = _date_param(request, "since")
    last_day, until_error = _date_param(request, "until")
    error = since_error or until_error
    custom = bool(first_day or last_day) and not error
    if custom:
        if first_day:
            since = timezone.make_aware(datetime.combine(first_day, time.min))
        if last_day:
            until = timezone.make_aware(datetime.combine(last_day + timedelta(days=1), time.min))
        if until <= since:
            error = "The period must end after it starts."
            since, until = funnel_default_window(now, days=FUNNEL_PERIODS[days])
            custom = False
    report = funnel_report(since=since, until=until)
    widest = max((step.count for step in report.steps), default=0)
    return render(
        request,
        "experiments/funnel.html",
        {
            "report": report,
            "error": error,
            "days": "" if custom else days,
            "periods": list(FUNNEL_PERIODS),
            "since_value": request.GET.get("since", "") if custom else f"{since:%Y-%m-%d}",
            "until_value": request.GET.get("until", "") if custom else f"{(until - timedelta(seconds=1)):%Y-%m-%d}",
            "last_moment": until - timedelta(seconds=1),
            "bars": [(step, round(100 * step.count / widest) if widest else 0) for step in report.steps],
        },
        status=400 if error else 200,
    )


@staff_required
def experiment_list(request):
    """Staff: every experiment, newest first, with its exposures so far."""
    experiments = list(experiments_with_exposures().prefetch_related("variations"))
    for experiment in experiments:
        variations = list(experiment.variations.all())
        baseline = baseline_of(variations)
        experiment.variation_rows = [
            {"key": v.key, "name": v.name or v.key, "role": variation_role(v, baseline=baseline)}
            for v in sorted(variations, key=lambda v: v.position)
        ]
    return render(request, "experiments/experiment_list.html", {"experiments": experiments})


@staff_required
def experiment_detail(request, key: str):
    """Staff: one experiment's analysis, with a chart of uplift and interval per variation."""
    experiment = get_object_or_404(Experiment, key=key)
    analysis = experiment_analyse(experiment=experiment)
    charts = [
        # The SVG is built from escaped values; no chart until a variation can be compared.
        (metric, mark_safe(uplift_chart_svg(metric)) if any(v.uplift is not None for v in metric.variants) else "")  # noqa: S308
        for metric in analysis.metrics
    ]
    return render(request, "experiments/experiment_detail.html", {"analysis": analysis, "charts": charts})
