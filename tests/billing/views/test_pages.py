"""The billing pages over HTTP: billing overview, checkout with the exact price, payment
status, and the tenant wall."""

import re

from django.urls import reverse

from billing.models import Payment, Subscription
from billing.services import payments

from ...conftest import organization_on
from ...factories import MembershipFactory
from ..helpers import DECLINED_AT_CHARGE, OK_CARD


def _checkout_page(client, subscription, **params):
    return client.get(reverse("checkout", args=[subscription.public_id]), params)


def _pay(client, localstripe, subscription, number, **choice):
    page = _checkout_page(client, subscription, **choice).content.decode()
    client_secret = re.search(r'data-client-secret="([^"]+)"', page).group(1)
    confirmed = localstripe.enter_card(client_secret, number)  # what Stripe.js does in the browser
    return client.post(
        reverse("checkout", args=[subscription.public_id]),
        {**choice, "setup_intent": confirmed.get("id") or client_secret.split("_secret_")[0]},
    )


def test_admin_buys_the_trial_product_by_card(client, localstripe, trial_organization):
    organization, admin = trial_organization
    subscription = organization.subscriptions.get()
    client.force_login(admin)
    overview = client.get(reverse("billing")).content.decode()
    assert "Buy Tracker" in overview and "No card yet" in overview

    page = _checkout_page(client, subscription, edition="standard", seats="3", interval="month").content.decode()
    assert "USD 24.45" in page  # 3 seats x 8.15, shown before paying
    assert 'id="card-element"' in page
    quote = client.get(
        reverse("checkout", args=[subscription.public_id]), {"edition": "premium", "seats": "3", "interval": "year"},
        headers={"HX-Request": "true"},
    ).content.decode()
    assert "USD 480.00" in quote and "card-element" not in quote  # 3 x 160.00, a fragment

    response = _pay(client, localstripe, subscription, OK_CARD, edition="standard", seats="3", interval="month")
    assert response.status_code == 302
    payment = Payment.objects.get()
    assert response["Location"] == reverse("payment_status", args=[payment.public_id])
    assert "Charging your card" in client.get(response["Location"]).content.decode()
    payments.payment_charge(payment_id=payment.pk)  # the worker's job
    page = client.get(response["Location"]).content.decode()
    assert "Paid" in page and "Tracker Standard is active with 3 seats" in page
    overview = client.get(reverse("billing")).content.decode()
    assert "Visa ending 4242" in overview and payment.invoice.number in overview


def test_declined_charge_shows_the_banks_reason_and_offers_another_card(client, localstripe, trial_organization):
    organization, admin = trial_organization
    subscription = organization.subscriptions.get()
    client.force_login(admin)
    response = _pay(client, localstripe, subscription, DECLINED_AT_CHARGE, edition="standard", seats="2", interval="month")
    payment = Payment.objects.get()
    payments.payment_charge(payment_id=payment.pk)
    page = client.get(response["Location"]).content.decode()
    # localstripe's decline names no reason beyond card_declined: the generic sentence.
    assert "Your bank declined the charge." in page and "Try another card" in page and "card_declined" not in page
    assert Subscription.objects.get(pk=subscription.pk).status == Subscription.Status.TRIALING

    # "Try another card": the new card pays the same invoice, at the price already shown.
    another = re.search(r'id="try-another-card" href="([^"]+)"', page).group(1).replace("&amp;", "&")
    card_page = client.get(another).content.decode()
    assert f"pays invoice {payment.invoice.number}" in card_page and "USD 16.30" in card_page
    assert "failed on" in card_page and "Your bank declined the charge." in card_page  # why, before the new card
    client_secret = re.search(r'data-client-secret="([^"]+)"', card_page).group(1)
    confirmed = localstripe.enter_card(client_secret, OK_CARD)
    response = client.post(another, {"setup_intent": confirmed["id"], "invoice": str(payment.invoice.public_id)})
    retry = Payment.objects.exclude(pk=payment.pk).get()
    assert response["Location"] == reverse("payment_status", args=[retry.public_id])
    assert retry.invoice_id == payment.invoice_id and retry.amount_minor == 1630
    payments.payment_charge(payment_id=retry.pk)
    assert "Tracker Standard is active with 2 seats" in client.get(response["Location"]).content.decode()
    assert Subscription.objects.get(pk=subscription.pk).status == Subscription.Status.ACTIVE
    from billing.models import Invoice

    assert list(Invoice.objects.values_list("status", flat=True)) == ["paid"]  # nothing voided, no second bill
    # A paid invoice, or another organization's, cannot be "retried".
    assert client.get(another).status_code == 404
    stranger, stranger_admin = organization_on("standard")
    client.force_login(stranger_admin)
    assert client.get(another).status_code == 404


def test_bad_seat_count_is_explained_and_nothing_is_issued(client, localstripe, trial_organization):
    organization, admin = organization_on("standard", members=4)
    subscription = organization.subscriptions.get()
    client.force_login(admin)
    page = _checkout_page(client, subscription, edition="standard", seats="2", interval="month").content.decode()
    assert "uses 4 seats" in page and "buy at least 4" in page
    page = _checkout_page(client, subscription, edition="standard", seats="many", interval="month").content.decode()
    assert "buy at least 4" in page
    assert not Payment.objects.exists()


def test_billing_pages_are_walled_off(client, localstripe, catalog):
    acme, acme_admin = organization_on("standard")
    globex, globex_admin = organization_on("standard")
    acme_subscription = acme.subscriptions.get()
    client.force_login(acme_admin)
    _pay(client, localstripe, acme_subscription, OK_CARD, edition="standard", seats="1", interval="month")
    acme_payment = Payment.objects.get()

    client.force_login(globex_admin)
    assert _checkout_page(client, acme_subscription).status_code == 404
    assert client.post(reverse("checkout", args=[acme_subscription.public_id]), {"seats": "1"}).status_code == 404
    assert client.get(reverse("payment_status", args=[acme_payment.public_id])).status_code == 404
    assert acme.name not in client.get(reverse("billing")).content.decode()

    member = MembershipFactory(organization=acme).user  # not an admin
    client.force_login(member)
    assert _checkout_page(client, acme_subscription).status_code == 404


def test_admin_replaces_the_card_on_file(client, localstripe, trial_organization):
    organization, admin = trial_organization
    client.force_login(admin)
    assert "Add a card" in client.get(reverse("billing")).content.decode()
    page = client.get(reverse("card_update")).content.decode()
    client_secret = re.search(r'data-client-secret="([^"]+)"', page).group(1)
    confirmed = localstripe.enter_card(client_secret, OK_CARD)
    response = client.post(reverse("card_update"), {"setup_intent": confirmed["id"]})
    assert response.status_code == 302
    overview = client.get(reverse("billing")).content.decode()
    assert "Visa ending 4242" in overview and "Replace the card" in overview

    page = client.get(reverse("card_update")).content.decode()
    client_secret = re.search(r'data-client-secret="([^"]+)"', page).group(1)
    declined = localstripe.enter_card(client_secret, "4000000000000002")
    response = client.post(reverse("card_update"), {"setup_intent": client_secret.split("_secret_")[0]})
    assert response.status_code == 400 and "not confirmed" in response.content.decode()
    assert declined["error"]["message"] == "Your card was declined."
    assert "Visa ending 4242" in client.get(reverse("billing")).content.decode()  # the old card stays
    assert client.post(reverse("card_update"), {"setup_intent": "seti_someone_elses"}).status_code == 400

    member = MembershipFactory(organization=organization).user
    client.force_login(member)
    assert client.get(reverse("card_update")).status_code == 404
