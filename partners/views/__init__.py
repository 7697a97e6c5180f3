"""Partners' pages, one module per side: partner (the partner's own pages), quotes and
on_behalf (quotes and buying for a customer), customer (what a customer sees of its partner).

Shared here: the one 404 page every partner page answers when the partner may not see what was
asked (`not_found`), and `partner_page`, the decorator that finds the partner the signed-in
person acts for (the current organization) and turns every NotFound into that page."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from common.exceptions import NotFound

from ..selectors import partner_for_member


def not_found(request: HttpRequest, error: NotFound) -> HttpResponse:
    """The partner pages' 404: one sentence (the error's), nothing of what exists."""
    return render(request, "partners/partner/not_found.html", {"message": error.message}, status=404)


def partner_page(*, admin: bool = False) -> Callable:
    """A view of the partner side: signed in, the current organization an active partner and
    the person one of its people (its admin with `admin=True`). The view gets the Partner after
    the request; any NotFound it raises (CustomerNotLinked, NotAPartner) answers `not_found`."""

    def decorate(view: Callable) -> Callable:
        @login_required
        @wraps(view)
        def wrapped(request: HttpRequest, *args, **kwargs) -> HttpResponse:
            try:
                partner = partner_for_member(
                    user=request.user, organization=getattr(request, "organization", None), admin=admin
                )
                return view(request, partner, *args, **kwargs)
            except NotFound as error:
                return not_found(request, error)

        return wrapped

    return decorate
