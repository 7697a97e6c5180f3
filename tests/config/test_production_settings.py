"""Production settings pass Django's deployment checks, and refuse unsafe defaults."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PRODUCTION = {
    "FLYWHEEL_ENV": "production",
    "SECRET_KEY": "k3y-" + "x9Qz" * 16,
    "ALLOWED_HOSTS": "flywheel.example.com",
    "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/test",
    "REDIS_URL": "redis://127.0.0.1:6379/15",
    "SITE_URL": "https://flywheel.example.com",
    "EMAIL_HOST": "smtp.example.com",
    "STRIPE_SECRET_KEY": "sk_live_" + "x" * 24,
    "STRIPE_PUBLISHABLE_KEY": "pk_live_" + "x" * 24,
    "STRIPE_WEBHOOK_SECRET": "whsec_" + "x" * 24,
    "SELLER_DETAILS": "Flywheel Inc.\\n1 Main Street, Springfield\\nVAT US123456789",
}


def _manage(*args, **env):
    clean = {key: value for key, value in os.environ.items() if key not in PRODUCTION and key != "DJANGO_SETTINGS_MODULE"}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**clean, "DJANGO_SETTINGS_MODULE": "config.settings", **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_check_deploy_has_no_warnings():
    result = _manage("check", "--deploy", "--fail-level", "WARNING", **PRODUCTION)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_production_refuses_missing_secrets():
    for missing in ("SECRET_KEY", "ALLOWED_HOSTS", "DATABASE_URL", "REDIS_URL", "SITE_URL", "EMAIL_HOST", "STRIPE_SECRET_KEY", "STRIPE_WEBHOOK_SECRET", "SELLER_DETAILS"):
        env = {key: value for key, value in PRODUCTION.items() if key != missing}
        result = _manage("check", **env)
        assert result.returncode != 0
        assert f"{missing} must be set when FLYWHEEL_ENV=production" in result.stderr


def test_production_refuses_debug():
    result = _manage("check", DEBUG="1", **PRODUCTION)
    assert "DEBUG must be off when FLYWHEEL_ENV=production" in result.stderr


def test_models_and_migrations_agree(db):
    import io

    from django.core.management import call_command

    output = io.StringIO()
    call_command("makemigrations", "--check", "--dry-run", stdout=output)
    assert output.getvalue().strip() == "No changes detected"


def test_prepared_statements_keep_the_connection_options_of_the_database_url():
    """The prepared-statement option is added to the URL's options (sslmode, ...), never in
    their place: dropping sslmode=verify-full would quietly connect without checking TLS."""
    show = "from django.conf import settings; print(sorted(settings.DATABASES['default']['OPTIONS'].items()))"
    url = "postgres://postgres@127.0.0.1:5432/test?sslmode=verify-full&sslrootcert=/etc/ca.pem"
    result = _manage("shell", "-c", show, FLYWHEEL_ENV="development", DATABASE_URL=url)
    assert result.returncode == 0, result.stderr
    assert "('sslmode', 'verify-full')" in result.stdout and "('sslrootcert', '/etc/ca.pem')" in result.stdout
    assert "('prepare_threshold', 5)" in result.stdout
    off = _manage("shell", "-c", show, FLYWHEEL_ENV="development", DATABASE_URL=url, DATABASE_PREPARED_STATEMENTS="0")
    assert "prepare_threshold" not in off.stdout and "('sslmode', 'verify-full')" in off.stdout


@pytest.mark.parametrize(
    ("name", "good", "shown", "wrong"),
    [
        ("ONBOARDING_SMTP_CONNECTIONS", "2", "2", {"0": "must be at least 1, got 0", "many": "must be an integer, got 'many'"}),
        ("ONBOARDING_SMTP_KEEP_SECONDS", "0", "0.0", {"-1": "must be 0 or more, got -1.0", "long": "must be a number, got 'long'"}),
        ("PAYMENT_STALE_MINUTES", "30", "30", {"0": "must be at least 1, got 0", "soon": "must be an integer, got 'soon'"}),
        ("DUNNING_RETRY_DAYS", "5, 2", "[2, 5]", {
            ",": "must list at least one day, each 1 or more", "0,3": "must list at least one day, each 1 or more",
            "1,x": "must be whole numbers of days, separated by commas",
        }),
        ("SECRET_KEY_FALLBACKS", "old-key-1,old-key-2", "['old-key-1', 'old-key-2']", {}),
        ("DEFAULT_USER_TIME_ZONE", "Europe/Paris", "Europe/Paris", {
            "America": "must be an IANA time zone such as Europe/Paris, got 'America'",
            "Mars/Olympus": "must be an IANA time zone such as Europe/Paris, got 'Mars/Olympus'",
        }),
    ],
)
def test_settings_are_checked_at_start_up(name, good, shown, wrong):
    show = f"from django.conf import settings; print(settings.{name})"
    assert _manage("shell", "-c", show, FLYWHEEL_ENV="development", **{name: good}).stdout.splitlines()[-1] == shown
    for value, message in wrong.items():
        result = _manage("check", FLYWHEEL_ENV="development", **{name: value})
        assert result.returncode != 0 and f"{name} {message}" in result.stderr
