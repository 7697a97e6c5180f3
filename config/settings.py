"""Flywheel settings, read from the environment.

Every value has an embedded default that runs the whole system on one machine with nothing
installed but Python (SQLite under var/, kombu's filesystem broker, mail to var/mail).
`FLYWHEEL_ENV=production` turns the defaults that are unsafe in production into errors:
SECRET_KEY, ALLOWED_HOSTS, SITE_URL, DATABASE_URL, REDIS_URL and EMAIL_HOST must then be
given, and DEBUG must be off. docs/configuration.md lists
every variable.
"""

from __future__ import annotations

import json
import os
import sys
import zoneinfo
from pathlib import Path

import dj_database_url
from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def env(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(name)
    return default if value in (None, "") else value


def env_bool(name: str, default: bool) -> bool:
    value = env(name)
    if value is None:
        return default
    if value.lower() in ("1", "true", "yes", "on"):
        return True
    if value.lower() in ("0", "false", "no", "off"):
        return False
    raise ImproperlyConfigured(f"{name} must be true or false, got {value!r}")


def env_int(name: str, default: int) -> int:
    value = env(name)
    if value is None:
        return default
    try:
        return int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be an integer, got {value!r}") from None


def env_float(name: str, default: float) -> float:
    value = env(name)
    if value is None:
        return default
    try:
        return float(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a number, got {value!r}") from None


def env_list(name: str, default: list[str]) -> list[str]:
    value = env(name)
    if value is None:
        return default
    return [item.strip() for item in value.split(",") if item.strip()]


FLYWHEEL_ENV = env("FLYWHEEL_ENV", "development")
if FLYWHEEL_ENV not in ("development", "test", "production"):
    raise ImproperlyConfigured(
        f"FLYWHEEL_ENV must be development, test or production, got {FLYWHEEL_ENV!r}"
    )
PRODUCTION = FLYWHEEL_ENV == "production"

VAR_DIR = Path(env("FLYWHEEL_VAR_DIR", str(BASE_DIR / "var")))  # type: ignore[arg-type]

DEBUG = env_bool("DEBUG", not PRODUCTION)
if PRODUCTION and DEBUG:
    raise ImproperlyConfigured("DEBUG must be off when FLYWHEEL_ENV=production")

SECRET_KEY = env("SECRET_KEY")
if not SECRET_KEY:
    if PRODUCTION:
        raise ImproperlyConfigured("SECRET_KEY must be set when FLYWHEEL_ENV=production")
    # Development only: a key that is useless anywhere else, never used in production.
    SECRET_KEY = "insecure-development-key-" + "flywheel" * 6  # noqa: S105
# Old keys still accepted when checking signatures (comma-separated): put the old key here when
# rotating SECRET_KEY, so that sessions, invite links and the signed click and unsubscribe links
# in emails already sent keep working. New signatures always use SECRET_KEY.
SECRET_KEY_FALLBACKS = env_list("SECRET_KEY_FALLBACKS", [])

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", [] if PRODUCTION else ["localhost", "127.0.0.1", "[::1]"])
if PRODUCTION and not ALLOWED_HOSTS:
    raise ImproperlyConfigured("ALLOWED_HOSTS must be set when FLYWHEEL_ENV=production")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

# The address people reach Flywheel at; links in emails and provisioning callbacks use it.
SITE_URL = (env("SITE_URL", "http://127.0.0.1:8000") or "").rstrip("/")
if PRODUCTION and not env("SITE_URL"):
    raise ImproperlyConfigured("SITE_URL must be set when FLYWHEEL_ENV=production")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django_htmx",
    "ninja",
    "django_celery_beat",
    "allauth",
    "allauth.account",
    # Flywheel, from the base layer up (an app imports only from apps above it in this list).
    "accounts",
    "catalog",
    "experiments",
    "provisioning",
    "activity",
    "billing",
    "onboarding",
    "community",
    "feedback",
    "partners",
    "frontdoor",
    "inproduct",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # Before the session is read: a NUL anywhere in a request is a 400 (422 from the API).
    "common.middleware.RejectNulMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "accounts.middleware.CurrentOrganizationMiddleware",
    # A view's RequestMalformed (an id that is not an id) is a 400 page with its message.
    "common.middleware.RequestMalformedMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "accounts.context_processors.organizations",
                "partners.context_processors.partner_navigation",
            ],
        },
    },
]

# Database: PostgreSQL in production and tests, a SQLite file under var/ otherwise.
DATABASE_URL = env("DATABASE_URL")
if PRODUCTION and not DATABASE_URL:
    raise ImproperlyConfigured("DATABASE_URL must be set when FLYWHEEL_ENV=production")
