"""The products' JSON API over HTTP: entitlements (and their cache), in-product prompts with
dismissal and analytics events, the tenant wall and the OpenAPI docs. The API keys it
authenticates with are tested in tests/accounts/test_api_keys.py."""

import uuid
from datetime import UTC, datetime, timedelta

import time_machine
from django.urls import reverse

from accounts import api_keys
from accounts.models import ApiKey, Membership
from accounts.services import invite_create, invite_revoke, membership_remove
from activity.selectors import last_whole_day
from billing.entitlements import entry_seconds
from billing.models import PromptDismissal, Subscription
from billing.services import billing_account, payments, seats, subscriptions
from catalog.models import Edition
from catalog.selectors import edition_get
from common.money import money
from experiments.models import Event

from ..conftest import organization_on
from ..factories import MembershipFactory
from .helpers import DECLINED_AT_CHARGE, OK_CARD, card_enter, paid_organization, standard_checkout


def _bearer(raw):
    return {"Authorization": f"Bearer {raw}"}


def _key(organization, admin, name="Tracker servers"):
    _, raw = api_keys.api_key_create(organization=organization, actor=admin, name=name)
    return raw


def _entitlements(client, raw, **params):
    response = client.get("/api/v1/entitlements", params, headers=_bearer(raw))
    assert response.status_code == 200, response.content
    return response.json()


def _prompts(client, raw, user, **params):
    response = client.get(
        "/api/v1/prompts", {"user": str(user.public_id), **params}, headers=_bearer(raw)
    )
    assert response.status_code == 200, response.content
    return response.json()


def _post(client, raw, prompt_id, action, user):
    return client.post(
        f"/api/v1/prompts/{prompt_id}/{action}",
        {"user": str(user.public_id)},
        content_type="application/json",
        headers=_bearer(raw),
    )


# Entitlements -----------------------------------------------------------------------------------


def test_entitlements_of_a_trial(client, trial_organization):
    organization, admin = trial_organization
    raw = _key(organization, admin)
    subscription = organization.subscriptions.get()
    assert _entitlements(client, raw) == [
        {
            "product": "tracker",
            "product_name": "Tracker",
            "edition": "standard",
            "edition_name": "Standard",
            "status": "trialing",
            "entitled": True,
            "seat_limit": 100,
            "seats_used": 1,
            "features": ["boards", "backlog", "roadmaps", "permissions", "audit-log"],
            "feature_sources": [
                {"feature": feature, "source": "edition", "code": "standard", "name": "Standard"}
                for feature in ["boards", "backlog", "roadmaps", "permissions", "audit-log"]
            ],
            "addons": [],
            "trial_ends_at": subscription.trial_ends_at.isoformat()[:23] + "Z",
            "current_period_end": None,
            "interval": None,
            "active_seats": {"active": 0, "seats": 100, "ratio": 0.0, "as_of": str(last_whole_day())},
            "managed_by": None,
        }
    ]
    assert _entitlements(client, raw, product="tracker")[0]["product"] == "tracker"
    assert _entitlements(client, raw, product="wiki") == []
    # Starting another product shows up at once.
    subscriptions.subscription_start_trial(
        organization=organization,
        edition=edition_get(product_code="wiki", edition_code="free"),
        actor=admin,
    )
    assert [row["product"] for row in _entitlements(client, raw)] == ["tracker", "wiki"]
    assert _entitlements(client, raw, product="wiki")[0]["edition"] == "free"


def test_a_repeated_request_is_answered_from_the_cache(
    client, trial_organization, django_assert_num_queries
):
    organization, admin = trial_organization
    raw = _key(organization, admin)
    first = client.get("/api/v1/entitlements", headers=_bearer(raw)).content
    with django_assert_num_queries(0):
        again = client.get("/api/v1/entitlements", headers=_bearer(raw))
        one_product = client.get(
            "/api/v1/entitlements", {"product": "tracker"}, headers=_bearer(raw)
        )
    assert again.content == first and again["Content-Type"] == "application/json"
    assert one_product.json() == again.json()


