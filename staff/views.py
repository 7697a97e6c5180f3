"""The staff home: where a staff member lands after signing in."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone

from common.staff import staff_required

from . import partners
from .selectors import staff_pages


@staff_required
def staff_home(request: HttpRequest) -> HttpResponse:
    return render(request, "staff/home.html", {"pages": staff_pages(now=timezone.now())})


@staff_required
def staff_partners(request: HttpRequest) -> HttpResponse:
    """/staff/partners/: partners by tier, customers per partner, revenue through partners
    against direct by month, applications waiting for a decision."""
    now = timezone.now()
    return render(
        request,
        "staff/partners.html",
        {
            "tiers": partners.tiers_overview(),
            "partners": partners.partners_overview(),
            "revenue": partners.revenue_by_month(now=now),
            "applications": partners.pending_applications(),
            "months": partners.MONTHS,
        },
    )