# `manage.py runserver` (the Procfile's web process) answers each request in a thread of its
# own, which ends with the request: a persistent connection is never used again, only left open
# (bursts of 50 requests held 98 and starved a shared PostgreSQL). Django's docs say the same:
# no persistent connections under the development server, whatever DATABASE_CONN_MAX_AGE says.
RUNSERVER = sys.argv[1:2] == ["runserver"]
DATABASES = {
    "default": dj_database_url.parse(
        DATABASE_URL or f"sqlite:///{VAR_DIR / 'flywheel.sqlite3'}",
        # Persistent connections save a connect per request on a server; SQLite needs none.
        conn_max_age=0 if RUNSERVER else env_int("DATABASE_CONN_MAX_AGE", 60 if DATABASE_URL else 0),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Web, worker and beat share the file: wait for a lock rather than fail at once. WAL lets
    # them read while one writes, and with synchronous=NORMAL a commit is not an fsync (a power
    # cut may lose the last commits of a development database, never corrupt it): `make run`'s
    # migrate and demo data commit a few hundred times.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 20,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
elif env_bool("DATABASE_PREPARED_STATEMENTS", True):
    # Django turns psycopg's prepared statements off (prepare_threshold None), which also
    # ignores an explicit prepare=True. Its own cursors bind on the client and are never
    # prepared whatever this says; only statements run with prepare=True on a psycopg Cursor
    # are (the Stripe webhook's insert, billing.services.webhooks). Turn it off behind a pooler that
    # cannot keep them (PgBouncer before 1.22 in transaction mode: psycopg sends DEALLOCATE ALL
    # after a rollback).
    DATABASES["default"].setdefault("OPTIONS", {})["prepare_threshold"] = 5  # keeps sslmode etc. from the URL
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_USER_MODEL = "accounts.User"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = VAR_DIR / "static"
STATICFILES_DIRS = [BASE_DIR / "static"]
# Outside production WhiteNoise serves straight from the apps' static folders.
WHITENOISE_USE_FINDERS = not PRODUCTION
WHITENOISE_AUTOREFRESH = not PRODUCTION
if not PRODUCTION:
    STATIC_ROOT.mkdir(parents=True, exist_ok=True)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "whitenoise.storage.CompressedManifestStaticFilesStorage"
            if PRODUCTION
            else "django.contrib.staticfiles.storage.StaticFilesStorage"
        )
    },
}

# Redis: broker and shared cache when REDIS_URL is set.
REDIS_URL = env("REDIS_URL")
if PRODUCTION and not REDIS_URL:
    raise ImproperlyConfigured(
        "REDIS_URL must be set when FLYWHEEL_ENV=production "
        "(the Celery broker, and the shared cache that login rate limits need)"
    )
