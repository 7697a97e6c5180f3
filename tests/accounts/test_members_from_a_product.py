"""The members page opened from a product (the kit's invite nudge, or its email): it works in
the organization the link names, if the person is a member of it; the invite form carries
`return_to`, the page after sending offers "Back to <product>", and only a product's origin
counts (billing/views/return_to.py)."""

from __future__ import annotations

import re
from urllib.parse import quote

import pytest
from django.urls import reverse

from accounts.models import Invite, Membership

from ..conftest import organization_on
from ..factories import MembershipFactory

pytestmark = pytest.mark.django_db

PRODUCT_PAGE = "http://127.0.0.1:8001/w/4a7f2c3e-0000-4000-8000-000000000001/"
BACK = f'<a class="button" id="return-to" href="{PRODUCT_PAGE}">Back to Tracker</a>'


@pytest.fixture(autouse=True)
def demo_product_origin(settings):
    settings.DEMO_PRODUCT_URL = "http://127.0.0.1:8001"


def test_the_invite_from_a_product_page_offers_the_way_back(client, trial_organization):
    organization, admin = trial_organization
    client.force_login(admin)

    page = client.get(reverse("members"), {"return_to": PRODUCT_PAGE}).content.decode()
    assert BACK in page
    assert f'<input type="hidden" name="return_to" value="{PRODUCT_PAGE}">' in page

    sent = client.post(reverse("members"), {"email": "grace@example.org", "role": "member", "return_to": PRODUCT_PAGE})
    assert sent.status_code == 302
    assert sent["Location"] == f"{reverse('members')}?return_to={quote(PRODUCT_PAGE, safe='')}"
    after = client.get(sent["Location"]).content.decode()
    assert "Invitation sent to grace@example.org." in after and BACK in after
    assert Invite.objects.filter(organization=organization, email="grace@example.org").exists()


def test_a_refused_invite_keeps_the_way_back(client, trial_organization):
    _, admin = trial_organization
    client.force_login(admin)
    refused = client.post(reverse("members"), {"email": "nope", "role": "member", "return_to": PRODUCT_PAGE})
    assert refused.status_code == 400
    assert BACK in refused.content.decode()
    assert not Invite.objects.exists()


def test_an_address_that_is_not_a_products_is_ignored(client, trial_organization):
    _, admin = trial_organization
    client.force_login(admin)
    for address in ("https://evil.example/w/phish/", "javascript:alert(1)", "//evil.example/", "/billing/"):
        page = client.get(reverse("members"), {"return_to": address}).content.decode()
        assert 'id="return-to"' not in page and 'name="return_to"' not in page, address
    plain = client.post(reverse("members"), {"email": "ada@example.org", "role": "member"})
    assert plain["Location"] == reverse("members")


def test_the_ways_to_more_seats_and_to_buy_keep_the_way_back(client, catalog):
    organization, admin = organization_on("free", members=10)
    client.force_login(admin)
    refused = client.post(reverse("members"), {"email": "grace@example.org", "role": "member", "return_to": PRODUCT_PAGE})
    assert refused.status_code == 400
    action = re.search(r'<p class="row" id="seat-limit-action"><a class="button" href="([^"]+)">', refused.content.decode())
    assert action is not None and action.group(1).endswith(f"return_to={quote(PRODUCT_PAGE, safe='')}")
    assert not Invite.objects.filter(organization=organization).exists()


def test_the_trial_banner_keeps_the_way_back(client, trial_organization):
    _, admin = trial_organization
    client.force_login(admin)
    page = client.get(reverse("members"), {"return_to": PRODUCT_PAGE}).content.decode()
    buy = re.search(r'<a class="button" href="([^"]+)">Buy Tracker</a>', page)
    assert buy is not None and f"return_to={quote(PRODUCT_PAGE, safe='')}" in buy.group(1)


def test_the_link_works_in_the_organization_it_names(client, catalog):
    """An admin of two organizations, working in the second on Flywheel, follows the first's
    nudge: the page, and so the invitation, are the first's."""
    first, admin = organization_on("standard")
    second, _ = organization_on("standard")
    MembershipFactory(organization=second, user=admin, role=Membership.Role.ADMIN)
    client.force_login(admin)
    client.post(reverse("organization_switch", args=[second.public_id]))
    assert client.get(reverse("members")).context["organization"] == second

    link = client.get(reverse("members"), {"organization": str(first.public_id), "return_to": PRODUCT_PAGE})
    assert link.status_code == 302
    assert link["Location"] == f"{reverse('members')}?return_to={quote(PRODUCT_PAGE, safe='')}"
    page = client.get(link["Location"])
    assert page.context["organization"] == first and f"Members of {first.name}" in page.content.decode()
    client.post(reverse("members"), {"email": "grace@example.org", "role": "member"})
    assert Invite.objects.get(email="grace@example.org").organization == first


def test_an_organization_the_person_is_not_in_is_ignored(client, catalog):
    mine, admin = organization_on("standard")
    other, _ = organization_on("standard")
    client.force_login(admin)
    for named in (str(other.public_id), "not-a-uuid"):
        link = client.get(reverse("members"), {"organization": named})
        assert link["Location"] == reverse("members")
        assert client.get(link["Location"]).context["organization"] == mine, named
