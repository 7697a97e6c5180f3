"""Pages: a customer admin's report of what their users said, and the staff report, category
corrections and follow-ups."""

from __future__ import annotations

import re
from datetime import date

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.safestring import SafeString, mark_safe
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from accounts.selectors import membership_is_admin
from activity.charts import from_first_cohort, from_first_use, mau_trend_svg, retention_heatmap_svg
from activity.selectors import last_whole_day
from activity.services import staff_figures_day
from common.staff import staff_required

from . import selectors, services
from .charts import from_first_answers, trend_svg
from .exceptions import FlywheelError, NotFound
from .models import Category, FollowUp, Response
from .reports import month_of, months_back
from .selectors import BREAKDOWN_DEFINITIONS, BREAKDOWN_TITLES


@login_required
def report(request: HttpRequest) -> HttpResponse:
    """An organization admin: how many of their people use each product against the seats they
    pay for, their own users' NPS against everyone's, by role and by use of the product, and
    comments.
    404 for members who are not admins (and there is no way to name another organization)."""
    membership = request.membership  # type: ignore[attr-defined]
    if not membership_is_admin(membership):
        raise Http404
    organization = membership.organization
    month = month_of(timezone.now())
    result = selectors.organization_report(organization=organization, until=month)
    usage = selectors.organization_usage(organization=organization, month=month)
    return render(
        request,
        "feedback/report.html",
        {
            "organization": organization,
            "report": result,
            "usage": usage,
            **_usage_charts(usage.trend),
            "usage_definitions": selectors.BREAKDOWN_DEFINITIONS["usage"],
            "minimum": selectors.min_group_responses(),
        },
    )


# No answer is older than this: a month before it is a typing error, and the trends count a
# year back from the month asked for.
FIRST_MONTH = date(2000, 1, 1)


def _month_param(request: HttpRequest) -> tuple[date, str]:
    """The month asked for (`?month=2026-10`), else the current month (its answers so far)."""
    default = month_of(timezone.now())
    text = request.GET.get("month", "").strip()
    if not text:
        return default, ""
    try:
        year, month = (int(part) for part in text.split("-"))
        asked = date(year, month, 1)
    except ValueError:
        return default, f"'month' must look like 2026-10, got {text!r}."
    if not FIRST_MONTH <= asked <= default:
        return default, f"'month' must be between {FIRST_MONTH:%Y-%m} and {default:%Y-%m}, got {text!r}."
    return asked, ""


# An inline chart is drawn at most this much larger than its own size: a chart of three months
# would otherwise fill a wide screen with huge type.
CHART_MAX_SCALE = 1.3


def _capped(svg: str) -> SafeString:
    """The chart (numbers and escaped text) no wider than CHART_MAX_SCALE times its viewBox."""
    found = re.search(r'viewBox="0 0 ([0-9.]+) ', svg)
    if found:
        svg = svg.replace('style="', f'style="max-width:{float(found.group(1)) * CHART_MAX_SCALE:.0f}px;', 1)
    return mark_safe(svg)  # noqa: S308 - activity.charts and feedback.charts escape every text


def _usage_charts(usage: selectors.UsageBesideNps) -> dict:
    """The MAU trend and the retention heat map as inline SVG."""
    return {
        "mau_chart": _capped(mau_trend_svg(from_first_use(usage.months))),
        "retention_chart": _capped(retention_heatmap_svg(from_first_cohort(usage.retention))),
    }