if REDIS_URL:
    CACHES = {
        "default": {
            # Django's RedisCache, but a Redis outage switches the sign-in and signup rate
            # limits off (logged as an error) instead of answering 500 to everyone (common/cache.py).
            "BACKEND": "common.cache.FailOpenRedisCache",
            "LOCATION": env("CACHE_URL", REDIS_URL),
            "KEY_PREFIX": env("CACHE_KEY_PREFIX", "flywheel"),
            "OPTIONS": {"socket_connect_timeout": 1.0, "socket_timeout": 1.0},
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# Celery: Redis when REDIS_URL is set, else kombu's filesystem transport under var/.
CELERY_BROKER_DIR = VAR_DIR / "broker"
if REDIS_URL:
    CELERY_BROKER_URL = env("CELERY_BROKER_URL", REDIS_URL)
    CELERY_BROKER_TRANSPORT_OPTIONS: dict = {"visibility_timeout": 3600}
else:
    CELERY_BROKER_URL = "filesystem://"
    # kombu's filesystem transport, but a message file is written whole before a worker can
    # take it (kombu's own lets a worker read it empty and die: config/filesystem_broker.py).
    CELERY_BROKER_TRANSPORT = "config.filesystem_broker:Transport"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(CELERY_BROKER_DIR / "queue"),
        "data_folder_out": str(CELERY_BROKER_DIR / "queue"),
        "processed_folder": str(CELERY_BROKER_DIR / "processed"),
        "control_folder": str(CELERY_BROKER_DIR / "control"),
        "store_processed": False,
    }
CELERY_TASK_DEFAULT_QUEUE = env("CELERY_QUEUE", "flywheel")
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = "UTC"
# Celery's Django fixup closes the database connection after every task unless told to reuse
# it; reconnecting per task cost more than most tasks themselves (bench/webhooks.py).
CELERY_DB_REUSE_MAX = env_int("CELERY_DB_REUSE_MAX", 1000)
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_BEAT_SCHEDULE = {
    "flush-analytics-outbox": {
        "task": "experiments.tasks.events_forward",
        "schedule": env_float("ANALYTICS_FLUSH_SECONDS", 10.0),
    },
    "refresh-funnel-progress": {
        # The staff funnel's per-person rows (experiments/funnel.py); the page refreshes too.
        "task": "experiments.tasks.funnel_progress_refresh",
        "schedule": crontab(minute="*"),
    },
    "retry-stalled-provisioning": {
        "task": "provisioning.tasks.environments_resume_stalled",
        "schedule": crontab(minute="*/5"),
    },
    "resume-unprocessed-webhooks": {
        "task": "billing.tasks.webhooks_resume_unprocessed",
        "schedule": crontab(minute="*"),
    },
    "billing-lifecycle": {
        "task": "billing.tasks.lifecycle_tick",
        "schedule": crontab(minute="*/15"),
    },
    "expire-invites": {
        "task": "accounts.tasks.invites_expire",
        "schedule": crontab(minute=17),
    },
    # onboarding/ (issue 4), community/ (issue 5) and feedback/ (issue 6) add theirs below.
    "onboarding-tick": {
        "task": "onboarding.tasks.onboarding_tick",
        "schedule": env_float("ONBOARDING_TICK_SECONDS", 60.0),
    },
    "community-escalation-tick": {
        "task": "community.tasks.escalation_tick",
        "schedule": env_float("COMMUNITY_TICK_SECONDS", 60.0),
    },
    "feedback-monthly-reports": {
        # Daily, so a missed day is caught up; each month's digest and reports are claimed once.
        "task": "feedback.tasks.reports_send_monthly",
        "schedule": crontab(hour=7, minute=23),
    },
    "prune-kit-token-uses": {
        # A used kit token is remembered (replays refused) until it would be refused as expired.
        "task": "inproduct.tasks.kit_token_uses_prune",
        "schedule": crontab(minute=7),
    },
    "reconcile-stripe-payments": {
        "task": "billing.tasks.payments_reconcile",
        "schedule": crontab(hour=3, minute=41),
    },
    "prune-raw-activity": {
        # Raw product activity past ACTIVITY_RAW_RETENTION_DAYS; the daily rollups stay (docs/activity.md).
        "task": "activity.tasks.activity_raw_prune",
        "schedule": crontab(hour=4, minute=13),
    },
    "build-staff-usage-figures": {
        # Yesterday's staff figures over all organizations, once the day is whole; late events
        # rebuild them, debounced (docs/activity.md#how-the-staff-figures-stay-fast).
        "task": "activity.tasks.staff_figures_rebuild",
        "schedule": crontab(hour=0, minute=20),
    },
}

# Mail: SMTP when EMAIL_HOST is set, else one .eml file per message under var/mail.
EMAIL_HOST = env("EMAIL_HOST")
if PRODUCTION and not EMAIL_HOST:
    raise ImproperlyConfigured(
        "EMAIL_HOST must be set when FLYWHEEL_ENV=production (nobody can verify an address otherwise)"
    )
MAIL_DIR = Path(env("MAIL_DIR", str(VAR_DIR / "mail")))  # type: ignore[arg-type]
if EMAIL_HOST:
    EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    EMAIL_PORT = env_int("EMAIL_PORT", 587)
    EMAIL_HOST_USER = env("EMAIL_HOST_USER", "")
    EMAIL_HOST_PASSWORD = env("EMAIL_HOST_PASSWORD", "")
    EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", True)
    EMAIL_USE_SSL = env_bool("EMAIL_USE_SSL", False)
    EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 10)
else:
    EMAIL_BACKEND = "accounts.mail.MaildirBackend"
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", "Flywheel <hello@flywheel.localhost>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL

# Sessions and security.
SESSION_COOKIE_AGE = env_int("SESSION_COOKIE_AGE", 14 * 24 * 3600)
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
if PRODUCTION:
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", True)

# Password hashing: Django's default (PBKDF2). Tests may swap in a faster hasher.
PASSWORD_HASHERS = env_list(
    "PASSWORD_HASHERS",
    [
        "django.contrib.auth.hashers.PBKDF2PasswordHasher",
        "django.contrib.auth.hashers.PBKDF2SHA1PasswordHasher",
        "django.contrib.auth.hashers.Argon2PasswordHasher",
        "django.contrib.auth.hashers.BCryptSHA256PasswordHasher",
        "django.contrib.auth.hashers.ScryptPasswordHasher",
    ],
)

