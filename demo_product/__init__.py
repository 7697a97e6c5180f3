"""The demo product: an outside product that embeds Flywheel's in-product kit (docs/in-product.md).

It serves the builtin provisioner's workspaces (Tracker, Wiki, Service Desk) on an origin of its
own (DEMO_PRODUCT_URL, port 8001 in `make run`), in a process of its own, the way a customer's
product would: Flywheel launches it with a signed ticket, it keeps its own session, its server
mints the kit's token with the product's secret, and its pages load kit.js from Flywheel's URL
under a strict Content-Security-Policy.

Why a small Django project rather than a bare WSGI function: Django is already installed, and
its signed-cookie sessions, CSRF protection, templates with autoescaping and runserver are what
a product's web framework gives it; written by hand they would be the part most likely to be
wrong. It has its own settings module (demo_product.settings), no database, no Flywheel app in
INSTALLED_APPS, and imports nothing of Flywheel's (an import-linter contract checks it): all it
knows of Flywheel is its URL and the product secrets, as an outside product would.

    python -m demo_product runserver 127.0.0.1:8001
"""
