"""The one gate of every staff page (`/staff/...`).

Signed out: the normal sign-in page, with `next=` back to the page asked for. Signed in but not
staff: a plain "staff only" page (403) in the site's look, never the Django admin's login form,
which would ask a customer to sign in again with staff credentials.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render


def staff_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Let active staff members through; everyone else is sent to sign in or told "staff only"."""

    @wraps(view)
    def gate(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        user = request.user
        if not user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        if not (user.is_active and user.is_staff):
            return render(request, "staff/forbidden.html", status=403)
        return view(request, *args, **kwargs)

    return gate