def test_an_answer_computed_before_a_change_is_never_served_after_it(
    client, trial_organization, monkeypatch
):
    """A request reads the database, then a change commits before the request stores its
    answer: the stored answer belongs to a generation the change replaced."""
    from billing import entitlements

    organization, admin = trial_organization
    raw = _key(organization, admin)
    compute = entitlements.entitlements_compute

    def compute_then_a_change_commits(*, organization_id):
        rows = compute(organization_id=organization_id)
        subscription = Subscription.objects.get(organization_id=organization_id)
        subscription.seat_limit = 42
        subscription.save()
        monkeypatch.setattr(entitlements, "entitlements_compute", compute)
        return rows

    monkeypatch.setattr(entitlements, "entitlements_compute", compute_then_a_change_commits)
    assert _entitlements(client, raw)[0]["seat_limit"] == 100  # read before the change
    assert _entitlements(client, raw)[0]["seat_limit"] == 42


def test_paying_shows_at_once_in_the_entitlements(client, localstripe, trial_organization):
    organization, admin = trial_organization
    raw = _key(organization, admin)
    assert _entitlements(client, raw)[0]["status"] == "trialing"  # now cached
    intent, _ = card_enter(localstripe, organization, admin, OK_CARD)
    billing_account.card_setup_complete(organization=organization, actor=admin, setup_intent_id=intent.id)
    payment = standard_checkout(organization, admin, seats=5, interval="year")
    payments.payment_charge(payment_id=payment.pk)
    [row] = _entitlements(client, raw)
    subscription = organization.subscriptions.get()
    assert (row["status"], row["entitled"], row["seat_limit"], row["interval"]) == (
        "active",
        True,
        5,
        "year",
    )
    assert row["trial_ends_at"] is None
    assert row["current_period_end"] == subscription.current_period_end.isoformat()[:23] + "Z"


def test_added_seats_show_once_the_change_commits(
    client, localstripe, catalog, django_capture_on_commit_callbacks
):
    organization, admin, subscription = paid_organization(localstripe, seats=5)
    raw = _key(organization, admin)
    assert _entitlements(client, raw)[0]["seat_limit"] == 5
    payment = seats.subscription_add_seats(
        subscription=subscription, actor=admin, seats=2, request_key=uuid.uuid4().hex
    )
    # Paying raises the limit with a queryset update (no signal); the invoice's save, and the
    # commit after it, forget the cached answer.
    with django_capture_on_commit_callbacks(execute=True):
        payments.payment_charge(payment_id=payment.pk)
    assert _entitlements(client, raw)[0]["seat_limit"] == 7


def test_a_suspended_subscription_is_not_entitled(client, trial_organization):
    organization, admin = trial_organization
    raw = _key(organization, admin)
    assert _entitlements(client, raw)[0]["entitled"] is True
    subscription = organization.subscriptions.get()
    subscription.status = Subscription.Status.SUSPENDED
    subscription.suspended_at = subscription.created_at
    subscription.save()
    [row] = _entitlements(client, raw)
    assert (row["status"], row["entitled"]) == ("suspended", False)


def test_seats_used_follows_members_and_invites_at_once(client, trial_organization):
    organization, admin = trial_organization
    raw = _key(organization, admin)
    assert _entitlements(client, raw)[0]["seats_used"] == 1
    invite = invite_create(
        organization=organization, actor=admin, email="new@example.com", role="member"
    )
    assert _entitlements(client, raw)[0]["seats_used"] == 2
    invite_revoke(invite=invite, actor=admin)
    assert _entitlements(client, raw)[0]["seats_used"] == 1
    membership = MembershipFactory(organization=organization)
    assert _entitlements(client, raw)[0]["seats_used"] == 2
    membership_remove(membership=membership, actor=admin)
    assert _entitlements(client, raw)[0]["seats_used"] == 1
    # A pending invite frees its seat when it expires, without a write: the cached answer
    # lives no longer than that.
    invite = invite_create(
        organization=organization, actor=admin, email="later@example.com", role="member"
    )
    left = (invite.expires_at - invite.created_at).total_seconds()
    assert entry_seconds(organization.pk) == 300
    with time_machine.travel(invite.expires_at - timedelta(seconds=42), tick=False):
        assert entry_seconds(organization.pk) == 42
    assert left > 300


def test_a_catalog_change_shows_at_once(client, trial_organization):
    organization, admin = trial_organization
    raw = _key(organization, admin)
    assert "sso" not in _entitlements(client, raw)[0]["features"]
    edition = Edition.objects.get(product__code="tracker", code="standard")
    edition.features = [*edition.features, "sso"]
    edition.save()
    assert "sso" in _entitlements(client, raw)[0]["features"]