# django-allauth: email login only, mandatory verification, no account enumeration.
ACCOUNT_LOGIN_METHODS = {"email"}
# One password field, with a "Show" button (static/js/account.js), instead of typing it twice.
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*"]
ACCOUNT_USER_MODEL_USERNAME_FIELD = None
ACCOUNT_EMAIL_VERIFICATION = "mandatory"
ACCOUNT_UNIQUE_EMAIL = True
ACCOUNT_PREVENT_ENUMERATION = True
ACCOUNT_LOGIN_ON_EMAIL_CONFIRMATION = True
ACCOUNT_CONFIRM_EMAIL_ON_GET = False
ACCOUNT_EMAIL_CONFIRMATION_EXPIRE_DAYS = 3
ACCOUNT_LOGIN_BY_CODE_ENABLED = False
# Flywheel's wording, and one new-password field (with Show) wherever a password is chosen.
ACCOUNT_FORMS = {
    "signup": "accounts.forms.SignupForm",
    "login": "accounts.forms.LoginForm",
    "reset_password_from_key": "accounts.forms.ResetPasswordKeyForm",
    "change_password": "accounts.forms.ChangePasswordForm",
    "set_password": "accounts.forms.SetPasswordForm",
}
ACCOUNT_ADAPTER = "accounts.adapters.AccountAdapter"
# The name every email and page calls the site by (allauth's emails too, through
# accounts.adapters: a setting rather than django.contrib.sites, whose table would only repeat
# this and SITE_URL).
SITE_NAME = env("SITE_NAME", "Flywheel") or "Flywheel"
# A note to the account's address when its password or addresses change.
ACCOUNT_EMAIL_NOTIFICATIONS = True
ACCOUNT_DEFAULT_HTTP_PROTOCOL = "https" if PRODUCTION else "http"
ACCOUNT_RATE_LIMITS = {
    # allauth's defaults, written out so operators can see and tune them.
    "change_password": "5/m/user",
    "manage_email": "10/m/user",
    "reset_password": "20/m/ip,5/m/key",
    "reauthenticate": "10/m/user",
    "reset_password_from_key": "20/m/ip",
    "signup": env("SIGNUP_RATE_LIMIT", "20/m/ip"),
    "login": "30/m/ip",
    "login_failed": "10/m/ip,5/5m/key",
    "confirm_email": "1/3m/key",
}
# Proxies in front of the web processes that append the client's address to X-Forwarded-For
# (the TLS proxy of docs/deployment.md): the rate limits above count per client address, and
# behind a proxy every request would otherwise come from the proxy's one address. 0 trusts no
# header (a client can write X-Forwarded-For itself).
ALLAUTH_TRUSTED_PROXY_COUNT = env_int("TRUSTED_PROXY_COUNT", 1 if PRODUCTION else 0)
if ALLAUTH_TRUSTED_PROXY_COUNT < 0:
    raise ImproperlyConfigured(f"TRUSTED_PROXY_COUNT must be 0 or more, got {ALLAUTH_TRUSTED_PROXY_COUNT}")
LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "home"
ACCOUNT_LOGOUT_REDIRECT_URL = "landing"

# Catalog and provisioning.
CATALOG_FILE = Path(env("CATALOG_FILE", str(BASE_DIR / "catalog.toml")))  # type: ignore[arg-type]
PROVISIONING_MAX_ATTEMPTS = env_int("PROVISIONING_MAX_ATTEMPTS", 6)
PROVISIONING_BACKOFF_SECONDS = env_float("PROVISIONING_BACKOFF_SECONDS", 2.0)
PROVISIONING_BACKOFF_MAX_SECONDS = env_float("PROVISIONING_BACKOFF_MAX_SECONDS", 300.0)
PROVISIONING_HTTP_TIMEOUT = env_float("PROVISIONING_HTTP_TIMEOUT", 10.0)
PROVISIONING_SIGNATURE_TOLERANCE_SECONDS = env_int("PROVISIONING_SIGNATURE_TOLERANCE_SECONDS", 300)
# An environment stuck in "requested" or "provisioning" longer than this is picked up again.
PROVISIONING_STALL_SECONDS = env_int("PROVISIONING_STALL_SECONDS", 600)

