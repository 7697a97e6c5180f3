from django.urls import reverse


def test_landing_shows_exact_prices(client, catalog):
    page = client.get(reverse("landing")).content.decode()
    assert "USD 8.15" in page  # tracker standard, 815 minor units
    assert "USD 20.38" in page  # service desk standard, 2038 minor units
    assert "USD 27.50" in page  # tracker enterprise, 2750 minor units


def test_a_landing_link_whose_edition_lost_its_trial_falls_back_to_the_default(catalog):
    from accounts.services import organization_create_for_signup, user_signup_record
    from catalog.models import Edition

    from ..factories import UserFactory

    user = UserFactory(email="late@late.example")
    user_signup_record(user=user, product_code="wiki", edition_code="premium")
    Edition.objects.filter(product__code="wiki", code="premium").update(trial_days=0)
    organization = organization_create_for_signup(user=user)
    subscription = organization.subscriptions.get()
    assert (subscription.product.code, subscription.edition.code) == ("wiki", "standard")


def test_landing_offers_no_trial_button_for_an_edition_without_one(client, catalog):
    from catalog.models import Edition

    Edition.objects.filter(product__code="wiki", code="premium").update(trial_days=0)
    page = client.get(reverse("landing")).content.decode()
    assert "product=wiki&amp;edition=premium" not in page
    assert "No free trial for this edition." in page
    response = client.get("/signup?product=wiki&edition=premium")
    assert response.status_code == 404
    assert "Wiki Premium has no free trial" in response.content.decode()
