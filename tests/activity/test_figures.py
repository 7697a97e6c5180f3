"""DAU, WAU, MAU and stickiness from the daily rollups, worked out by hand: whole UTC days
ending on the day asked for, a person counted once per product across organizations, one
organization's figures from its own activity only, events that do not count left out; and the
staff page that shows them with their definitions."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
import time_machine
from django.urls import reverse

from activity.models import ActivityDay
from activity.selectors import usage_figures
from catalog.models import Product

from ..conftest import organization_on
from ..factories import MembershipFactory, UserFactory

AS_OF = date(2026, 12, 5)


def _active(organization, user, product_code, *days_ago, counting=True):
    product = Product.objects.get(code=product_code)
    for ago in days_ago:
        ActivityDay.objects.create(
            organization=organization, user=user, product=product, day=AS_OF - timedelta(days=ago),
            events=2, active_events=2 if counting else 0,
        )


@pytest.mark.django_db
def test_each_window_counts_people_active_in_its_whole_days(catalog):
    acme, ana = organization_on("standard")
    globex, gil = organization_on("standard")
    both = UserFactory()
    MembershipFactory(organization=acme, user=both)
    MembershipFactory(organization=globex, user=both)
    _active(acme, ana, "tracker", 0, 1, 2)             # DAU, WAU, MAU; 3 days
    _active(globex, gil, "tracker", 6)                  # WAU (7th day back), MAU
    _active(globex, gil, "tracker", 7)                  # already counted; the 8th day back is outside WAU
    _active(acme, both, "tracker", 29)                  # MAU only: the 30th day back
    _active(globex, both, "tracker", 29)                # the same person in a second organization: once
    _active(acme, ana, "tracker", 30)                   # the 31st day back: outside every window
    _active(acme, ana, "tracker", -1)                   # after as_of: not yet counted
    _active(acme, gil, "tracker", 0, counting=False)    # events of names that do not count
    _active(acme, ana, "wiki", 3)                       # another product

    tracker, wiki, servicedesk = usage_figures(as_of=AS_OF)
    assert (tracker.product.code, tracker.dau, tracker.wau, tracker.mau) == ("tracker", 1, 2, 3)
    # Person-days in the 30 days: ana 3, gil 2, both 1 (once, though in two organizations) = 6.
    assert tracker.average_dau == pytest.approx(6 / 30)
    assert tracker.stickiness == pytest.approx(6 / 30 / 3)
    assert (wiki.dau, wiki.wau, wiki.mau) == (0, 1, 1)
    assert (servicedesk.mau, servicedesk.stickiness) == (0, None)

    acme_tracker = usage_figures(as_of=AS_OF, organization_id=acme.pk)[0]
    assert (acme_tracker.dau, acme_tracker.wau, acme_tracker.mau) == (1, 1, 2)  # ana, and both's acme activity


@pytest.mark.django_db
def test_the_staff_page_shows_each_figure_with_its_definition(client, catalog):
    acme, ana = organization_on("standard")
    _active(acme, ana, "tracker", 0, 1)
    staff = UserFactory(is_staff=True)
    client.force_login(staff)
    with time_machine.travel(datetime(2026, 12, 6, 9, 0, tzinfo=UTC), tick=False):
        page = client.get(reverse("staff_usage"))
    assert page.status_code == 200
    html = page.content.decode()
    assert "up to the end of Saturday 5 December 2026 (UTC)" in html
    assert "<th scope=\"row\">Tracker</th><td>1</td><td>1</td><td>1</td>" in html
    assert "People active on at least one of the 30 days ending 5 Dec 2026." in html
    assert "7 %" in html  # stickiness: 2 person-days / 30 / 1 person
    client.force_login(ana)
    assert client.get(reverse("staff_usage")).status_code in (302, 403, 404)
