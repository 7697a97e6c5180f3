from datetime import datetime, time

from django.shortcuts import get_object_or_404, render
from django.utils import timezone
from django.utils.dateparse import parse_date
from django.utils.safestring import mark_safe

from common.staff import staff_required

from .analysis import baseline_of, experiment_analyse, uplift_chart_svg, variation_role
from .models import Experiment
from .selectors import experiments_with_exposures, funnel_default_window, funnel_report


@staff_required
def funnel(request):
    """Staff: the signup funnel with time between steps and time to value."""
    since, until = funnel_default_window(timezone.now())
    error = ""
    if request.GET.get("since"):
        try:
            # None when not shaped like a date; ValueError when shaped like one that does not
            # exist (2026-02-30), which would otherwise be a 500.
            parsed = parse_date(request.GET["since"])
        except ValueError:
            parsed = None
        if parsed is None:
            error = f"'since' must be a date like 2026-11-01, got {request.GET['since']!r}."
        else:
            since = timezone.make_aware(datetime.combine(parsed, time.min))
    report = funnel_report(since=since, until=until)
    return render(
        request,
        "experiments/funnel.html",
        {"report": report, "error": error},
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
    charts = [(metric, mark_safe(uplift_chart_svg(metric))) for metric in analysis.metrics]  # noqa: S308 - built from escaped values
    return render(request, "experiments/experiment_detail.html", {"analysis": analysis, "charts": charts})