# Stripe. Without STRIPE_SECRET_KEY (development and tests) Flywheel talks to localstripe on
# 127.0.0.1 (started by `make run` and by the test suite) with throwaway keys. With a key set,
# it talks to Stripe itself (test-mode keys for trying it out) unless STRIPE_API_BASE says
# otherwise. Production needs real keys.
LOCALSTRIPE_PORT = env_int("LOCALSTRIPE_PORT", 8420)
USE_LOCALSTRIPE = not env("STRIPE_SECRET_KEY") and not PRODUCTION
STRIPE_SECRET_KEY = env("STRIPE_SECRET_KEY", "sk_test_flywheel_local" if USE_LOCALSTRIPE else None)
STRIPE_PUBLISHABLE_KEY = env("STRIPE_PUBLISHABLE_KEY", "pk_test_flywheel_local" if USE_LOCALSTRIPE else None)
STRIPE_WEBHOOK_SECRET = env("STRIPE_WEBHOOK_SECRET", "whsec_flywheel_local" if USE_LOCALSTRIPE else None)
STRIPE_API_BASE = env("STRIPE_API_BASE", f"http://127.0.0.1:{LOCALSTRIPE_PORT}" if USE_LOCALSTRIPE else None)
STRIPE_JS_URL = env(
    "STRIPE_JS_URL", f"{STRIPE_API_BASE}/js.stripe.com/v3/" if STRIPE_API_BASE else "https://js.stripe.com/v3/"
)
STRIPE_WEBHOOK_TOLERANCE = env_int("STRIPE_WEBHOOK_TOLERANCE", 300)
# The webhook drain's lease on an event, and the first wait before a failed event is tried
# again (doubling per attempt, at most an hour).
WEBHOOK_LEASE_SECONDS = env_int("WEBHOOK_LEASE_SECONDS", 120)
WEBHOOK_RETRY_SECONDS = env_float("WEBHOOK_RETRY_SECONDS", 5.0)
# A webhook event whose handling met a temporary error (Stripe unreachable, a bug) this many
# times is dead: never tried again until staff replay it, and an ERROR in the log. With the
# defaults, 12 attempts span about 2.4 hours (waits of 5 s, 10 s, ... then an hour), so an
# outage of Stripe of an hour or two needs nobody; 8 would span only 10.6 minutes.
WEBHOOK_MAX_ATTEMPTS = env_int("WEBHOOK_MAX_ATTEMPTS", 12)
if WEBHOOK_MAX_ATTEMPTS < 1:
    raise ImproperlyConfigured(f"WEBHOOK_MAX_ATTEMPTS must be at least 1, got {WEBHOOK_MAX_ATTEMPTS}")
# After a batch that was not full, the drain waits this long for more events before claiming
# again: a burst is then applied in batches (billing.services.webhooks.webhooks_drain).
WEBHOOK_DRAIN_LINGER_SECONDS = env_float("WEBHOOK_DRAIN_LINGER_SECONDS", 0.2)
if PRODUCTION:
    for _name in ("STRIPE_SECRET_KEY", "STRIPE_PUBLISHABLE_KEY", "STRIPE_WEBHOOK_SECRET"):
        if not globals()[_name]:
            raise ImproperlyConfigured(f"{_name} must be set when FLYWHEEL_ENV=production")
PAYMENT_MAX_ATTEMPTS = env_int("PAYMENT_MAX_ATTEMPTS", 5)
PAYMENT_RETRY_SECONDS = env_float("PAYMENT_RETRY_SECONDS", 30.0)
# A payment or refund nothing has moved for this long (its task lost) is scheduled again by the
# billing lifecycle tick (every 15 minutes).
PAYMENT_STALE_MINUTES = env_int("PAYMENT_STALE_MINUTES", 15)
if PAYMENT_STALE_MINUTES < 1:
    raise ImproperlyConfigured(f"PAYMENT_STALE_MINUTES must be at least 1, got {PAYMENT_STALE_MINUTES}")
INVOICE_NUMBER_PREFIX = env("INVOICE_NUMBER_PREFIX", "FW")
# The seller printed at the top of every invoice: legal name, address, tax ID, one per line
# ("\n" in the environment variable separates lines). Kept on each invoice as issued.
if PRODUCTION and not env("SELLER_DETAILS"):
    raise ImproperlyConfigured("SELLER_DETAILS must be set when FLYWHEEL_ENV=production (invoices name their seller)")
# Development and tests print a demo seller, so the demo's invoices read as real ones do.
_DEMO_SELLER_DETAILS = "Flywheel Demo Ltd\n1 Demo Street, London EC1A 1AA, United Kingdom\nVAT GB 000 0000 00 (demo)"
SELLER_DETAILS = (env("SELLER_DETAILS", "" if PRODUCTION else _DEMO_SELLER_DETAILS) or "").replace("\\n", "\n")
# Trial reminders (days before the end), dunning retries (days after the failed renewal) and
# the grace period after the last retry before the subscription is suspended.
# The seat-limit prompt's early warning ("8 of 10 seats taken") shows to admins from this share of the limit.
SEAT_LIMIT_NEAR_SHARE = env_float("SEAT_LIMIT_NEAR_SHARE", 0.8)
if not 0 < SEAT_LIMIT_NEAR_SHARE <= 1:
    raise ImproperlyConfigured(f"SEAT_LIMIT_NEAR_SHARE must be above 0 and at most 1, got {SEAT_LIMIT_NEAR_SHARE}")
TRIAL_REMINDER_DAYS = sorted((int(d) for d in env_list("TRIAL_REMINDER_DAYS", ["7", "3", "1"])), reverse=True)
try:
    DUNNING_RETRY_DAYS = sorted(int(d) for d in env_list("DUNNING_RETRY_DAYS", ["1", "3", "5", "7"]))
except ValueError:
    raise ImproperlyConfigured("DUNNING_RETRY_DAYS must be whole numbers of days, separated by commas") from None
if not DUNNING_RETRY_DAYS or DUNNING_RETRY_DAYS[0] < 1:
    raise ImproperlyConfigured("DUNNING_RETRY_DAYS must list at least one day, each 1 or more")
