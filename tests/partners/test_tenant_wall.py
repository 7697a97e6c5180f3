"""A partner without consent sees nothing of a customer: every partner page and action
(TENANT_WALL_CASES in conftest.py) answers an unlinked customer, another partner's customer, an
ended link, a pending invite and an id that exists nowhere with the same 404 page, never names
the customer, and writes nothing."""

from __future__ import annotations

import re

from billing.models import Invoice, Subscription
from partners.models import AuditEntry, PartnerLink, PartnerRequest, Quote

from .conftest import sign_in


def _main(html: str) -> str:
    """The page's <main>, without the CSRF token (it differs per answer)."""
    match = re.search(r"<main[^>]*>(.*)</main>", html, re.S)
    assert match, html[:500]
    return re.sub(r'name="csrfmiddlewaretoken" value="[^"]*"', "", match.group(1))


def _state() -> tuple:
    """Everything a partner action could write."""
    return (
        AuditEntry.objects.count(),
        sorted(PartnerLink.objects.values_list("pk", "status")),
        sorted(PartnerRequest.objects.values_list("pk", "status")),
        sorted(Quote.objects.values_list("pk", "status")),
        Invoice.objects.count(),
        sorted(Subscription.objects.values_list("pk", "status", "seat_limit", "edition_id", "billed_to_id")),
    )


def test_the_wall_holds(client, wall_world, wall_case):
    world = wall_world
    sign_in(client, world.partner.admin, world.partner.organization)
    pages = {}
    for target, (customer, _partner) in world.targets.items():
        path = world.path(wall_case, target)
        before = _state()
        response = getattr(client, wall_case.method)(path, wall_case.data)
        body = response.content.decode()
        assert response.status_code == 404, f"{target}: {path} answered {response.status_code}"
        assert wall_case.sentence in body, f"{target}: {path} does not say {wall_case.sentence!r}"
        if customer is not None:
            assert customer.name not in body, f"{target}: {path} names the customer"
        assert _state() == before, f"{target}: {path} wrote something"
        pages[target] = _main(body)
    assert len(set(pages.values())) == 1, "the refusals differ: " + ", ".join(pages)


def test_the_wall_lets_the_partner_reach_its_own_customer(client, wall_world, wall_case):
    world = wall_world
    sign_in(client, world.partner.admin, world.partner.organization)
    path = world.path(wall_case, "linked")
    response = getattr(client, wall_case.method)(path, wall_case.data)
    assert response.status_code != 404, f"{path} answered 404 for the partner's own customer"
