"""The "your workspace is being prepared" page, its htmx status fragment, the builtin
workspace, and the products' signed provisioning callback."""

from __future__ import annotations

import uuid

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST
from django_htmx.http import HttpResponseClientRedirect

from accounts.models import Membership
from accounts.selectors import membership_is_admin
from billing.selectors import admin_name_of, product_state_of
from common.exceptions import NotFound

from .exceptions import CallbackRejected
from .models import Environment
from .selectors import get_environment_for_user
from .services import environment_callback
from .signing import SIGNATURE_HEADER


def _environment(request: HttpRequest, environment_id: uuid.UUID) -> Environment:
    try:
        return get_environment_for_user(user=request.user, environment_public_id=environment_id)
    except NotFound:
        raise Http404 from None


def _state_context(request: HttpRequest, environment: Environment) -> dict:
    """The product's state beside its workspace: a cancelled or suspended product's workspace
    says so, and what to do, instead of offering to open it."""
    state = product_state_of(organization=environment.organization, product=environment.product)
    membership = Membership.objects.filter(organization=environment.organization, user=request.user).first()
    is_admin = membership_is_admin(membership)
    return {
        "environment": environment,
        "product_state": state,
        "is_admin": is_admin,
        "admin_name": "" if is_admin else admin_name_of(organization=environment.organization),
    }


@login_required
def environment_status(request: HttpRequest, environment_id: uuid.UUID) -> HttpResponse:
    environment = _environment(request, environment_id)
    context = _state_context(request, environment)
    closed = context["product_state"] is not None and not context["product_state"].usable
    if request.htmx:
        if not closed and environment.status == Environment.Status.ACTIVE and request.GET.get("follow") == "1":
            return HttpResponseClientRedirect(environment.url)
        # Polls keep what the page asked for: only the status page follows the workspace's link.
        return render(request, "provisioning/_status.html", {**context, "follow": request.GET.get("follow") == "1"})
    return render(request, "provisioning/status.html", {**context, "follow": True})


@login_required
def builtin_workspace(request: HttpRequest, environment_id: uuid.UUID) -> HttpResponse:
    """The workspace of a product provisioned by the builtin backend, on Flywheel's own page: what
    /w/<id>/ shows when the workspace does not open in the demo product (inproduct/launch_views.py:
    being prepared, closed, or a product without a kit secret)."""
    environment = _environment(request, environment_id)
    context = _state_context(request, environment)
    closed = context["product_state"] is not None and not context["product_state"].usable
    if environment.status != Environment.Status.ACTIVE or closed:
        return render(request, "provisioning/status.html", {**context, "follow": True})
    return render(request, "provisioning/workspace.html", context)


@csrf_exempt
@require_POST
def callback(request: HttpRequest) -> JsonResponse:
    """A product tells us its environment is active or failed (docs/provisioning.md)."""
    try:
        environment = environment_callback(body=request.body, signature=request.headers.get(SIGNATURE_HEADER, ""))
    except CallbackRejected as error:
        return JsonResponse({"error": error.message}, status=error.status)
    return JsonResponse({"environment_id": str(environment.public_id), "status": environment.status})