def test_a_key_sees_only_its_own_organization(client, catalog):
    acme, acme_admin = organization_on("standard")
    globex, globex_admin = organization_on("free", members=3)
    acme_raw, globex_raw = _key(acme, acme_admin), _key(globex, globex_admin)
    assert [(r["edition"], r["seats_used"]) for r in _entitlements(client, acme_raw)] == [
        ("standard", 1)
    ]
    assert [(r["edition"], r["seats_used"]) for r in _entitlements(client, globex_raw)] == [
        ("free", 3)
    ]
    # A user of another organization is not found, whatever the key.
    for raw, stranger in ((acme_raw, globex_admin), (globex_raw, acme_admin)):
        assert (
            client.get(
                "/api/v1/prompts", {"user": str(stranger.public_id)}, headers=_bearer(raw)
            ).status_code
            == 404
        )
        for action in ("dismiss", "shown", "clicked"):
            response = _post(client, raw, "trial_ends.tracker.7", action, stranger)
            assert response.status_code == 404 and response.json() == {"detail": "User not found."}
    response = client.get("/api/v1/prompts", {"user": str(uuid.uuid4())}, headers=_bearer(acme_raw))
    assert response.status_code == 404
    assert not PromptDismissal.objects.exists()
    assert not Event.objects.filter(name__startswith="prompt_").exists()


# Prompts ----------------------------------------------------------------------------------------


def test_trial_prompts_at_7_3_and_1_days_and_dismissal_per_threshold(client, trial_organization):
    organization, admin = trial_organization
    raw = _key(organization, admin)
    ends = organization.subscriptions.get().trial_ends_at
    with time_machine.travel(ends - timedelta(days=8), tick=False):
        assert _prompts(client, raw, admin) == []
    with time_machine.travel(ends - timedelta(days=6, hours=12), tick=False):
        [prompt] = _prompts(client, raw, admin)
        assert prompt["id"] == "trial_ends.tracker.7"
        assert (prompt["kind"], prompt["threshold"], prompt["severity"]) == (
            "trial_ends",
            "7",
            "info",
        )
        assert prompt["title"] == "Your Tracker trial ends in 7 days"
        assert prompt["cta_url"].endswith(
            reverse("checkout", args=[organization.subscriptions.get().public_id])
            + f"?organization={organization.public_id}"
        )
        assert prompt["dismissible"] is True
        assert _post(client, raw, prompt["id"], "dismiss", admin).status_code == 204
        assert _prompts(client, raw, admin) == []
    with time_machine.travel(ends - timedelta(days=2, hours=12), tick=False):
        [prompt] = _prompts(client, raw, admin)
        assert (prompt["id"], prompt["severity"], prompt["title"]) == (
            "trial_ends.tracker.3",
            "warning",
            "Your Tracker trial ends in 3 days",
        )
    with time_machine.travel(ends - timedelta(hours=5), tick=False):
        [prompt] = _prompts(client, raw, admin)
        assert (prompt["id"], prompt["severity"], prompt["title"]) == (
            "trial_ends.tracker.1",
            "critical",
            "Your Tracker trial ends in 1 day",
        )
        # Another product's filter leaves it out.
        assert _prompts(client, raw, admin, product="wiki") == []


def test_members_get_copy_for_members_and_no_call_to_action(client, trial_organization):
    organization, admin = trial_organization
    member = MembershipFactory(organization=organization).user
    raw = _key(organization, admin)
    ends = organization.subscriptions.get().trial_ends_at
    with time_machine.travel(ends - timedelta(days=1, hours=12), tick=False):
        [prompt] = _prompts(client, raw, member)
    assert prompt["title"] == "The Tracker trial ends in 2 days"
    assert prompt["body"].startswith("Ask an admin of")
    assert (prompt["cta_url"], prompt["cta_label"]) == ("", "")


def test_seat_limit_prompt_when_every_seat_is_taken(client, catalog):
    organization, admin = organization_on("free", members=9)
    member = Membership.objects.filter(organization=organization, role="member").first().user
    raw = _key(organization, admin)
    # 9 of 10: only the admins' early warning, not the limit's prompt.
    assert [prompt["kind"] for prompt in _prompts(client, raw, admin)] == ["seat_limit_near"]
    assert _prompts(client, raw, member) == []
    invite = invite_create(
        organization=organization, actor=admin, email="tenth@example.com", role="member"
    )
    [prompt] = _prompts(client, raw, admin)
    assert (prompt["id"], prompt["severity"]) == ("seat_limit_reached.tracker.10", "warning")
    assert prompt["title"] == "All 10 seats of Tracker Free are taken"
    assert "10 seats" in prompt["body"]
    [for_member] = _prompts(client, raw, member)
    assert for_member["id"] == prompt["id"] and for_member["cta_url"] == ""
    invite_revoke(invite=invite, actor=admin)
    assert [prompt["kind"] for prompt in _prompts(client, raw, admin)] == ["seat_limit_near"]


