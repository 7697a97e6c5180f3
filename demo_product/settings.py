"""Settings of the demo product (never Flywheel's: it is an outside product).

Environment:
- FLYWHEEL_URL (else SITE_URL, else http://127.0.0.1:8000): where Flywheel runs; kit.js and the
  kit's calls go there, the CSP allows it, the header links back to it.
- DEMO_PRODUCT_URL (http://127.0.0.1:8001): this product's own address (its allowed host).
- FLYWHEEL_KIT_SECRET_<PRODUCT> / FLYWHEEL_KIT_KID_<PRODUCT> (TRACKER, WIKI, SERVICEDESK): the
  secret Flywheel issued to each product and its key id; read from the environment, else from
  the env file DEMO_PRODUCT_ENV_FILE (var/demo-product.env, written by `manage.py dev_setup`
  through `manage.py kit_secret --env-file`).
- DEMO_PRODUCT_SECRET_KEY: signs this product's own session cookie.
"""

import os
from pathlib import Path
from urllib.parse import urlsplit

BASE_DIR = Path(__file__).resolve().parent
ROOT_DIR = BASE_DIR.parent

FLYWHEEL_URL = (os.environ.get("FLYWHEEL_URL") or os.environ.get("SITE_URL") or "http://127.0.0.1:8000").rstrip("/")
DEMO_PRODUCT_URL = (os.environ.get("DEMO_PRODUCT_URL") or "http://127.0.0.1:8001").rstrip("/")
ENV_FILE = Path(
    os.environ.get("DEMO_PRODUCT_ENV_FILE")
    or Path(os.environ.get("FLYWHEEL_VAR_DIR") or ROOT_DIR / "var") / "demo-product.env"
)

DEBUG = os.environ.get("DEMO_PRODUCT_DEBUG", "") == "1"
# A demo that runs on developers' machines only; a deployment would set its own key.
SECRET_KEY = os.environ.get("DEMO_PRODUCT_SECRET_KEY") or "demo-product-local-only-not-a-secret"  # noqa: S105
ALLOWED_HOSTS = sorted({"127.0.0.1", "localhost", urlsplit(DEMO_PRODUCT_URL).hostname or "127.0.0.1"})

INSTALLED_APPS = ["django.contrib.staticfiles", "demo_product"]
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "demo_product.middleware.content_security_policy",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]
ROOT_URLCONF = "demo_product.urls"
WSGI_APPLICATION = None
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {"context_processors": ["django.template.context_processors.request"]},
    }
]
DATABASES: dict = {}

# Its own session, in a signed cookie (no database). Flywheel runs on the same host in
# development (127.0.0.1:8000 and :8001) and browsers share cookies across ports, so both
# cookies have names of their own.
SESSION_ENGINE = "django.contrib.sessions.backends.signed_cookies"
SESSION_COOKIE_NAME = "demo_product_session"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_AGE = 8 * 3600
SESSION_SERIALIZER = "django.contrib.sessions.serializers.JSONSerializer"
CSRF_COOKIE_NAME = "demo_product_csrftoken"
CSRF_COOKIE_HTTPONLY = True

SECURE_CONTENT_TYPE_NOSNIFF = True
# The launch ticket is in the first address; nothing is sent as a referrer to other origins.
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"

STATIC_URL = "/static/"
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = True

USE_TZ = True
TIME_ZONE = "UTC"
LANGUAGE_CODE = "en"
USE_I18N = False
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"demo_product": {"handlers": ["console"], "level": "INFO"}},
}