DUNNING_GRACE_DAYS = env_int("DUNNING_GRACE_DAYS", 3)
# Yearly spend (minor units) above which an organization is listed for the sales team, and
# above which staff may move it to purchase orders.
SALES_THRESHOLD_MINOR = env_int("SALES_THRESHOLD_MINOR", 1_000_000)

# Channel partners (docs/partners.md). Tiers, each a code with its name and the discount (basis
# points off list prices: 1500 = 15 %) its partners buy at; PARTNER_TIERS may be given as JSON
# ({"silver": {"name": "Silver", "discount_bp": 1000}, ...}). The first tier is a new partner's.
PARTNER_TIERS = json.loads(env("PARTNER_TIERS", "") or "null") or {
    "silver": {"name": "Silver", "discount_bp": 1000},
    "gold": {"name": "Gold", "discount_bp": 1500},
    "platinum": {"name": "Platinum", "discount_bp": 2000},
}
for _code, _tier in PARTNER_TIERS.items():
    if not isinstance(_tier, dict) or not _tier.get("name") or not 0 <= int(_tier.get("discount_bp", -1)) < 10000:
        raise ImproperlyConfigured(f"PARTNER_TIERS[{_code!r}] needs a name and a discount_bp from 0 to 9999")
# Partner-managed subscriptions are paid a year at a time (quotes, renewals, changes).
PARTNER_ANNUAL_ONLY = env_bool("PARTNER_ANNUAL_ONLY", True)
# How long a quote can be accepted, in days from the day it is made.
QUOTE_VALID_DAYS = env_int("QUOTE_VALID_DAYS", 30)
# Net terms of an invoice paid against a purchase order given when a quote is accepted.
QUOTE_PO_NET_TERMS_DAYS = env_int("QUOTE_PO_NET_TERMS_DAYS", 30)

# The entitlements API (docs/api.md): answers are cached in Redis for at most
# ENTITLEMENTS_CACHE_SECONDS and invalidated on every change. ENTITLEMENTS_LOCAL_SECONDS > 0
# lets each web process reuse an answer (and a key check) that long without asking Redis:
# faster, but another process's change (a payment, a revoked key) can then show that late.
# Off by default: a revoked key is refused everywhere at once.
ENTITLEMENTS_CACHE_SECONDS = env_int("ENTITLEMENTS_CACHE_SECONDS", 300)
# Web processes keep entitlements answers (and verified API keys) in memory, forgotten the moment
# another process publishes a change (common/invalidation.py); at most this many seconds.
# 0 turns the local copy off (every request then reads Redis).
ENTITLEMENTS_LOCAL_SECONDS = env_float("ENTITLEMENTS_LOCAL_SECONDS", 30.0)
LOCAL_CACHE_WITH_INVALIDATION = env_bool("LOCAL_CACHE_WITH_INVALIDATION", True)
# GrowthBook feature definitions (a JSON file), e.g. prompt copy experiments; none by default.
GROWTHBOOK_FEATURES_FILE = env("GROWTHBOOK_FEATURES_FILE")

# Invites and seats.
INVITE_MAX_AGE_DAYS = env_int("INVITE_MAX_AGE_DAYS", 7)

# Analytics: events are always stored; forwarded to PostHog when a key is set.
POSTHOG_API_KEY = env("POSTHOG_API_KEY")
POSTHOG_HOST = env("POSTHOG_HOST", "https://us.i.posthog.com")
POSTHOG_TIMEOUT = env_float("POSTHOG_TIMEOUT", 10.0)
ANALYTICS_BATCH_SIZE = env_int("ANALYTICS_BATCH_SIZE", 500)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}, "stripe": {"level": "WARNING"}},
}


# Users' local time: a user with no time zone of their own is taken to be in this one.
DEFAULT_USER_TIME_ZONE = env("DEFAULT_USER_TIME_ZONE", "UTC")
try:
    zoneinfo.ZoneInfo(DEFAULT_USER_TIME_ZONE)
except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
    raise ImproperlyConfigured(
        f"DEFAULT_USER_TIME_ZONE must be an IANA time zone such as Europe/Paris, got {DEFAULT_USER_TIME_ZONE!r}"
    ) from None