def test_seat_limit_near_offers_the_next_edition_with_its_price_on_free(client, catalog):
    organization, admin = organization_on("free", members=7)
    raw = _key(organization, admin)
    assert _prompts(client, raw, admin) == []  # 7 of 10: below 80 %
    MembershipFactory(organization=organization)
    [prompt] = _prompts(client, raw, admin)
    assert (prompt["id"], prompt["severity"], prompt["dismissible"]) == ("seat_limit_near.tracker.10", "info", True)
    assert prompt["title"] == "2 of 10 seats of Tracker Free left"
    assert f"Tracker Standard has room for 100 users at {money(815, 'USD')} per seat a month" in prompt["body"]
    assert prompt["cta_label"] == "Move to Standard"
    # The link names the organization, so an admin of two lands in this one.
    assert prompt["cta_url"].endswith(f"?edition=standard&organization={organization.public_id}")
    # Dismissed, it stays away at this limit.
    assert client.post(
        f"/api/v1/prompts/{prompt['id']}/dismiss",
        {"user": str(admin.public_id)},
        content_type="application/json",
        headers={"authorization": f"Bearer {raw}"},
    ).status_code == 204
    assert _prompts(client, raw, admin) == []


def test_seat_limit_near_adds_seats_at_their_price_when_paid(client, catalog, localstripe):
    organization, admin, subscription = paid_organization(localstripe, seats=5, members=4)
    raw = _key(organization, admin)
    [prompt] = _prompts(client, raw, admin)
    assert prompt["kind"] == "seat_limit_near"
    assert prompt["title"] == "1 of 5 seats of Tracker Standard left"
    assert f"Add seats at {money(815, 'USD')} a month each" in prompt["body"]
    assert prompt["cta_label"] == "Add seats"
    assert prompt["cta_url"].endswith(reverse("add_seats", args=[subscription.public_id]) + f"?organization={organization.public_id}")


def test_payment_failed_prompt_for_admins(client, localstripe, trial_organization):
    organization, admin = trial_organization
    member = MembershipFactory(organization=organization).user
    raw = _key(organization, admin)
    intent, _ = card_enter(localstripe, organization, admin, DECLINED_AT_CHARGE)
    billing_account.card_setup_complete(organization=organization, actor=admin, setup_intent_id=intent.id)
    payment = standard_checkout(organization, admin)
    payments.payment_charge(payment_id=payment.pk)
    [prompt] = _prompts(client, raw, admin)
    assert (prompt["kind"], prompt["threshold"], prompt["severity"]) == (
        "payment_failed",
        payment.invoice.number,
        "critical",
    )
    assert prompt["title"] == "A payment for Tracker failed"
    assert prompt["body"].startswith("Your bank declined the charge. Update the card")
    assert prompt["cta_url"].endswith(reverse("billing") + f"?organization={organization.public_id}")
    assert _prompts(client, raw, member) == []

    # A renewal that went past due without an open failed invoice still prompts.
    subscription = organization.subscriptions.get()
    payment.invoice.status = "void"
    payment.invoice.save()
    subscription.status = Subscription.Status.PAST_DUE
    subscription.save()
    [prompt] = _prompts(client, raw, admin)
    assert prompt["id"] == "payment_failed.tracker.past_due"


