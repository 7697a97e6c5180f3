"""The token exchange, POST /kit/v1/session: a product's token for its signed-in user becomes a
session credential; every forged, malformed, expired, too long-lived, unknown-key, retired-key
or replayed token is refused 401, a non-member 403, and a refusal writes nothing."""

from __future__ import annotations

import time
import uuid
from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from accounts.models import Membership
from inproduct.identity import kit_secret_issue, kit_secret_retire, kit_token_uses_prune
from inproduct.models import KitSession, KitTokenUse
from tests.factories import MembershipFactory, UserFactory

from .conftest import DROP


def test_a_good_token_becomes_a_session(mint, exchange, acme, demo_origin):
    organization, admin, _member = acme
    admin.first_name, admin.last_name = "Ada", "Lovelace"
    admin.save(update_fields=["first_name", "last_name"])

    response = exchange(mint())

    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["expires_in"] == 3600
    assert body["product"] == {"code": "tracker", "name": "Tracker"}
    assert body["user"] == {"name": "Ada Lovelace", "is_admin": True}
    assert body["organization"] == {"name": organization.name}
    assert isinstance(body["session"], str) and body["session"]
    assert response["Access-Control-Allow-Origin"] == demo_origin
    assert "Origin" in response["Vary"]
    assert "Access-Control-Allow-Credentials" not in response
    session = KitSession.objects.get()
    assert (session.user, session.organization, session.product.code, session.origin) == (
        admin, organization, "tracker", demo_origin,
    )
    assert KitTokenUse.objects.count() == 1


def test_a_member_is_not_an_admin_and_a_nameless_person_is_named_by_email(mint, exchange, acme):
    _organization, _admin, member = acme
    body = exchange(mint(user=member)).json()
    assert body["user"] == {"name": member.email, "is_admin": False}


def test_a_second_page_joins_the_session_until_the_person_was_idle(mint, exchange):
    first = exchange(mint())
    second = exchange(mint())
    assert first.status_code == second.status_code == 200
    assert KitSession.objects.count() == 1

    with time_machine.travel(timezone.now() + timedelta(minutes=31), tick=False):
        third = exchange(mint())
    assert third.status_code == 200
    assert KitSession.objects.count() == 2


def test_a_replayed_token_is_refused_and_changes_nothing(mint, exchange):
    token = mint()
    assert exchange(token).status_code == 200
    session = KitSession.objects.get()

    replay = exchange(token)

    assert replay.status_code == 401
    assert replay.json() == {
        "detail": "This token was already exchanged: mint a new token (with a new jti) for each page."
    }
    assert KitTokenUse.objects.count() == 1
    assert KitSession.objects.get().last_seen_at == session.last_seen_at


def test_a_forged_token_is_refused(mint, exchange, nothing_written, tracker_secret):
    response = exchange(mint(secret="fwk_" + "x" * 43))
    assert response.status_code == 401
    assert response.json()["detail"] == (
        f"The token's signature does not match: it was not signed with the secret of key {tracker_secret[0].key_id}."
    )
    nothing_written()


def test_a_token_with_its_claims_changed_after_signing_is_refused(mint, exchange, nothing_written, acme):
    import base64
    import json

    header, payload, signature = mint().split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["sub"] = str(acme[2].public_id)  # become the member instead of the admin
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    response = exchange(f"{header}.{forged}.{signature}")
    assert response.status_code == 401
    assert "signature does not match" in response.json()["detail"]
    nothing_written()


def test_an_expired_token_is_refused(mint, exchange, nothing_written):
    now = int(time.time())
    response = exchange(mint(iat=now - 400, exp=now - 31))
    assert response.status_code == 401
    assert response.json()["detail"] == "The token has expired: mint a fresh one for each page the product serves."
    nothing_written()


def test_a_token_just_past_its_expiry_is_still_good_within_the_leeway(mint, exchange):
    now = int(time.time())
    assert exchange(mint(iat=now - 300, exp=now - 10)).status_code == 200


def test_a_token_living_longer_than_allowed_is_refused(mint, exchange, nothing_written):
    now = int(time.time())
    response = exchange(mint(iat=now, exp=now + 601))
    assert response.status_code == 401
    assert response.json()["detail"] == (
        "The token lives 601 seconds (exp - iat); at most 600 seconds are allowed: mint short-lived tokens."
    )
    nothing_written()


def test_a_token_issued_in_the_future_is_refused(mint, exchange, nothing_written):
    now = int(time.time())
    response = exchange(mint(iat=now + 120, exp=now + 300))
    assert response.status_code == 401
    assert "iat is in the future" in response.json()["detail"]
    nothing_written()


