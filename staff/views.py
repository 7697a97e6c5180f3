"""The staff home: where a staff member lands after signing in."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone

from common.staff import staff_required

from .selectors import staff_pages


@staff_required
def staff_home(request: HttpRequest) -> HttpResponse:
    return render(request, "staff/home.html", {"pages": staff_pages(now=timezone.now())})
