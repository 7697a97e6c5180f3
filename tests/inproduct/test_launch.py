"""/w/<environment id>/ on Flywheel: a member of the organization is sent to the demo product
with a ticket it can verify with the product's kit secret; a workspace that cannot open there
(being prepared, suspended, a product without a secret) keeps Flywheel's own page; nobody else
learns anything."""

from __future__ import annotations

import time
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest
from django.urls import reverse

from accounts.models import Membership
from billing.models import Subscription
from inproduct.launch import LAUNCH_TICKET_SECONDS
from provisioning.models import Environment

from ..billing.helpers import workspace_ready
from ..conftest import kit_secret_for, organization_on
from ..factories import MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db


def _ticket_of(response) -> tuple[str, dict]:
    assert response.status_code == 302, response.status_code
    location = urlsplit(response["Location"])
    return f"{location.scheme}://{location.netloc}{location.path}", parse_qs(location.query)["ticket"][0]


def test_a_member_is_sent_to_the_demo_product_with_a_short_lived_ticket_naming_who_and_where(client, catalog, settings):
    settings.DEMO_PRODUCT_URL = "http://127.0.0.1:8123"
    organization, admin = organization_on("standard")
    admin.first_name, admin.last_name = "Ada", "Lovelace"
    admin.save()
    environment = workspace_ready(organization)
    secret = kit_secret_for("tracker")
    client.force_login(admin)

    response = client.get(reverse("builtin_workspace", args=[environment.public_id]))

    where, ticket = _ticket_of(response)
    assert where == f"http://127.0.0.1:8123/w/{environment.public_id}/"
    assert jwt.get_unverified_header(ticket) == {"alg": "HS256", "typ": "JWT", "kid": secret.key_id}
    claims = jwt.decode(ticket, secret.secret, algorithms=["HS256"], audience="flywheel-demo-launch", issuer="flywheel")
    assert claims["sub"] == str(admin.public_id) and claims["name"] == "Ada Lovelace" and claims["email"] == admin.email
    assert claims["org"] == str(organization.public_id) and claims["org_name"] == organization.name
    assert (claims["product"], claims["product_name"]) == ("tracker", "Tracker")
    assert claims["environment"] == str(environment.public_id) and claims["admin"] is True
    assert claims["exp"] - claims["iat"] == LAUNCH_TICKET_SECONDS and claims["exp"] > time.time()
    assert len(claims["jti"]) >= 16
    # A kit token is something else: the ticket's audience keeps it from being exchanged as one.
    with pytest.raises(jwt.InvalidAudienceError):
        jwt.decode(ticket, secret.secret, algorithms=["HS256"], audience="flywheel-kit")


def test_a_member_who_is_not_an_admin_is_named_so_and_a_retired_secret_is_not_used(client, catalog):
    organization, _ = organization_on("standard")
    environment = workspace_ready(organization)
    retired = kit_secret_for("tracker")
    live = kit_secret_for("tracker")
    retired.retired_at = live.created_at
    retired.save()
    member = MembershipFactory(organization=organization, role=Membership.Role.MEMBER).user
    client.force_login(member)

    _, ticket = _ticket_of(client.get(reverse("builtin_workspace", args=[environment.public_id])))
    assert jwt.get_unverified_header(ticket)["kid"] == live.key_id
    assert jwt.decode(ticket, live.secret, algorithms=["HS256"], audience="flywheel-demo-launch")["admin"] is False


def test_without_a_kit_secret_the_workspace_stays_on_flywheel(client, catalog):
    organization, admin = organization_on("standard")
    environment = workspace_ready(organization)
    client.force_login(admin)
    page = client.get(reverse("builtin_workspace", args=[environment.public_id]))
    assert page.status_code == 200 and "ready since" in page.content.decode()


def test_a_workspace_being_prepared_or_a_suspended_product_shows_flywheels_page_not_the_product(client, catalog):
    organization, admin = organization_on("standard")
    kit_secret_for("tracker")
    environment = Environment.objects.get(organization=organization)
    client.force_login(admin)
    preparing = client.get(reverse("builtin_workspace", args=[environment.public_id]))
    assert preparing.status_code == 200 and "ticket=" not in preparing.get("Location", "")

    environment = workspace_ready(organization)
    Subscription.objects.filter(organization=organization).update(status=Subscription.Status.SUSPENDED)
    suspended = client.get(reverse("builtin_workspace", args=[environment.public_id]))
    assert suspended.status_code == 200 and "suspended" in suspended.content.decode().lower()


def test_someone_outside_the_organization_gets_nothing(client, catalog):
    organization, _ = organization_on("standard")
    environment = workspace_ready(organization)
    kit_secret_for("tracker")
    client.force_login(UserFactory())
    assert client.get(reverse("builtin_workspace", args=[environment.public_id])).status_code == 404
    client.logout()
    signed_out = client.get(reverse("builtin_workspace", args=[environment.public_id]))
    assert signed_out.status_code == 302 and "/accounts/login/" in signed_out["Location"]
