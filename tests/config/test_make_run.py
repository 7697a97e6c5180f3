"""What `make run` prepares before the first page: everything in one process, quickly
(bench/make_run.py measures it), and the same data as before."""

import io

import pytest
from django.core.management import call_command

from accounts.models import Membership, User
from community.models import Question
from experiments.models import Experiment
from feedback.models import Response
from inproduct.models import KitSecret
from onboarding.models import Sequence

DEMO_PASSWORD = "flywheel-demo"


@pytest.mark.django_db
def test_demo_data_alone_makes_every_apps_demo_data_and_again_changes_nothing(catalog):
    call_command("demo_data", stdout=io.StringIO())
    call_command("demo_data", stdout=io.StringIO())

    assert Membership.objects.filter(organization__name="Acme").count() == 40  # dana, sam, 38 demo users
    assert Sequence.objects.get(key="trial-welcome").steps.count() == 3
    assert Experiment.objects.filter(key="onboarding-emails").exists()
    assert Question.objects.count() == 4  # community_demo's 3, and Hooli's (addons_demo)
    assert Response.objects.count() == 40


@pytest.mark.django_db
def test_demo_data_only_accounts_leaves_the_other_apps_alone(catalog):
    call_command("demo_data", "--only-accounts", stdout=io.StringIO())
    assert set(User.objects.values_list("email", flat=True)) == {
        "staff@flywheel.localhost", "dana@acme.example", "sam@acme.example",
    }
    assert not Question.objects.exists() and not Response.objects.exists()


@pytest.mark.django_db
def test_every_demo_user_signs_in_with_the_demo_password_hashed_once(catalog, client):
    call_command("demo_data", stdout=io.StringIO())

    hashes = set(User.objects.values_list("password", flat=True))
    assert len(hashes) == 1, "forty-one users, one hash: PBKDF2 ran once, not forty-one times"
    for email in ("staff@flywheel.localhost", "dana@acme.example", "demo-user-38@acme.example"):
        assert User.objects.get(email=email).check_password(DEMO_PASSWORD)
    assert client.login(email="demo-user-7@acme.example", password=DEMO_PASSWORD)


@pytest.mark.django_db
def test_dev_setup_migrates_syncs_the_catalog_and_makes_the_demo_data_saying_how_long(catalog, settings, tmp_path):
    settings.VAR_DIR = tmp_path  # not the developer's var/: its env file holds make run's secrets
    printed = io.StringIO()
    call_command("dev_setup", stdout=printed)
    lines = printed.getvalue().splitlines()
    assert lines[0] == "==> migrate"
    assert "==> catalog_sync" in lines and "==> demo data" in lines and "==> demo product" in lines
    assert lines[-1].startswith("==> setup took migrate ") and lines[-1].endswith(" s)")
    assert Response.objects.count() == 40

    # The demo product's secrets, the live ones, and the same at the next run.
    written = (tmp_path / "demo-product.env").read_text()
    for product in ("tracker", "wiki", "servicedesk"):
        live = KitSecret.objects.get(product__code=product, retired_at__isnull=True)
        assert f"FLYWHEEL_KIT_SECRET_{product.upper()}={live.secret}\n" in written
        assert f"FLYWHEEL_KIT_KID_{product.upper()}={live.key_id}\n" in written
    call_command("dev_setup", stdout=io.StringIO())
    assert (tmp_path / "demo-product.env").read_text() == written
