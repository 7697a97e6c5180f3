"""Staff: how many people use each product and how often (docs/activity.md#figures)."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from common.staff import staff_required

from .selectors import MONTH_DAYS, WEEK_DAYS, usage_figures


@staff_required
def staff_usage(request: HttpRequest) -> HttpResponse:
    figures = usage_figures()
    return render(
        request,
        "activity/staff_usage.html",
        {"figures": figures, "as_of": figures[0].as_of if figures else None, "week_days": WEEK_DAYS, "month_days": MONTH_DAYS},
    )
