"""Money on staff pages is money with its currency, never bare minor units or a bare amount."""

from __future__ import annotations

from django.urls import reverse

from ..factories import UserFactory


def test_the_sales_threshold_is_shown_with_its_currency(client, catalog, settings):
    settings.SALES_THRESHOLD_MINOR = 1_000_000
    client.force_login(UserFactory(is_staff=True))

    page = client.get(reverse("sales_leads")).content.decode()

    assert "add up to at least USD 10,000.00" in page
