"""The products' JSON API: one django-ninja object that mounts each app's router.

Mounted at /api/ (config/urls.py): operations under /api/v1/, the OpenAPI schema at
/api/v1/openapi.json and its interactive docs at /api/docs. Every operation but `ping` needs an
organization API key, `Authorization: Bearer fw_live_...` (accounts/api_auth.py), and sees only
that organization. docs/api.md describes each operation.

Routers, in the order the schema lists them: billing's entitlements and prompts (billing/api.py)
at /v1/, the NPS survey (feedback/api.py) at /v1/feedback/, products' activity (activity/api.py)
at /v1/activity.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from ninja import NinjaAPI

from accounts.api_auth import ApiKeyAuth
from activity.api import router as activity_router
from billing.api import router as billing_router
from common.exceptions import FlywheelError, NotFound, PermissionDenied
from feedback.api import router as feedback_router

api = NinjaAPI(
    title="Flywheel API",
    version="1",
    description=(
        "Entitlements and in-product prompts for Flywheel's products. Authenticate with an "
        "organization API key: `Authorization: Bearer fw_live_...`. Every answer is about the "
        "key's organization only."
    ),
    urls_namespace="api",
    openapi_url="/v1/openapi.json",
    docs_url="/docs",
    auth=ApiKeyAuth(),
)


@api.exception_handler(FlywheelError)
def flywheel_error(request: HttpRequest, error: FlywheelError) -> HttpResponse:
    status = (
        404 if isinstance(error, NotFound) else 403 if isinstance(error, PermissionDenied) else 400
    )
    return api.create_response(request, {"detail": error.message}, status=status)


api.add_router("/v1/", billing_router)
api.add_router("/v1/feedback/", feedback_router)
api.add_router("/v1/", activity_router)
