"""Changing edition shows the exact price (new edition, credit for the old one, total) before
anything is charged; one click confirms it, once; a stale price is refused with the new one."""

from datetime import timedelta

import time_machine
from django.urls import reverse
from django.utils import timezone

from billing.models import Invoice, Payment, Subscription
from billing.services import payments, subscriptions

from ..helpers import paid_organization, visible_text


def _preview(client, subscription, edition="premium"):
    response = client.get(reverse("change_edition", args=[subscription.public_id]), {"edition": edition})
    assert response.status_code == 302 and "quote=" in response["Location"]  # a key of its own
    return response["Location"], client.get(response["Location"])


def test_upgrade_shows_the_prorated_price_credit_and_total_before_charging(client, localstripe, catalog):
    organization, admin, subscription = paid_organization(localstripe, seats=5)
    client.force_login(admin)
    start = subscription.current_period_start
    half = start + (subscription.current_period_end - start) / 2
    with time_machine.travel(half, tick=False):
        client.force_login(admin)  # a session outlives no half month
        # The billing page's old form charged at once; it now leads to the price.
        old_way = client.post(
            reverse("subscription_manage", args=[subscription.public_id]), {"action": "change_edition", "edition": "premium"}
        )
        assert old_way["Location"].startswith(reverse("change_edition", args=[subscription.public_id]))
        url, page = _preview(client, subscription)
        assert page["Cache-Control"] and "no-store" in page["Cache-Control"]
        text = visible_text(page.content.decode())
        quote = subscriptions.edition_change_quote(subscription=subscription, edition=_premium())
        assert quote.charge_minor == 4000 and quote.credit_minor == 2038  # half a month: 5 x 16.00 / 2, 5 x 8.15 / 2
        assert "Premium: 5 seats × USD 16.00 per month, prorated USD 40.00" in text
        assert "Credit for the unused time on Standard: 5 seats × USD 8.15 per month, prorated -USD 20.38" in text
        assert "Total charged now USD 19.62" in text
        assert "Pay USD 19.62 and move to Premium" in text
        assert not Invoice.objects.filter(kind=Invoice.Kind.UPGRADE).exists()  # nothing charged by looking

        token = page.context["quote"].token
        key = page.context["request_key"]
        form = {"edition": "premium", "request_key": key, "quote_token": token}
        first = client.post(url, form)
        second = client.post(url, form)  # a double click
    payment = Payment.objects.get(invoice__kind=Invoice.Kind.UPGRADE)
    assert first["Location"] == second["Location"] == reverse("payment_status", args=[payment.public_id])
    assert payment.amount_minor == 1962  # exactly what was shown
    payments.payment_charge(payment_id=payment.pk)
    assert Subscription.objects.get(pk=subscription.pk).edition.code == "premium"
    lines = [line.description for line in payment.invoice.lines.order_by("pk")]
    assert lines[0].startswith("Tracker Premium, 5 seats × USD 16.00/month, prorated for ")
    assert lines[1].startswith("Unused time on Tracker Standard, 5 seats × USD 8.15/month, prorated for ")

    # Back to the price page: it says the change is paid for, with no button to pay again.
    again = visible_text(client.get(url).content.decode())
    assert "Tracker moved to Premium on" in again and f"View invoice {payment.invoice.number}" in again
    assert "Pay USD" not in again


def test_a_stale_price_is_refused_and_nothing_changes(client, localstripe, catalog):
    organization, admin, subscription = paid_organization(localstripe, seats=5)
    client.force_login(admin)
    url, page = _preview(client, subscription)
    form = {"edition": "premium", "request_key": page.context["request_key"], "quote_token": page.context["quote"].token}
    with time_machine.travel(timezone.now() + timedelta(minutes=16), tick=False):
        response = client.post(url, form)
    assert response.status_code == 400
    text = visible_text(response.content.decode())
    assert "This price was shown more than 15 minutes ago" in text
    assert "Pay USD" in text  # the new price, to confirm again
    assert not Invoice.objects.filter(kind=Invoice.Kind.UPGRADE).exists() and Payment.objects.count() == 1
    assert Subscription.objects.get(pk=subscription.pk).edition.code == "standard"

    # The seats changed since the price was shown: refused, with the new price.
    url, page = _preview(client, subscription)
    form = {"edition": "premium", "request_key": page.context["request_key"], "quote_token": page.context["quote"].token}
    Subscription.objects.filter(pk=subscription.pk).update(seat_limit=9)
    response = client.post(url, form)
    assert response.status_code == 400
    assert "The price has changed since it was shown" in visible_text(response.content.decode())
    assert not Invoice.objects.filter(kind=Invoice.Kind.UPGRADE).exists()

    # A made-up price is no price at all.
    response = client.post(url, {**form, "quote_token": "forged"})
    assert "Open the price first, then confirm it." in visible_text(response.content.decode())
    assert not Invoice.objects.filter(kind=Invoice.Kind.UPGRADE).exists()


def test_a_downgrade_says_when_and_what_it_will_cost(client, localstripe, catalog):
    organization, admin, subscription = paid_organization(localstripe, seats=5)
    client.force_login(admin)
    url, page = _preview(client, subscription, edition="free")
    text = visible_text(page.content.decode())
    assert "Nothing to pay now" in text and "then moves to Free, which is free" in text
    response = client.post(url, {"edition": "free", "request_key": page.context["request_key"]})
    assert response["Location"] == reverse("billing")
    assert Subscription.objects.get(pk=subscription.pk).pending_edition.code == "free"
    assert "already moves to Free on" in visible_text(client.get(url).content.decode())


def _premium():
    from catalog.selectors import edition_get

    return edition_get(product_code="tracker", edition_code="premium")