@staff_required
def staff_report(request: HttpRequest) -> HttpResponse:
    """Staff: one month's NPS beside the same month's active people and retention, the trends
    and the retention heat map, every breakdown, and its comments to categorize."""
    month, error = _month_param(request)
    current = month_of(timezone.now())
    result = selectors.monthly_report(month=month)
    usage = selectors.usage_beside_nps(month=month, as_of=staff_figures_day()[0])
    comments = Paginator(
        Response.objects.filter(month=month).exclude(comment="").select_related("organization").order_by("-submitted_at"),
        50,
    ).get_page(request.GET.get("page"))
    return render(
        request,
        "feedback/staff_report.html",
        {
            "report": result,
            "breakdowns": [
                (name, BREAKDOWN_TITLES[name], groups, BREAKDOWN_DEFINITIONS.get(name, []))
                for name, groups in result.breakdowns.items()
            ],
            "comments": comments,
            "categories": Category.choices,
            "month_value": f"{month:%Y-%m}",
            "is_current_month": month == current,
            "previous_month": months_back(month, 1),
            "next_month": months_back(month, -1) if month < current else None,
            "trend_chart": _capped(trend_svg(from_first_answers(result.trend))),
            "usage": usage,
            # The staff figures of yesterday are not stored yet: the newest stored day is shown.
            "usage_behind": usage.as_of < last_whole_day(),
            "months": [
                (point, month_usage)
                for point, month_usage in zip(result.trend, usage.months, strict=True)
                if point.group.score.responses or month_usage.active
            ],
            **_usage_charts(usage),
            "error": error,
            "open_follow_ups": selectors.follow_ups_for_staff().count(),
            "minimum": selectors.min_group_responses(),
        },
        status=400 if error else 200,
    )


@staff_required
@require_POST
def staff_categorize(request: HttpRequest, response_id) -> HttpResponse:
    response = Response.objects.filter(public_id=response_id).first()
    if response is None:
        raise Http404
    try:
        services.response_categorize(response=response, category=request.POST.get("category", ""), actor=request.user)
    except FlywheelError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, "Category saved.")
    back = request.POST.get("next", "")
    if not back.startswith("/staff/feedback/"):
        back = reverse("feedback_staff_report")
    return redirect(back)


@staff_required
def staff_follow_ups(request: HttpRequest) -> HttpResponse:
    status = request.GET.get("status", FollowUp.Status.OPEN)
    if status not in (*FollowUp.Status.values, "all"):
        status = FollowUp.Status.OPEN
    follow_ups = Paginator(
        selectors.follow_ups_for_staff(status=None if status == "all" else status), 50
    ).get_page(request.GET.get("page"))
    return render(
        request,
        "feedback/follow_ups.html",
        {"follow_ups": follow_ups, "status": status, "status_choices": [*FollowUp.Status.choices, ("all", "All")]},
    )


@staff_required
def staff_follow_up(request: HttpRequest, follow_up_id) -> HttpResponse:
    try:
        follow_up = selectors.get_follow_up_for_staff(user=request.user, follow_up_public_id=follow_up_id)
    except NotFound:
        raise Http404 from None
    error = ""
    if request.method == "POST":
        try:
            services.follow_up_resolve(
                follow_up=follow_up,
                actor=request.user,
                action_taken=request.POST.get("action_taken", ""),
                tell_respondent=request.POST.get("tell_respondent") == "on",
            )
        except FlywheelError as failure:
            error = failure.message
        else:
            messages.success(request, "Follow-up closed.")
            return redirect("feedback_follow_up", follow_up_id=follow_up.public_id)
    return render(
        request,
        "feedback/follow_up.html",
        {"follow_up": follow_up, "response": follow_up.response, "error": error, "posted": request.POST},
        status=400 if error else 200,
    )


@csrf_exempt  # the signed token is the authority; mail clients POST it without a session (RFC 8058)
def reports_unsubscribe(request: HttpRequest, token: str) -> HttpResponse:
    """From the link in every monthly report: GET asks, POST (the form, or a mail client's
    one-click) stops the reports. A link scanner's GET changes nothing."""
    try:
        user = services.report_recipient_of(token=token)
    except NotFound as error:
        return render(request, "feedback/reports_unsubscribe.html", {"invalid": error.message}, status=404)
    if request.method == "POST":
        services.reports_unsubscribe(user=user)
        return render(request, "feedback/reports_unsubscribe.html", {"done": True, "email": user.email})
    return render(request, "feedback/reports_unsubscribe.html", {"email": user.email, "action": request.path})
