"""Products' kit secrets: issued in the documented shape, several live while rotating, retired;
from the command line (kit_secret issue / list / retire / --env-file) and the admin; used
tokens pruned by beat."""

from __future__ import annotations

import re
import stat
from datetime import timedelta
from io import StringIO

import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from catalog.models import Product
from inproduct.identity import kit_secret_issue, kit_secret_retire, kit_secrets_live
from inproduct.models import KitSecret, KitTokenUse
from inproduct.tasks import kit_token_uses_prune as kit_token_uses_prune_task
from tests.factories import UserFactory


def run(*args) -> str:
    out = StringIO()
    call_command("kit_secret", *args, stdout=out)
    return out.getvalue()


def test_a_secret_has_the_documented_shape(tracker):
    kit_secret, value = kit_secret_issue(product=tracker)
    assert re.fullmatch(r"fwk_[A-Za-z0-9_-]{43}", value)
    assert re.fullmatch(r"tracker_[0-9a-f]{8}", kit_secret.key_id)
    assert kit_secret.secret == value


def test_a_product_rotates_with_two_live_secrets_then_retires_the_old(tracker):
    old, _ = kit_secret_issue(product=tracker)
    new, _ = kit_secret_issue(product=tracker)
    assert kit_secrets_live(product=tracker) == [new, old]
    kit_secret_retire(kit_secret=old)
    first_retirement = old.retired_at
    assert kit_secrets_live(product=tracker) == [new]
    kit_secret_retire(kit_secret=old)
    assert old.retired_at == first_retirement


def test_the_command_issues_lists_and_retires(tracker):
    issued = run("issue", "tracker")
    kit_secret = KitSecret.objects.get()
    assert f"FLYWHEEL_KIT_SECRET_TRACKER={kit_secret.secret}" in issued
    assert f"FLYWHEEL_KIT_KID_TRACKER={kit_secret.key_id}" in issued
    assert "not shown again" in issued

    listed = run("list")
    assert kit_secret.key_id in listed and "live" in listed
    assert kit_secret.secret not in listed

    assert run("retire", kit_secret.key_id) == f"Retired {kit_secret.key_id}: tokens signed with it are refused from now on.\n"
    assert "retired" in run("list", "tracker")
    assert "was already retired" in run("retire", kit_secret.key_id)


def test_the_command_names_what_is_wrong(tracker):
    with pytest.raises(CommandError, match=r"There is no product 'trakcer' in the catalog; the products are: tracker, wiki, servicedesk\."):
        run("issue", "trakcer")
    with pytest.raises(CommandError, match=r"There is no kit secret with the key id 'tracker_00000000'"):
        run("retire", "tracker_00000000")
    with pytest.raises(CommandError, match=r"Say what to do"):
        run()
    assert not KitSecret.objects.exists()


def test_the_env_file_issues_once_and_keeps_other_lines(tracker, tmp_path):
    env_file = tmp_path / "var" / "demo-product.env"
    env_file.parent.mkdir()
    env_file.write_text("DEMO_PRODUCT_SECRET_KEY=keep-me\nFLYWHEEL_KIT_SECRET_TRACKER=stale\n")

    first = run("--env-file", str(env_file))

    assert "tracker: issued" in first and "servicedesk: issued" in first
    secrets = {secret.product.code: secret for secret in KitSecret.objects.select_related("product")}
    assert set(secrets) == {"tracker", "wiki", "servicedesk"}
    lines = env_file.read_text().splitlines()
    assert lines[0] == "DEMO_PRODUCT_SECRET_KEY=keep-me"
    assert f"FLYWHEEL_KIT_SECRET_TRACKER={secrets['tracker'].secret}" in lines
    assert f"FLYWHEEL_KIT_KID_SERVICEDESK={secrets['servicedesk'].key_id}" in lines
    assert "FLYWHEEL_KIT_SECRET_TRACKER=stale" not in lines
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600

    second = run("--env-file", str(env_file))
    assert "tracker: kept" in second
    assert KitSecret.objects.count() == 3
    assert env_file.read_text().splitlines() == lines


def test_the_env_file_replaces_a_retired_secret(tracker, tmp_path):
    env_file = tmp_path / "demo-product.env"
    run("--env-file", str(env_file))
    old = KitSecret.objects.get(product=tracker)
    kit_secret_retire(kit_secret=old)
    run("--env-file", str(env_file))
    new = KitSecret.objects.get(product=tracker, retired_at__isnull=True)
    assert f"FLYWHEEL_KIT_KID_TRACKER={new.key_id}" in env_file.read_text()


@pytest.fixture
def staff_client(client, catalog):
    staff = UserFactory(is_staff=True, is_superuser=True)
    client.force_login(staff)
    return client


def test_staff_issue_a_secret_and_see_it_once(staff_client, tracker):
    response = staff_client.post("/admin/inproduct/kitsecret/add/", {"product": tracker.pk}, follow=True)
    assert response.status_code == 200
    kit_secret = KitSecret.objects.get()
    page = response.content.decode()
    assert kit_secret.secret in page and kit_secret.key_id in page

    detail = staff_client.get(f"/admin/inproduct/kitsecret/{kit_secret.pk}/change/").content.decode()
    listing = staff_client.get("/admin/inproduct/kitsecret/").content.decode()
    assert kit_secret.key_id in listing
    assert kit_secret.secret not in detail and kit_secret.secret not in listing


def test_staff_rotate_and_retire(staff_client, tracker):
    old, _ = kit_secret_issue(product=tracker)
    staff_client.post(
        "/admin/inproduct/kitsecret/", {"action": "issue_successor", "_selected_action": [old.pk]}, follow=True
    )
    assert len(kit_secrets_live(product=tracker)) == 2
    staff_client.post("/admin/inproduct/kitsecret/", {"action": "retire", "_selected_action": [old.pk]}, follow=True)
    old.refresh_from_db()
    assert old.retired_at is not None
    assert len(kit_secrets_live(product=tracker)) == 1


def test_beat_prunes_expired_used_tokens(db):
    assert settings.CELERY_BEAT_SCHEDULE["prune-kit-token-uses"]["task"] == "inproduct.tasks.kit_token_uses_prune"
    now = timezone.now()
    KitTokenUse.objects.create(jti="a" * 16, expires_at=now - timedelta(seconds=1))
    KitTokenUse.objects.create(jti="b" * 16, expires_at=now + timedelta(minutes=5))
    assert kit_token_uses_prune_task() == 1
    assert list(KitTokenUse.objects.values_list("jti", flat=True)) == ["b" * 16]


def test_an_inactive_products_key_verifies_nothing(tracker, mint, exchange, nothing_written):
    Product.objects.filter(pk=tracker.pk).update(is_active=False)
    response = exchange(mint())
    assert response.status_code == 401
    assert response.json()["detail"].endswith("which is no longer offered.")
    nothing_written()
