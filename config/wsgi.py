"""WSGI entry point (granian --interface wsgi config.wsgi:application; docs/deployment.md).

Stripe's webhook is served by billing.views.webhook.stripe_webhook_wsgi, a bare WSGI
application, rather than through Django's handler: the browser middleware (sessions, authentication, CSRF,
messages, allauth, htmx, the current organization, static files), request and response
objects, signals and URL resolution do nothing for a signed server-to-server POST and cost
more CPU than verifying and storing the event (bench/webhooks.py). That application looks
after the database connections as Django's request signals do.

It skips the per-request connection health check (a `SELECT 1` round trip before the first
query). If the database connection died, that request fails with a 500, the broken connection
is closed when the request ends, and Stripe delivers the event again later; every other page
keeps the check.
"""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

STRIPE_WEBHOOK_PATH = "/stripe/webhook"

django_application = get_wsgi_application()

from billing.views.webhook import stripe_webhook_wsgi  # noqa: E402 - needs the apps that the line above loads


def application(environ, start_response):
    if environ.get("PATH_INFO") == STRIPE_WEBHOOK_PATH:
        return stripe_webhook_wsgi(environ, start_response)
    return django_application(environ, start_response)
