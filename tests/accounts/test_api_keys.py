"""API keys over HTTP: a live key authenticates, a revoked one is refused at once (also when
another process revoked it, and without Redis), the secret is shown once and only its hash is
kept, only the organization's admins manage keys, rotation, the keys page and the admin."""

import pytest
from django.urls import reverse

from accounts import api_keys
from accounts.exceptions import NotFound, PermissionDenied, ValidationError
from accounts.models import ApiKey
from experiments.models import Event

from ..conftest import organization_on
from ..factories import PASSWORD, MembershipFactory, UserFactory


def _bearer(raw):
    return {"Authorization": f"Bearer {raw}"}


def _key(organization, admin, name="Tracker servers"):
    _, raw = api_keys.api_key_create(organization=organization, actor=admin, name=name)
    return raw


def _entitlements(client, raw, **params):
    response = client.get("/api/v1/entitlements", params, headers=_bearer(raw))
    assert response.status_code == 200, response.content
    return response.json()


def test_requests_without_a_live_key_are_refused(client, trial_organization):
    organization, admin = trial_organization
    raw = _key(organization, admin)
    prefix = raw.split("_")[2]
    assert client.get("/api/v1/entitlements").status_code == 401
    for header in (
        "Bearer nope",
        f"Bearer fw_live_{prefix}_{'x' * 43}",  # the right prefix with a wrong secret
        f"Basic {raw}",
        raw,
    ):
        response = client.get("/api/v1/entitlements", headers={"Authorization": header})
        assert response.status_code == 401, header
        assert response.json() == {"detail": "Unauthorized"}
    assert client.get("/api/v1/entitlements", headers=_bearer(raw)).status_code == 200
    # Once authenticated (and cached), a revoked key is refused at once.
    api_keys.api_key_revoke(api_key=ApiKey.objects.get(prefix=prefix), actor=admin)
    assert client.get("/api/v1/entitlements", headers=_bearer(raw)).status_code == 401
    prompts = client.get("/api/v1/prompts", {"user": str(admin.public_id)}, headers=_bearer(raw))
    assert prompts.status_code == 401


def test_a_key_revoked_by_another_process_is_refused_at_once(client, trial_organization, settings):
    """This process remembers the key; another process revokes it: its revocation marker in
    Redis (read on every request) makes this process ask the database again."""
    from accounts.api_keys import marker_set

    settings.LOCAL_CACHE_WITH_INVALIDATION = False  # the marker alone, as without the listener
    organization, admin = trial_organization
    raw = _key(organization, admin)
    assert client.get("/api/v1/entitlements", headers=_bearer(raw)).status_code == 200
    assert api_keys.api_key_resolve(raw).confirmed is False  # remembered, not confirmed
    api_key = ApiKey.objects.get(organization=organization)
    ApiKey.objects.filter(pk=api_key.pk).update(revoked_at=api_key.created_at)
    marker_set(api_key.prefix)
    assert client.get("/api/v1/entitlements", headers=_bearer(raw)).status_code == 401
    response = client.get("/api/v1/prompts", {"user": str(admin.public_id)}, headers=_bearer(raw))
    assert response.status_code == 401


def test_without_redis_the_api_answers_from_the_database(client, trial_organization, monkeypatch):
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    from common import shared_redis

    organization, admin = trial_organization
    raw = _key(organization, admin)
    assert _entitlements(client, raw)[0]["seat_limit"] == 100
    dead = redis.Redis(
        host="127.0.0.1", port=9, socket_connect_timeout=0.2, retry=Retry(NoBackoff(), 0)
    )
    monkeypatch.setattr(shared_redis, "client", lambda: dead)
    subscription = organization.subscriptions.get()
    subscription.seat_limit = 7
    subscription.save()  # the invalidation fails and is logged; the change is kept
    assert _entitlements(client, raw)[0]["seat_limit"] == 7
    ApiKey.objects.filter(organization=organization).update(revoked_at=subscription.created_at)
    assert client.get("/api/v1/entitlements", headers=_bearer(raw)).status_code == 401


def test_the_secret_is_shown_once_and_only_its_hash_is_stored(trial_organization):
    organization, admin = trial_organization
    api_key, raw = api_keys.api_key_create(
        organization=organization, actor=admin, name="  Tracker\nprod  "
    )
    assert raw.startswith(f"fw_live_{api_key.prefix}_") and len(api_key.prefix) == 8
    secret = raw.split("_", 3)[3]
    stored = ApiKey.objects.filter(pk=api_key.pk).values()[0]
    assert not any(secret in str(value) for value in stored.values())
    assert api_key.name == "Tracker prod"
    assert Event.objects.filter(name="api_key_created", organization=organization).count() == 1
    principal = api_keys.api_key_authenticate(raw)
    assert principal.organization_id == organization.pk
    api_key.refresh_from_db()
    assert api_key.last_used_at is not None