# --- Onboarding emails and experiments (onboarding/, experiments/; docs/onboarding.md) ---
# Which experiment chooses each new user's onboarding sequence (docs/experiments.md), and the
# sequence everyone gets while that experiment is absent or not running ("" = nobody enrolled).
ONBOARDING_EXPERIMENT_KEY = env("ONBOARDING_EXPERIMENT_KEY", "onboarding-emails")
ONBOARDING_DEFAULT_SEQUENCE = env("ONBOARDING_DEFAULT_SEQUENCE", "")
ONBOARDING_FROM_EMAIL = env("ONBOARDING_FROM_EMAIL", DEFAULT_FROM_EMAIL)
# No marketing email between these local hours of the recipient (start > end spans midnight).
ONBOARDING_QUIET_HOURS_START = env_int("ONBOARDING_QUIET_HOURS_START", 21)
ONBOARDING_QUIET_HOURS_END = env_int("ONBOARDING_QUIET_HOURS_END", 8)
# The beat tick: how often, how many due steps it claims at most, and sends per worker task
# (each task pays a few statements, two transactions and an SMTP connection whatever its size:
# 100 instead of 50 took a quarter off the worker's CPU per email in bench/onboarding.py).
ONBOARDING_TICK_SECONDS = env_float("ONBOARDING_TICK_SECONDS", 60.0)
ONBOARDING_TICK_LIMIT = env_int("ONBOARDING_TICK_LIMIT", 5000)
ONBOARDING_SEND_CHUNK = env_int("ONBOARDING_SEND_CHUNK", 100)
# SMTP connections each sending task keeps an email in flight on (at most one per send of the
# chunk): one connection waits on the server for every step of every email and leaves it idle in
# between, several keep it busy. Lower it for a server that limits connections per client.
ONBOARDING_SMTP_CONNECTIONS = env_int("ONBOARDING_SMTP_CONNECTIONS", 4)
if ONBOARDING_SMTP_CONNECTIONS < 1:
    raise ImproperlyConfigured(f"ONBOARDING_SMTP_CONNECTIONS must be at least 1, got {ONBOARDING_SMTP_CONNECTIONS}")
# Between chunks a worker process keeps its SMTP connections open this many seconds, so that a
# burst of chunks connects, negotiates TLS and logs in once per connection, not once per chunk.
# 0 closes them after every chunk. Keep it under the server's own idle timeout.
ONBOARDING_SMTP_KEEP_SECONDS = env_float("ONBOARDING_SMTP_KEEP_SECONDS", 30.0)
if ONBOARDING_SMTP_KEEP_SECONDS < 0:
    raise ImproperlyConfigured(f"ONBOARDING_SMTP_KEEP_SECONDS must be 0 or more, got {ONBOARDING_SMTP_KEEP_SECONDS}")
# After a failed SMTP call a step is tried again this much later; a send claimed this long ago
# and never finished (worker lost mid-send) is marked unknown and the sequence moves on.
ONBOARDING_RETRY_MINUTES = env_int("ONBOARDING_RETRY_MINUTES", 10)
ONBOARDING_STALE_MINUTES = env_int("ONBOARDING_STALE_MINUTES", 30)
# Hosts that tracked click links may redirect to, besides SITE_URL's own host.
ONBOARDING_LINK_HOSTS = env_list("ONBOARDING_LINK_HOSTS", [])
# The frequency cap every marketing email shares: at most CAP_COUNT per address per CAP_HOURS.
MARKETING_EMAIL_CAP_COUNT = env_int("MARKETING_EMAIL_CAP_COUNT", 1)
MARKETING_EMAIL_CAP_HOURS = env_float("MARKETING_EMAIL_CAP_HOURS", 20.0)
# GrowthBook features edited in the admin are re-read by each process at most this often.
GROWTHBOOK_ADMIN_FEATURES_SECONDS = env_float("GROWTHBOOK_ADMIN_FEATURES_SECONDS", 10.0)

# --- Community Q&A and the escalation clock (community/; docs/community.md) ---
# Flags that hide a post until a moderator reviews it.
COMMUNITY_FLAGS_TO_HIDE = env_int("COMMUNITY_FLAGS_TO_HIDE", 3)
# Posts (questions, answers, comments) per user in any 60 minutes; new accounts (younger than
# COMMUNITY_NEW_ACCOUNT_DAYS or below COMMUNITY_NEW_ACCOUNT_REPUTATION) get the stricter limit.
COMMUNITY_POSTS_PER_HOUR = env_int("COMMUNITY_POSTS_PER_HOUR", 60)
COMMUNITY_NEW_POSTS_PER_HOUR = env_int("COMMUNITY_NEW_POSTS_PER_HOUR", 5)
COMMUNITY_NEW_ACCOUNT_DAYS = env_int("COMMUNITY_NEW_ACCOUNT_DAYS", 7)
COMMUNITY_NEW_ACCOUNT_REPUTATION = env_int("COMMUNITY_NEW_ACCOUNT_REPUTATION", 15)
# The due-tick escalates at most this many questions per transaction batch, and per run.
COMMUNITY_TICK_BATCH = env_int("COMMUNITY_TICK_BATCH", 100)
COMMUNITY_TICK_MAX = env_int("COMMUNITY_TICK_MAX", 2000)
# Where the "still unanswered" flag goes when no support engineer is marked lead.
COMMUNITY_SUPPORT_LEAD_EMAIL = env("COMMUNITY_SUPPORT_LEAD_EMAIL", "support-lead@flywheel.localhost")

