"""Prompts on Flywheel's own pages (/app/, /billing/, the workspace, the members page): seats
running out from 8 of 10, trial days left with Buy for the whole trial; admins get the action
with its price, members are told whom to ask. A Free edition is never offered "Add seats"."""

from datetime import timedelta

import pytest
import time_machine
from django.urls import reverse

from accounts import api_keys
from accounts.models import Invite, Membership
from common.money import money

from ...conftest import organization_on
from ..helpers import workspace_ready

pytestmark = pytest.mark.django_db

STANDARD_PRICE = f"Standard: {money(815, 'USD')} per seat a month"


def _pages(client, environment) -> dict[str, str]:
    pages = {}
    for name, args in (("home", []), ("billing", []), ("builtin_workspace", [environment.public_id]), ("members", [])):
        response = client.get(reverse(name, args=args))
        assert response.status_code == 200, (name, response.status_code)
        pages[name] = response.content.decode()
    return pages


def _member(organization):
    return Membership.objects.filter(organization=organization, role="member").select_related("user").first().user


@pytest.mark.parametrize("members", [8, 9])
def test_a_free_edition_near_its_seat_limit_warns_with_the_upgrade_one_click_away(client, catalog, members):
    organization, admin = organization_on("free", members=members)
    environment = workspace_ready(organization)
    subscription = organization.subscriptions.get()
    upgrade = reverse("checkout", args=[subscription.public_id]) + "?edition=standard"
    client.force_login(admin)
    for name, page in _pages(client, environment).items():
        assert f"{members} of 10 seats used in Tracker Free." in page, name
        assert 'class="banner warning"' in page, name
        assert f'href="{upgrade}">Move to Tracker Standard</a>' in page and STANDARD_PRICE in page, name
        assert "Add seats" not in page, name
    client.force_login(_member(organization))
    for name, page in _pages(client, environment).items():
        assert f"{members} of 10 seats used in Tracker Free." in page, name
        assert f"Ask your admin ({admin.email}) to move to Tracker Standard." in page, name
        assert upgrade not in page, name


def test_seven_of_ten_seats_says_nothing(client, catalog):
    organization, admin = organization_on("free", members=7)
    environment = workspace_ready(organization)
    client.force_login(admin)
    for name, page in _pages(client, environment).items():
        assert "seats used in Tracker" not in page, name  # no banner (the cards say "7 of 10 seats used")


def test_ten_of_ten_free_seats_is_said_everywhere_and_the_members_error_links_the_upgrade(client, catalog):
    organization, admin = organization_on("free", members=10)
    environment = workspace_ready(organization)
    subscription = organization.subscriptions.get()
    upgrade = reverse("checkout", args=[subscription.public_id]) + "?edition=standard"
    client.force_login(admin)
    for name, page in _pages(client, environment).items():
        assert "10 of 10 seats used in Tracker Free. Nobody else can join or be invited." in page, name
        assert 'class="banner danger"' in page and f'href="{upgrade}"' in page, name

    response = client.post(reverse("members"), {"email": "eleventh@example.com", "role": "member"})
    page = response.content.decode()
    assert response.status_code == 400
    assert "No invitation was sent. Tracker Free allows 10 users" in page
    assert "To get more seats, move to Tracker Standard (up to 100 users)" in page
    assert "an admin can" not in page
    assert 'id="seat-limit-action"' in page and f'href="{upgrade}">Move to Tracker Standard</a>' in page
    assert not Invite.objects.filter(email="eleventh@example.com").exists()


def test_trial_days_left_and_buy_are_shown_for_the_whole_trial(client, catalog):
    organization, admin = organization_on("standard")
    environment = workspace_ready(organization)
    subscription = organization.subscriptions.get()
    checkout = reverse("checkout", args=[subscription.public_id])
    with time_machine.travel(subscription.trial_ends_at - timedelta(days=11, hours=12), tick=False):
        client.force_login(admin)
        pages = _pages(client, environment)
        for name in ("home", "billing"):
            assert "12 days left in your Tracker Standard trial" in pages[name], name
            assert f'href="{checkout}">Buy Tracker</a>' in pages[name] and STANDARD_PRICE in pages[name], name
    with time_machine.travel(subscription.trial_ends_at - timedelta(hours=5), tick=False):
        client.force_login(admin)
        home = client.get(reverse("home")).content.decode()
        assert "5 hours left in your Tracker Standard trial" in home and 'class="banner danger"' in home


def test_a_member_is_told_whom_to_ask_about_the_trial(client, catalog):
    organization, admin = organization_on("standard", members=2)
    environment = workspace_ready(organization)
    client.force_login(_member(organization))
    pages = _pages(client, environment)
    for name in ("home", "billing"):
        assert "14 days left in your Tracker Standard trial" in pages[name], name
        assert f"Ask your admin ({admin.email}) to buy Tracker before it ends." in pages[name], name
        assert "Buy Tracker</a>" not in pages[name], name


def test_the_api_prompt_of_a_free_edition_offers_the_bigger_edition_not_seats(client, catalog):
    organization, admin = organization_on("free", members=10)
    subscription = organization.subscriptions.get()
    _, raw = api_keys.api_key_create(organization=organization, actor=admin, name="servers")
    response = client.get(
        "/api/v1/prompts", {"user": str(admin.public_id)}, headers={"Authorization": f"Bearer {raw}"}
    )
    [prompt] = response.json()
    assert prompt["cta_label"] == "Move to Standard"
    assert prompt["cta_url"].endswith(
        reverse("checkout", args=[subscription.public_id]) + f"?edition=standard&organization={organization.public_id}"
    )
    assert "Add seats" not in prompt["body"] and money(815, "USD") in prompt["body"]
    member = Membership.objects.filter(organization=organization, role="member").first().user
    response = client.get(
        "/api/v1/prompts", {"user": str(member.public_id)}, headers={"Authorization": f"Bearer {raw}"}
    )
    [for_member] = response.json()
    assert "add seats" not in for_member["body"] and for_member["cta_label"] == ""