def test_only_admins_of_the_organization_manage_keys(trial_organization):
    organization, admin = trial_organization
    member = MembershipFactory(organization=organization).user
    outsider_organization, outsider = organization_on("standard")
    with pytest.raises(PermissionDenied):
        api_keys.api_key_create(organization=organization, actor=member, name="mine")
    with pytest.raises(NotFound):
        api_keys.api_key_create(organization=organization, actor=outsider, name="mine")
    with pytest.raises(ValidationError):
        api_keys.api_key_create(organization=organization, actor=admin, name="   ")
    api_key, _ = api_keys.api_key_create(organization=organization, actor=admin, name="ok")
    with pytest.raises(NotFound):
        api_keys.api_key_revoke(api_key=api_key, actor=outsider)
    with pytest.raises(PermissionDenied):
        api_keys.api_key_rotate(api_key=api_key, actor=member)
    assert ApiKey.objects.filter(organization=organization).count() == 1
    assert api_keys.api_key_authenticate(f"fw_live_{api_key.prefix}_x") is None


def test_rotation_gives_a_new_key_and_revokes_the_old_one_at_once(client, trial_organization):
    organization, admin = trial_organization
    old, old_raw = api_keys.api_key_create(
        organization=organization, actor=admin, name="Tracker servers"
    )
    assert client.get("/api/v1/entitlements", headers=_bearer(old_raw)).status_code == 200
    new, new_raw = api_keys.api_key_rotate(api_key=old, actor=admin)
    assert new.name == "Tracker servers" and new.prefix != old.prefix
    assert client.get("/api/v1/entitlements", headers=_bearer(old_raw)).status_code == 401
    assert client.get("/api/v1/entitlements", headers=_bearer(new_raw)).status_code == 200
    old.refresh_from_db()
    assert old.revoked_at is not None and old.revoked_by == admin
    event = Event.objects.get(name="api_key_rotated", organization=organization)
    assert (
        event.properties["replaced_prefix"] == old.prefix
        and event.properties["prefix"] == new.prefix
    )
    with pytest.raises(ValidationError, match="already revoked"):
        api_keys.api_key_rotate(api_key=old, actor=admin)
    # Revoking twice changes nothing and records once.
    api_keys.api_key_revoke(api_key=new, actor=admin)
    api_keys.api_key_revoke(api_key=new, actor=admin)
    assert Event.objects.filter(name="api_key_revoked", organization=organization).count() == 1
    assert client.get("/api/v1/entitlements", headers=_bearer(new_raw)).status_code == 401


def test_the_api_keys_page_shows_a_new_key_once(client, trial_organization):
    organization, admin = trial_organization
    client.login(email=admin.email, password=PASSWORD)
    page = client.get(reverse("api_keys"))
    assert page.status_code == 200 and b"No keys yet" in page.content
    created = client.post(reverse("api_keys"), {"name": "Tracker servers"})
    assert created.status_code == 200
    assert "no-store" in created["Cache-Control"]
    raw = created.context["raw_key"]
    assert raw.encode() in created.content
    assert raw.encode() not in client.get(reverse("api_keys")).content
    api_key = ApiKey.objects.get(organization=organization)

    rotated = client.post(reverse("api_key_rotate", args=[api_key.public_id]))
    new_raw = rotated.context["raw_key"]
    assert new_raw != raw and new_raw.encode() in rotated.content
    assert api_keys.api_key_authenticate(raw) is None
    new_key = ApiKey.objects.get(organization=organization, revoked_at__isnull=True)
    response = client.post(reverse("api_key_revoke", args=[new_key.public_id]))
    assert response.status_code == 302
    assert api_keys.api_key_authenticate(new_raw) is None

    member = MembershipFactory(organization=organization).user
    client.logout()
    client.login(email=member.email, password=PASSWORD)
    assert client.get(reverse("api_keys")).status_code == 404
    assert client.post(reverse("api_keys"), {"name": "sneaky"}).status_code == 404
    # Another organization's admin cannot touch this organization's key.
    other, other_admin = organization_on("standard")
    client.logout()
    client.login(email=other_admin.email, password=PASSWORD)
    assert client.post(reverse("api_key_revoke", args=[api_key.public_id])).status_code == 404
    assert ApiKey.objects.filter(organization=organization).count() == 2


def test_staff_see_keys_in_the_admin_and_can_revoke_them(client, trial_organization):
    organization, admin = trial_organization
    api_key, raw = api_keys.api_key_create(
        organization=organization, actor=admin, name="Tracker servers"
    )
    staff = UserFactory(is_staff=True, is_superuser=True)
    client.login(email=staff.email, password=PASSWORD)
    changelist = client.get(reverse("admin:accounts_apikey_changelist"))
    assert changelist.status_code == 200 and api_key.prefix.encode() in changelist.content
    client.post(
        reverse("admin:accounts_apikey_changelist"),
        {"action": "revoke", "_selected_action": [api_key.pk]},
    )
    api_key.refresh_from_db()
    assert api_key.revoked_at is not None and api_key.revoked_by == staff
    assert api_keys.api_key_authenticate(raw) is None