def test_card_expiring_prompt_comes_back_for_the_next_card(client, catalog):
    with time_machine.travel(datetime(2030, 1, 10, 12, tzinfo=UTC), tick=False):
        organization, admin = organization_on("premium")  # a 30-day trial: no trial prompt yet
        raw = _key(organization, admin)
        account = billing_account.billing_account_of(organization)
        account.payment_method_id, account.card_brand, account.card_last4 = (
            "pm_test",
            "visa",
            "4242",
        )
        account.card_exp_month, account.card_exp_year = 3, 2030
        account.save()
        assert _prompts(client, raw, admin) == []
        account.card_exp_month = 1
        account.save()
        [prompt] = _prompts(client, raw, admin)
        assert (prompt["id"], prompt["severity"]) == ("card_expiring..2030-01-4242", "warning")
        assert prompt["title"] == "Your Visa card ending 4242 expires at the end of January 2030"
        assert _post(client, raw, prompt["id"], "dismiss", admin).status_code == 204
        assert _prompts(client, raw, admin) == []
        # Another card that expires as soon prompts again; one that expires later does not.
        account.card_last4 = "1881"
        account.save()
        [prompt] = _prompts(client, raw, admin)
        assert prompt["id"] == "card_expiring..2030-01-1881"
        # The whole organization's prompt shows whatever product is asked about.
        assert [p["id"] for p in _prompts(client, raw, admin, product="tracker")] == [prompt["id"]]
        account.card_exp_month = 6
        account.save()
        assert _prompts(client, raw, admin) == []
    with time_machine.travel(datetime(2030, 7, 2, tzinfo=UTC), tick=False):
        [prompt] = [p for p in _prompts(client, raw, admin) if p["kind"] == "card_expiring"]
        assert (prompt["severity"], prompt["title"]) == (
            "critical",
            "Your Visa card ending 1881 expires now",
        )


def test_a_suspended_product_prompts_everyone_and_cannot_be_dismissed(client, trial_organization):
    organization, admin = trial_organization
    member = MembershipFactory(organization=organization).user
    raw = _key(organization, admin)
    subscription = organization.subscriptions.get()
    subscription.status = Subscription.Status.SUSPENDED
    subscription.save()
    with time_machine.travel(subscription.trial_ends_at - timedelta(hours=1), tick=False):
        [prompt] = _prompts(client, raw, admin)  # the trial prompt gives way
    assert (prompt["id"], prompt["severity"], prompt["dismissible"]) == (
        "suspended.tracker.suspended",
        "critical",
        False,
    )
    assert [p["id"] for p in _prompts(client, raw, member)] == [prompt["id"]]
    response = _post(client, raw, prompt["id"], "dismiss", admin)
    assert response.status_code == 400 and "cannot be dismissed" in response.json()["detail"]
    assert not PromptDismissal.objects.exists()


def test_shown_clicked_and_dismissed_are_analytics_events(client, trial_organization):
    organization, admin = trial_organization
    raw = _key(organization, admin)
    with time_machine.travel(
        organization.subscriptions.get().trial_ends_at - timedelta(days=5), tick=False
    ):
        [prompt] = _prompts(client, raw, admin)
        for action in ("shown", "clicked", "dismiss", "dismiss"):
            assert _post(client, raw, prompt["id"], action, admin).status_code == 204
    events = {
        event.name: event
        for event in Event.objects.filter(name__startswith="prompt_", organization=organization)
    }
    assert set(events) == {"prompt_shown", "prompt_clicked", "prompt_dismissed"}
    # Dismissing twice records once.
    assert Event.objects.filter(name="prompt_dismissed").count() == 1
    shown = events["prompt_shown"]
    assert shown.user == admin and shown.distinct_id == str(admin.public_id)
    assert shown.properties["prompt_id"] == "trial_ends.tracker.7"
    assert (
        shown.properties["kind"],
        shown.properties["product"],
        shown.properties["threshold"],
    ) == ("trial_ends", "tracker", "7")
    assert shown.properties["copy_source"] == "default"
    assert (
        PromptDismissal.objects.filter(
            user=admin, organization=organization, kind="trial_ends", threshold="7"
        ).count()
        == 1
    )
    for bad in ("nonsense", "unknown_kind.tracker.7", "trial_ends.tracker"):
        assert _post(client, raw, bad, "shown", admin).status_code == 404


