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


@login_required
def environment_status(request: HttpRequest, environment_id: uuid.UUID) -> HttpResponse:
    environment = _environment(request, environment_id)
    if request.htmx:
        if environment.status == Environment.Status.ACTIVE and request.GET.get("follow") == "1":
            return HttpResponseClientRedirect(environment.url)
        # Polls keep what the page asked for: only the status page follows the workspace's link.
        return render(request, "provisioning/_status.html", {"environment": environment, "follow": request.GET.get("follow") == "1"})
    return render(request, "provisioning/status.html", {"environment": environment, "follow": True})


@login_required
def builtin_workspace(request: HttpRequest, environment_id: uuid.UUID) -> HttpResponse:
    """The workspace of a product provisioned by the builtin backend."""
    environment = _environment(request, environment_id)
    if environment.status != Environment.Status.ACTIVE:
        return render(request, "provisioning/status.html", {"environment": environment, "follow": True})
    return render(request, "provisioning/workspace.html", {"environment": environment})


@csrf_exempt
@require_POST
def callback(request: HttpRequest) -> JsonResponse:
    """A product tells us its environment is active or failed (docs/provisioning.md)."""
    try:
        environment = environment_callback(body=request.body, signature=request.headers.get(SIGNATURE_HEADER, ""))
    except CallbackRejected as error:
        return JsonResponse({"error": error.message}, status=error.status)
    return JsonResponse({"environment_id": str(environment.public_id), "status": environment.status})
