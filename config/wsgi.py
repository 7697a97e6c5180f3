"""WSGI entry point (granian --interface wsgi config.wsgi:application; docs/deployment.md).

Stripe's webhook is served by a second Django handler without the browser middleware
(sessions, authentication, CSRF, messages, allauth, htmx, the current organization, static
files): nothing there applies to a signed server-to-server POST, and together they cost more
CPU than verifying and storing the event (bench/webhooks.py). That handler still runs Django's
request cycle: request signals (database connections opened, health-checked and closed as for
any request), URL resolution, the view's own decorators and Django's error handling.

It also skips the per-request connection health check (a `SELECT 1` round trip before the first
query). If the database connection died, that request fails with a 500, Django closes the
broken connection when the request ends, and Stripe delivers the event again later; every other
page keeps the check.
"""

import os

from django.core.handlers.exception import convert_exception_to_response
from django.core.handlers.wsgi import WSGIHandler
from django.core.wsgi import get_wsgi_application
from django.db import connections

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

STRIPE_WEBHOOK_PATH = "/stripe/webhook"


class MiddlewareFreeHandler(WSGIHandler):
    """Django's WSGI handler with an empty middleware list."""

    def load_middleware(self, is_async: bool = False) -> None:
        self._view_middleware = []
        self._template_response_middleware = []
        self._exception_middleware = []
        self._middleware_chain = convert_exception_to_response(self._get_response)

    def get_response(self, request):
        for connection in connections.all(initialized_only=True):
            connection.health_check_done = True
        return super().get_response(request)


django_application = get_wsgi_application()
stripe_webhook_application = MiddlewareFreeHandler()


def application(environ, start_response):
    if environ.get("PATH_INFO") == STRIPE_WEBHOOK_PATH:
        return stripe_webhook_application(environ, start_response)
    return django_application(environ, start_response)