def test_prompt_copy_comes_from_growthbook(client, trial_organization, settings):
    organization, admin = trial_organization
    member = MembershipFactory(organization=organization).user
    raw = _key(organization, admin)
    arms = [
        {
            "title": "{days} days left of {product}",
            "body": "Keep {organization} going.",
            "cta_label": "Upgrade",
        },
        {"title": "Don't lose {product}", "body": "Only {days} days left.", "cta_label": "Buy now"},
    ]
    settings.GROWTHBOOK_FEATURES = {
        "prompt-copy-trial-ends": {
            "defaultValue": arms[0],
            "rules": [
                {
                    "condition": {"role": "member"},
                    "force": {"title": "Tell your admin", "body": "{when}", "cta_label": ""},
                },
                {
                    "key": "trial-prompt-copy",
                    "variations": arms,
                    "weights": [0.5, 0.5],
                    "hashAttribute": "id",
                },
            ],
        },
        # Copy naming a placeholder the prompt does not have falls back to the default.
        "prompt-copy-seat-limit-reached": {"defaultValue": {"title": "{nope}", "body": "x"}},
    }
    ends = organization.subscriptions.get().trial_ends_at
    with time_machine.travel(ends - timedelta(days=5), tick=False):
        [prompt] = _prompts(client, raw, admin)
        assert (prompt["title"], prompt["cta_label"]) in {
            ("7 days left of Tracker", "Upgrade"),
            ("Don't lose Tracker", "Buy now"),
        }
        [for_member] = _prompts(client, raw, member)
        assert (for_member["title"], for_member["body"]) == ("Tell your admin", "in 5 days")
        _post(client, raw, prompt["id"], "shown", admin)
    shown = Event.objects.get(name="prompt_shown", user=admin)
    assert shown.properties["copy_source"] == "growthbook"
    assert shown.properties["experiment"] == "trial-prompt-copy"
    assert arms[shown.properties["variation"]]["cta_label"] == prompt["cta_label"]

    Subscription.objects.filter(organization=organization).update(seat_limit=2)
    MembershipFactory(organization=organization)
    seat_prompt = next(p for p in _prompts(client, raw, admin) if p["kind"] == "seat_limit_reached")
    assert seat_prompt["title"] == "All 2 seats of Tracker Standard are taken"


# The API's own pages ------------------------------------------------------------------------


def test_openapi_schema_and_docs_are_served(client, db):
    schema = client.get("/api/v1/openapi.json")
    assert schema.status_code == 200
    data = schema.json()
    assert data["info"]["title"] == "Flywheel API"
    assert {
        "/api/v1/entitlements",
        "/api/v1/prompts",
        "/api/v1/prompts/{prompt_id}/dismiss",
        "/api/v1/prompts/{prompt_id}/shown",
        "/api/v1/prompts/{prompt_id}/clicked",
        "/api/v1/ping",
    } <= set(data["paths"])
    assert data["components"]["securitySchemes"]["ApiKeyAuth"] == {
        "type": "http",
        "scheme": "bearer",
    }
    entitlement = data["components"]["schemas"]["EntitlementOut"]["properties"]
    assert {"product", "edition", "status", "seat_limit", "seats_used", "features"} <= set(
        entitlement
    )
    docs = client.get("/api/docs")
    assert docs.status_code == 200 and b"/api/v1/openapi.json" in docs.content
    assert client.get("/api/v1/ping").json() == {"ok": True}


def test_answers_kept_in_memory_are_forgotten_when_another_process_publishes_a_change(client, trial_organization):
    """Each web process keeps answers in memory and answers without Redis; a change published
    by another process (here: a raw Redis client, as another machine would) reaches it."""
    from billing import entitlements
    from common import invalidation, shared_redis

    from ..conftest import wait_for

    organization, admin = trial_organization
    raw = _key(organization, admin)
    first = client.get("/api/v1/entitlements", headers=_bearer(raw))
    assert first.status_code == 200
    wait_for(lambda: invalidation.epoch() is not None, what="the invalidation listener")

    def kept() -> bool:
        client.get("/api/v1/entitlements", headers=_bearer(raw))
        return organization.pk in entitlements._local

    wait_for(kept, what="an answer kept in memory")
    # Kept: changing the row behind Flywheel's back (no signal, no message) is not seen...
    from billing.models import Subscription

    Subscription.objects.filter(organization=organization).update(seat_limit=77)
    assert client.get("/api/v1/entitlements", headers=_bearer(raw)).json()[0]["seat_limit"] != 77
    # ...until a process publishes the change, as every service does through the generation.
    other_process = shared_redis.client()
    other_process.set(entitlements._generation_key(organization.pk), b"changed-elsewhere")
    other_process.publish(invalidation.channel(), f"org:{organization.pk}")
    wait_for(lambda: organization.pk not in entitlements._local, what="the invalidation to arrive")
    assert client.get("/api/v1/entitlements", headers=_bearer(raw)).json()[0]["seat_limit"] == 77

    # A key revoked elsewhere: its message makes this process forget the key at once.
    api_key = ApiKey.objects.get(organization=organization)
    ApiKey.objects.filter(pk=api_key.pk).update(revoked_at=api_key.created_at)
    other_process.publish(invalidation.channel(), f"key:{api_key.prefix}")
    wait_for(lambda: not any(k.startswith(api_key.prefix) for k in api_keys._verified), what="the revocation")
    assert client.get("/api/v1/entitlements", headers=_bearer(raw)).status_code == 401
