"""Pages for developers and browsers outside the product: the /api/ overview and /favicon.ico."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.templatetags.static import static

from .selectors import membership_is_admin


def developer_home(request: HttpRequest) -> HttpResponse:
    """/api/: what the API is for, how to authenticate, where the reference and the keys are.

    The API's own operations live under /api/v1/ and its docs under /api/docs (django-ninja);
    this page only sits at the bare prefix, which would otherwise answer 404.
    """
    membership = getattr(request, "membership", None)
    is_admin = membership_is_admin(membership)
    return render(request, "developers/api.html", {"is_admin": is_admin})


def favicon(request: HttpRequest) -> HttpResponse:
    """Browsers and crawlers ask for /favicon.ico whatever the page links; send them the file."""
    # static() is called per request, not at import time: in production the manifest storage
    # maps the name to its hashed copy, which exists only after collectstatic.
    return HttpResponseRedirect(static("favicon.ico"))
