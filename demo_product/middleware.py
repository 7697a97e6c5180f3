"""The demo product's Content-Security-Policy: the strict one a careful product runs the kit
under (docs/in-product.md, "Content-Security-Policy"). Scripts come from this origin and
Flywheel's only, no inline script or style, no eval; the kit's calls go to Flywheel's origin,
the token refresh to this one."""

from __future__ import annotations

from urllib.parse import urlsplit

from django.conf import settings


def flywheel_origin() -> str:
    parts = urlsplit(settings.FLYWHEEL_URL)
    return f"{parts.scheme}://{parts.netloc}"


def policy() -> str:
    flywheel = flywheel_origin()
    return "; ".join(
        [
            "default-src 'self'",
            f"script-src 'self' {flywheel}",
            f"connect-src 'self' {flywheel}",
            "style-src 'self'",
            "img-src 'self' data:",
            "font-src 'self'",
            "object-src 'none'",
            "base-uri 'none'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        ]
    )


def content_security_policy(get_response):
    def middleware(request):
        response = get_response(request)
        response.setdefault("Content-Security-Policy", policy())
        return response

    return middleware
