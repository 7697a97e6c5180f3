"""URLs for the decorator's tests: the kit's own, plus probe endpoints behind `kit_endpoint`."""

from __future__ import annotations

from django.http import JsonResponse
from django.urls import path

from common.exceptions import NotFound
from config.urls import urlpatterns as flywheel_urlpatterns
from inproduct.identity import kit_endpoint


@kit_endpoint
def whoami(request):
    caller = request.kit
    return JsonResponse(
        {
            "user": str(caller.user.public_id),
            "organization": str(caller.organization.public_id),
            "product": caller.product.code,
            "origin": caller.origin,
            "session": str(caller.session.public_id),
            "is_admin": caller.is_admin,
        }
    )


@kit_endpoint(methods=["POST"])
def refuse(request):
    raise NotFound("There is no such message.")


urlpatterns = [
    path("probe/whoami", whoami),
    path("probe/refuse", refuse),
    *flywheel_urlpatterns,
]