# --- In-product NPS feedback (feedback/; docs/feedback.md) ---

# Asking (docs/feedback.md): a member is first asked FEEDBACK_MIN_TENURE_DAYS after joining the
# organization; not again within FEEDBACK_AFTER_RESPONSE_DAYS of a response, FEEDBACK_AFTER_DISMISSAL_DAYS
# of a dismissal, or FEEDBACK_UNANSWERED_DAYS of an ask left unanswered. A share
# FEEDBACK_SAMPLING_RATE (0..1) of members is drawn per FEEDBACK_SAMPLING_PERIOD_DAYS, and at most
# FEEDBACK_DAILY_CAP_PER_ORGANIZATION asks per organization per UTC day (0: no cap).
FEEDBACK_MIN_TENURE_DAYS = env_int("FEEDBACK_MIN_TENURE_DAYS", 14)

# Product activity (docs/activity.md): raw events are kept this many days (`manage.py
# activity_prune` and the beat delete older ones; the daily rollups stay), and events older than
# this are refused on arrival, so a retried batch can never be counted twice.
ACTIVITY_RAW_RETENTION_DAYS = env_int("ACTIVITY_RAW_RETENTION_DAYS", 90)
# Events per POST /api/v1/activity.
ACTIVITY_BATCH_MAX = env_int("ACTIVITY_BATCH_MAX", 1000)
# Retention cohorts of fewer people are marked small and left out of averages.
ACTIVITY_MIN_COHORT = env_int("ACTIVITY_MIN_COHORT", 20)
# Seconds between the first event arriving late for a day the staff figures cover and their
# rebuild: every late batch in between is taken in by that one rebuild.
ACTIVITY_FIGURES_REBUILD_DELAY = env_int("ACTIVITY_FIGURES_REBUILD_DELAY", 600)
FEEDBACK_AFTER_RESPONSE_DAYS = env_int("FEEDBACK_AFTER_RESPONSE_DAYS", 90)
FEEDBACK_AFTER_DISMISSAL_DAYS = env_int("FEEDBACK_AFTER_DISMISSAL_DAYS", 30)
FEEDBACK_UNANSWERED_DAYS = env_int("FEEDBACK_UNANSWERED_DAYS", 7)
FEEDBACK_SAMPLING_RATE = env_float("FEEDBACK_SAMPLING_RATE", 1.0)
FEEDBACK_SAMPLING_PERIOD_DAYS = env_int("FEEDBACK_SAMPLING_PERIOD_DAYS", 30)
FEEDBACK_DAILY_CAP_PER_ORGANIZATION = env_int("FEEDBACK_DAILY_CAP_PER_ORGANIZATION", 50)
# Reports show a group (a role, an edition...) with fewer answers than this as "too few answers".
FEEDBACK_MIN_GROUP_RESPONSES = env_int("FEEDBACK_MIN_GROUP_RESPONSES", 10)
# Comments picked at random for the staff's monthly digest.
FEEDBACK_DIGEST_COMMENTS = env_int("FEEDBACK_DIGEST_COMMENTS", 10)

# --- The in-product kit (inproduct/; docs/in-product.md) ---
# Where the demo product (demo_product/, the builtin provisioner's workspaces) is served: its own
# process and origin, so that the kit runs cross-origin as in a customer's product.
DEMO_PRODUCT_URL = (env("DEMO_PRODUCT_URL", "http://127.0.0.1:8001") or "").rstrip("/")
# A kit token lives at most this long (exp - iat); a longer one is refused.
KIT_TOKEN_MAX_SECONDS = env_int("KIT_TOKEN_MAX_SECONDS", 600)
# A session credential from a token exchange is good for this long; the kit then exchanges a new token.
KIT_SESSION_SECONDS = env_int("KIT_SESSION_SECONDS", 3600)
# A visit ends after this long without a kit call: the next exchange starts a new kit session
# (and a new contact budget: one kit message per session).
KIT_SESSION_IDLE_MINUTES = env_int("KIT_SESSION_IDLE_MINUTES", 30)
# GET /kit/v1/message's answer is kept (shared Redis, and each web process's memory) at most this
# long (0: never kept), and forgotten at once when anything it depends on changes or at the next
# moment it could change with time alone (inproduct/message_cache.py); the bound is for what no
# write announces (GrowthBook copy from its features file).
KIT_MESSAGE_CACHE_SECONDS = env_int("KIT_MESSAGE_CACHE_SECONDS", 300)
# At most this many events in one kit activity batch (POST /kit/v1/activity; the kit sends 50).
KIT_ACTIVITY_BATCH_MAX = env_int("KIT_ACTIVITY_BATCH_MAX", 100)