def test_an_unknown_key_is_refused(mint, exchange, nothing_written):
    response = exchange(mint(kid="tracker_00000000"))
    assert response.status_code == 401
    assert response.json()["detail"] == "The token's kid 'tracker_00000000' is not a key Flywheel issued."
    nothing_written()


def test_a_token_without_a_key_id_is_refused(mint, exchange, nothing_written):
    response = exchange(mint(kid=DROP))
    assert response.status_code == 401
    assert response.json()["detail"].startswith("The token's header has no kid")
    nothing_written()


def test_a_retired_key_is_refused_and_its_successor_accepted(mint, exchange, nothing_written, tracker, tracker_secret):
    old, _old_value = tracker_secret
    new, new_value = kit_secret_issue(product=tracker)
    # While rotating, both verify.
    assert exchange(mint()).status_code == 200
    assert exchange(mint(secret=new_value, kid=new.key_id)).status_code == 200
    KitSession.objects.all().delete()
    KitTokenUse.objects.all().delete()

    kit_secret_retire(kit_secret=old)
    response = exchange(mint())

    assert response.status_code == 401
    assert response.json()["detail"] == (
        f"The key {old.key_id} was retired on {timezone.now():%Y-%m-%d}: sign tokens with the product's current secret."
    )
    nothing_written()
    assert exchange(mint(secret=new_value, kid=new.key_id)).status_code == 200


def test_a_token_for_another_product_than_its_key_is_refused(mint, exchange, nothing_written):
    response = exchange(mint(iss="wiki"))
    assert response.status_code == 401
    assert "iss claim must be 'tracker'" in response.json()["detail"]
    nothing_written()


def test_a_token_for_another_audience_is_refused(mint, exchange, nothing_written):
    response = exchange(mint(aud="flywheel-demo-launch"))
    assert response.status_code == 401
    assert response.json()["detail"] == "The token's aud claim must be 'flywheel-kit'."
    nothing_written()


def test_each_missing_claim_is_named(mint, exchange, nothing_written):
    for claim in ("iss", "aud", "sub", "org", "iat", "exp", "jti"):
        response = exchange(mint(**{claim: DROP}))
        assert response.status_code == 401, claim
        assert response.json()["detail"].startswith(f"The token has no {claim} claim"), claim
    nothing_written()


@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")  # HS512 wants a longer key: refused anyway
def test_another_algorithm_is_refused(mint, exchange, nothing_written, tracker_secret):
    response = exchange(mint(algorithm="HS512"))
    assert response.status_code == 401
    assert response.json()["detail"] == "The token is signed with HS512; Flywheel accepts HS256 only."
    nothing_written()


def test_an_unsigned_token_is_refused(mint, exchange, nothing_written):
    header, payload, _signature = mint().split(".")
    import base64
    import json

    none_header = base64.urlsafe_b64encode(
        json.dumps({"alg": "none", "typ": "JWT", "kid": json.loads(base64.urlsafe_b64decode(header + "=="))["kid"]}).encode()
    ).rstrip(b"=").decode()
    response = exchange(f"{none_header}.{payload}.")
    assert response.status_code == 401
    assert response.json()["detail"] == "The token is signed with none; Flywheel accepts HS256 only."
    nothing_written()


def test_a_user_who_is_not_a_member_is_refused(mint, exchange, nothing_written, demo_origin):
    stranger = UserFactory()
    response = exchange(mint(user=stranger))
    assert response.status_code == 403
    assert response.json()["detail"].startswith("The token's user (sub) is not a member of its organization (org)")
    # The origin is the product's: its page may read why (unlike an origin refusal).
    assert response["Access-Control-Allow-Origin"] == demo_origin
    nothing_written()


def test_another_organizations_user_is_refused(mint, exchange, nothing_written):
    elsewhere = MembershipFactory(role=Membership.Role.ADMIN).user
    response = exchange(mint(user=elsewhere))
    assert response.status_code == 403
    nothing_written()


def test_an_unknown_user_or_organization_is_refused(mint, exchange, nothing_written):
    assert exchange(mint(sub=str(uuid.uuid4()))).status_code == 403
    assert exchange(mint(org=str(uuid.uuid4()))).status_code == 403
    nothing_written()


def test_a_deactivated_user_is_refused(mint, exchange, nothing_written, acme):
    _organization, _admin, member = acme
    member.is_active = False
    member.save(update_fields=["is_active"])
    assert exchange(mint(user=member)).status_code == 403
    nothing_written()


def test_used_tokens_are_pruned_once_expired(mint, exchange):
    assert exchange(mint()).status_code == 200
    assert kit_token_uses_prune() == 0
    assert kit_token_uses_prune(now=timezone.now() + timedelta(seconds=300 + 31)) == 1
    assert KitTokenUse.objects.count() == 0
