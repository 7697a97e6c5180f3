"""Entitlements with add-ons: the features the granting add-ons add, where each feature comes
from, the add-ons' effective status (a suspended base suspends them), and the cache forgetting
its answer when an add-on subscription, a training pack or an add-on of the catalog changes."""

from datetime import timedelta

from django.utils import timezone

from accounts import api_keys
from billing.models import AddOnSubscription, Subscription, TrainingPack
from billing.services.subscriptions import subscription_start_trial
from catalog.models import AddOn
from catalog.selectors import edition_get

from ..conftest import organization_on
from .helpers import addon_on

STANDARD = ["boards", "backlog", "roadmaps", "permissions", "audit-log"]


def _key(organization, admin):
    _, raw = api_keys.api_key_create(organization=organization, actor=admin, name="Tracker servers")
    return raw


def _entitlements(client, raw, **params):
    response = client.get("/api/v1/entitlements", params, headers={"Authorization": f"Bearer {raw}"})
    assert response.status_code == 200, response.content
    return response.json()


def test_without_addons_the_features_come_from_the_edition(client, trial_organization):
    organization, admin = trial_organization
    [row] = _entitlements(client, _key(organization, admin))
    assert row["features"] == STANDARD
    assert row["feature_sources"] == [
        {"feature": feature, "source": "edition", "code": "standard", "name": "Standard"} for feature in STANDARD
    ]
    assert row["addons"] == []


def test_a_granting_addon_adds_its_features_with_their_source(client, trial_organization):
    organization, admin = trial_organization
    subscription = organization.subscriptions.get()
    trial = addon_on(subscription, "github", status=AddOnSubscription.Status.TRIALING)
    addon_on(subscription, "premium-support")
    [row] = _entitlements(client, _key(organization, admin))
    assert row["features"] == [*STANDARD, "github-sync"]
    assert row["feature_sources"][-1] == {
        "feature": "github-sync", "source": "addon", "code": "github", "name": "GitHub integration"
    }
    assert row["addons"] == [
        {
            "code": "github",
            "name": "GitHub integration",
            "status": "trialing",
            "trial_ends_at": trial.trial_ends_at.isoformat()[:23] + "Z",
            "granting": True,
        },
        {"code": "premium-support", "name": "Premium support", "status": "active", "trial_ends_at": None, "granting": True},
    ]


def test_a_suspended_base_suspends_its_addons_without_a_write(client, trial_organization):
    organization, admin = trial_organization
    subscription = organization.subscriptions.get()
    addon = addon_on(subscription, "github")
    raw = _key(organization, admin)
    assert "github-sync" in _entitlements(client, raw)[0]["features"]
    subscription.status = Subscription.Status.SUSPENDED
    subscription.suspended_at = timezone.now()
    subscription.save()
    [row] = _entitlements(client, raw)
    assert "github-sync" not in row["features"]
    assert [source["source"] for source in row["feature_sources"]] == ["edition"] * len(STANDARD)
    assert row["addons"] == [
        {"code": "github", "name": "GitHub integration", "status": "suspended", "trial_ends_at": None, "granting": False}
    ]
    addon.refresh_from_db()
    assert addon.status == AddOnSubscription.Status.ACTIVE  # the add-on's own row is untouched


def test_an_addon_suspended_on_its_own_grants_nothing_and_a_removed_one_is_not_listed(client, trial_organization):
    organization, admin = trial_organization
    subscription = organization.subscriptions.get()
    addon_on(subscription, "github", status=AddOnSubscription.Status.SUSPENDED, suspended_at=timezone.now())
    addon_on(subscription, "premium-support", status=AddOnSubscription.Status.CANCELED, canceled_at=timezone.now())
    [row] = _entitlements(client, _key(organization, admin))
    assert row["features"] == STANDARD
    assert row["addons"] == [
        {"code": "github", "name": "GitHub integration", "status": "suspended", "trial_ends_at": None, "granting": False}
    ]


def test_a_feature_both_grant_is_listed_once_with_both_sources(client, trial_organization):
    organization, admin = trial_organization
    subscription = organization.subscriptions.get()
    github = AddOn.objects.get(product=subscription.product, code="github")
    github.features = ["github-sync", "audit-log"]
    github.save()
    addon_on(subscription, "github")
    [row] = _entitlements(client, _key(organization, admin))
    assert row["features"] == [*STANDARD, "github-sync"]
    assert [(s["source"], s["code"]) for s in row["feature_sources"] if s["feature"] == "audit-log"] == [
        ("edition", "standard"),
        ("addon", "github"),
    ]


def test_only_the_addons_of_each_product_are_listed_under_it(client, catalog):
    organization, admin = organization_on("standard")
    wiki = subscription_start_trial(
        organization=organization, edition=edition_get(product_code="wiki", edition_code="standard"), actor=admin
    )
    addon_on(wiki, "slack", status=AddOnSubscription.Status.TRIALING)
    rows = {row["product"]: row for row in _entitlements(client, _key(organization, admin))}
    assert rows["tracker"]["addons"] == []
    assert [addon["granting"] for addon in rows["wiki"]["addons"]] == [True]
    assert "github-sync" not in rows["tracker"]["features"]
    assert rows["wiki"]["features"][-1] == "slack-share"


# The cache forgets ------------------------------------------------------------------------------


def test_an_addon_subscription_saved_or_deleted_changes_the_cached_answer(client, trial_organization):
    organization, admin = trial_organization
    subscription = organization.subscriptions.get()
    raw = _key(organization, admin)
    assert _entitlements(client, raw)[0]["addons"] == []  # now cached
    addon = addon_on(subscription, "github", status=AddOnSubscription.Status.TRIALING)
    assert "github-sync" in _entitlements(client, raw)[0]["features"]
    addon.status = AddOnSubscription.Status.CANCELED
    addon.canceled_at = timezone.now()
    addon.save()
    assert "github-sync" not in _entitlements(client, raw)[0]["features"]
    addon.status = AddOnSubscription.Status.ACTIVE
    addon.save()
    assert "github-sync" in _entitlements(client, raw)[0]["features"]
    addon.delete()
    assert _entitlements(client, raw)[0]["addons"] == []


def test_a_training_pack_saved_forgets_the_cached_answer(client, trial_organization):
    from billing import entitlements

    organization, admin = trial_organization
    raw = _key(organization, admin)
    _entitlements(client, raw)
    before = entitlements.entitlements_generations(organization_id=organization.pk)
    now = timezone.now()
    TrainingPack.objects.create(
        organization=organization,
        addon=AddOn.objects.get(product__code="tracker", code="training"),
        credits=10,
        granted_at=now,
        expires_at=now + timedelta(days=365),
    )
    assert entitlements.entitlements_generations(organization_id=organization.pk) != before


def test_an_addon_of_the_catalog_saved_changes_every_cached_answer(client, trial_organization):
    organization, admin = trial_organization
    subscription = organization.subscriptions.get()
    addon_on(subscription, "github")
    raw = _key(organization, admin)
    assert _entitlements(client, raw)[0]["addons"][0]["name"] == "GitHub integration"  # now cached
    github = AddOn.objects.get(product=subscription.product, code="github")
    github.name = "GitHub sync"
    github.features = ["github-sync", "github-issues"]
    github.save()
    [row] = _entitlements(client, raw)
    assert row["addons"][0]["name"] == "GitHub sync"
    assert row["features"][-2:] == ["github-sync", "github-issues"]
