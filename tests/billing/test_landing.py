from django.urls import reverse


def test_landing_shows_exact_prices(client, catalog):
    page = client.get(reverse("landing")).content.decode()
    assert "USD 8.15" in page  # tracker standard, 815 minor units
    assert "USD 20.38" in page  # service desk standard, 2038 minor units
    assert "USD 27.50" in page  # tracker enterprise, 2750 minor units
