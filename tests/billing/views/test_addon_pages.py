"""The add-on pages over HTTP: the billing page's Add-ons section (admin and member), the
confirm page with the exact price and one button (what is shown is what is charged, a double
click charges once, Back after paying says so), try, remove and keep, and the tenant wall."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from billing.models import AddOnSubscription, Invoice, Payment, Subscription, TrainingPack
from billing.services import payments
from catalog.models import AddOn
from common.money import money

from ...conftest import organization_on
from ..factories import AddOnSubscriptionFactory, InvoiceFactory
from ..helpers import DECLINED_AT_CHARGE, card_set_up, paid_organization, visible_text

CHECKOUT_AT = datetime(2026, 12, 6, 10, 0, tzinfo=UTC)
BUY_AT = datetime(2026, 12, 6, 14, 5, tzinfo=UTC)


def _addon(code: str, product: str = "tracker") -> AddOn:
    return AddOn.objects.get(product__code=product, code=code)


def _confirm_page(client, subscription, code: str, **params):
    """The confirm page as an admin reaches it: the address gains its quote key first."""
    response = client.get(reverse("addon_buy", args=[subscription.public_id, code]), params)
    assert response.status_code == 302 and "quote=" in response["Location"], response
    return response["Location"], client.get(response["Location"])


def _confirm(client, url, page):
    return client.post(url, {"request_key": page.context["request_key"], "quote_token": page.context["quote"].token})


@pytest.fixture
def paid(localstripe, catalog):
    """Tracker Standard, 5 seats, paid by card on CHECKOUT_AT, with a member besides the admin."""
    with time_machine.travel(CHECKOUT_AT, tick=False):
        organization, admin, subscription = paid_organization(localstripe, seats=5, members=2)
    return organization, admin, subscription


def test_billing_page_lists_each_add_on_with_its_price_and_action(client, paid):
    organization, admin, subscription = paid
    client.force_login(admin)
    with time_machine.travel(BUY_AT, tick=False):
        page = client.get(reverse("billing"))
    html = page.content.decode()
    section = visible_text(html.split('id="addons-tracker"', 1)[1].split("</ul>", 1)[0])
    assert "GitHub integration USD 1.50 per seat per month" in section
    assert "Premium support USD 99.00 per month" in section
    assert "Tracker training pack USD 500.00 once" in section
    assert "Try free for 14 days" in section and "Add Premium support" in section and "Buy a pack" in section
    assert f'href="{reverse("addon_buy", args=[subscription.public_id, "premium-support"])}"' in html


def test_a_member_sees_the_add_ons_state_but_no_action(client, paid):
    organization, admin, subscription = paid
    member = organization.memberships.exclude(user=admin).get().user
    client.force_login(member)
    html = client.get(reverse("billing")).content.decode()
    section = html.split('id="addons-tracker"', 1)[1].split("</ul>", 1)[0]
    assert "Premium support" in section and "USD 99.00 per month" in section
    assert "addon-actions" not in section and "<form" not in section and "Add Premium support" not in section
    response = client.get(reverse("addon_buy", args=[subscription.public_id, "premium-support"]))
    assert response.status_code == 404


def test_free_edition_is_told_which_edition_an_add_on_needs(client, catalog):
    organization, admin = organization_on("free")
    client.force_login(admin)
    text = visible_text(client.get(reverse("billing")).content.decode())
    assert "Premium support needs Tracker Standard or above; you are on Free." in text


def test_the_price_shown_is_the_price_charged_and_a_double_click_charges_once(client, paid):
    organization, admin, subscription = paid
    client.force_login(admin)
    with time_machine.travel(BUY_AT, tick=False):
        url, page = _confirm_page(client, subscription, "premium-support")
        assert "no-store" in page["Cache-Control"]
        text = visible_text(page.content.decode())
        quote = page.context["quote"]
        assert "USD 99.00 per month, prorated for the 31 days left in this period, until 6 Jan 2027." in text, text
        assert "From the renewal on 6 Jan 2027, Premium support costs USD 99.00 per month" in text
        shown = money(quote.amount_minor, "USD")
        assert f"Pay {shown} and add Premium support" in text and "Charged now to Visa ending 4242." in text
        first = _confirm(client, url, page)
        second = _confirm(client, url, page)  # the double click
    payment = Payment.objects.get(invoice__kind=Invoice.Kind.ADDON)
    assert first["Location"] == second["Location"] == reverse("payment_status", args=[payment.public_id])
    assert payment.amount_minor == quote.amount_minor == payment.invoice.total_minor
    payments.payment_charge(payment_id=payment.pk)
    landed = visible_text(client.get(first["Location"]).content.decode())
    assert "Paid" in landed and "Premium support is added to Tracker." in landed
    assert AddOnSubscription.objects.get(subscription=subscription).status == AddOnSubscription.Status.ACTIVE

    back = visible_text(client.get(url).content.decode())  # Back, after paying
    assert f"Premium support was added on 6 Dec 2026 for {shown}. View invoice {payment.invoice.number}" in back
    assert "Pay USD" not in back
    fresh = visible_text(_confirm_page(client, subscription, "premium-support")[1].content.decode())
    assert "Premium support is already on Tracker, since" in fresh and "Pay USD" not in fresh
    billing = visible_text(client.get(reverse("billing")).content.decode())
    assert "Active Since 6 Dec 2026; renews with Tracker on 6 Jan 2027." in billing and "Remove at period end" in billing
    assert Invoice.objects.filter(kind=Invoice.Kind.ADDON).count() == 1


def test_per_seat_add_on_is_priced_for_every_seat(client, paid):
    organization, admin, subscription = paid
    client.force_login(admin)
    with time_machine.travel(BUY_AT, tick=False):
        url, page = _confirm_page(client, subscription, "github")
    text = visible_text(page.content.decode())
    assert "5 seats × USD 1.50 per seat per month, prorated for the 31 days left in this period, until 6 Jan 2027." in text
    assert "costs USD 7.50 per month (5 seats × USD 1.50)" in text
    assert page.context["quote"].quantity == 5

    # Seats removed at renewal: the renewal's price and its breakdown both count the seats left.
    Subscription.objects.filter(pk=subscription.pk).update(pending_seat_limit=3)
    with time_machine.travel(BUY_AT, tick=False):
        url, page = _confirm_page(client, subscription, "github")
    text = visible_text(page.content.decode())
    assert "5 seats × USD 1.50 per seat per month, prorated" in text
    assert "costs USD 4.50 per month (3 seats × USD 1.50)" in text


def test_a_declined_card_is_explained_and_grants_nothing(client, paid, localstripe):
    organization, admin, subscription = paid
    card_set_up(localstripe, organization, admin, DECLINED_AT_CHARGE)
    client.force_login(admin)
    url, page = _confirm_page(client, subscription, "premium-support")
    response = _confirm(client, url, page)
    payment = Payment.objects.get(invoice__kind=Invoice.Kind.ADDON)
    payments.payment_charge(payment_id=payment.pk)
    landed = visible_text(client.get(response["Location"]).content.decode())
    assert "Not paid" in landed and "Your bank declined the charge." in landed
    assert not AddOnSubscription.objects.filter(subscription=subscription).exists()
    back = visible_text(client.get(url).content.decode())
    assert "the card was not charged, and Premium support was not added. Your bank declined the charge." in back


def test_try_remove_and_keep_from_the_billing_page(client, paid):
    organization, admin, subscription = paid
    client.force_login(admin)
    response = client.post(reverse("addon_trial", args=[subscription.public_id, "github"]), follow=True)
    text = visible_text(response.content.decode())
    assert "Your GitHub integration trial has started: it ends on" in text and "nothing is charged" in text
    assert "Free trial Ends in 14 days" in text
    trial = AddOnSubscription.objects.get(subscription=subscription)
    assert trial.status == AddOnSubscription.Status.TRIALING

    again = client.post(reverse("addon_trial", args=[subscription.public_id, "github"]), follow=True)
    assert "already has GitHub integration" in visible_text(again.content.decode())

    ended = client.post(reverse("addon_manage", args=[trial.public_id]), {"action": "remove"}, follow=True)
    assert "GitHub integration is removed from Tracker." in visible_text(ended.content.decode())
    trial.refresh_from_db()
    assert trial.status == AddOnSubscription.Status.CANCELED

    url, page = _confirm_page(client, subscription, "premium-support")
    payment_url = _confirm(client, url, page)["Location"]
    payments.payment_charge(payment_id=Payment.objects.get(invoice__kind=Invoice.Kind.ADDON).pk)
    assert client.get(payment_url).status_code == 200
    support = AddOnSubscription.objects.get(subscription=subscription, addon__code="premium-support")
    removed = client.post(reverse("addon_manage", args=[support.public_id]), {"action": "remove"}, follow=True)
    text = visible_text(removed.content.decode())
    assert "Premium support stays until" in text and "and is not renewed" in text
    assert "Removal scheduled Removed on" in text and "Keep Premium support" in text
    kept = client.post(reverse("addon_manage", args=[support.public_id]), {"action": "keep"}, follow=True)
    assert "Premium support will renew with Tracker as before." in visible_text(kept.content.decode())
    support.refresh_from_db()
    assert not support.cancel_at_period_end

    odd = client.post(reverse("addon_manage", args=[support.public_id]), {"action": "explode"}, follow=True)
    assert odd.status_code == 200 and "Choose to remove the add-on or to keep it." in visible_text(odd.content.decode())


def test_another_organizations_admin_gets_404_everywhere(client, paid, catalog):
    organization, admin, subscription = paid
    client.force_login(admin)
    client.post(reverse("addon_trial", args=[subscription.public_id, "github"]))
    trial = AddOnSubscription.objects.get(subscription=subscription)
    other_organization, other_admin = organization_on("standard")
    client.force_login(other_admin)
    assert client.get(reverse("addon_buy", args=[subscription.public_id, "premium-support"])).status_code == 404
    assert client.post(reverse("addon_trial", args=[subscription.public_id, "github"])).status_code == 404
    assert client.post(reverse("addon_manage", args=[trial.public_id]), {"action": "remove"}).status_code == 404
    trial.refresh_from_db()
    assert trial.status == AddOnSubscription.Status.TRIALING


def test_unknown_add_on_is_404_and_a_stale_form_is_refused_with_a_sentence(client, paid):
    organization, admin, subscription = paid
    client.force_login(admin)
    assert client.get(reverse("addon_buy", args=[subscription.public_id, "no-such-thing"])).status_code == 404
    url, page = _confirm_page(client, subscription, "premium-support")
    response = client.post(url, {"request_key": page.context["request_key"], "quote_token": "forged"})
    assert response.status_code == 400
    assert 'id="addon-error"' in response.content.decode()
    assert not Invoice.objects.filter(kind=Invoice.Kind.ADDON).exists()


def test_a_training_pack_says_what_it_gives_and_until_when(client, paid):
    organization, admin, subscription = paid
    client.force_login(admin)
    with time_machine.travel(BUY_AT, tick=False):
        url, page = _confirm_page(client, subscription, "training")
        text = visible_text(page.content.decode())
        assert "USD 500.00, once: 10 course credits, to use by 6 Dec 2027." in text
        assert "Pay USD 500.00 and add Tracker training pack" in text
        response = _confirm(client, url, page)
    payment = Payment.objects.get(invoice__kind=Invoice.Kind.ADDON)
    assert payment.amount_minor == 50000
    payments.payment_charge(payment_id=payment.pk)
    landed = visible_text(client.get(response["Location"]).content.decode())
    assert "10 training credits added: assign colleagues to courses" in landed
    assert TrainingPack.objects.get(organization=organization).credits == 10


def test_purchase_order_customer_adds_it_on_terms(client, paid):
    organization, admin, subscription = paid
    account = organization.billing_account
    account.collection_method = account.Collection.INVOICE
    account.po_number = "PO-7781"
    account.net_terms_days = 30
    account.save()
    client.force_login(admin)
    url, page = _confirm_page(client, subscription, "premium-support")
    text = visible_text(page.content.decode())
    assert "Add Premium support: invoiced to PO PO-7781, due in 30 days" in text
    response = _confirm(client, url, page)
    assert response.status_code == 302
    invoice = Invoice.objects.get(kind=Invoice.Kind.ADDON)
    assert invoice.po_number == "PO-7781" and not invoice.payments.exists()
    billing = visible_text(client.get(response["Location"]).content.decode())
    assert f"Premium support is added: invoice {invoice.number} goes to PO PO-7781" in billing
    assert AddOnSubscription.objects.get(subscription=subscription).status == AddOnSubscription.Status.ACTIVE


def test_return_to_carries_the_admin_back_to_the_product(client, paid, settings):
    settings.DEMO_PRODUCT_URL = "http://127.0.0.1:8001"  # the product's origin
    product_page = "http://127.0.0.1:8001/w/4a7f2c3e-0000-4000-8000-000000000001/"
    organization, admin, subscription = paid
    client.force_login(admin)
    url, page = _confirm_page(client, subscription, "premium-support", return_to=product_page)
    html = page.content.decode()
    assert "return_to=" in url and f'name="return_to" value="{product_page}"' in html and "Back to Tracker" in html
    response = _confirm(client, url, page)
    payment = Payment.objects.get(invoice__kind=Invoice.Kind.ADDON)
    assert response["Location"].startswith(reverse("payment_status", args=[payment.public_id]) + "?return_to=")
    payments.payment_charge(payment_id=payment.pk)
    landed = client.get(response["Location"]).content.decode()
    assert f'id="return-to" href="{product_page}"' in landed


def test_added_seats_price_each_per_seat_add_on_on_the_same_page(client, paid):
    organization, admin, subscription = paid
    AddOnSubscriptionFactory(subscription=subscription, addon=_addon("github"))
    client.force_login(admin)
    with time_machine.travel(BUY_AT, tick=False):
        response = client.get(reverse("add_seats", args=[subscription.public_id]), {"seats": "2"})
        page = client.get(response["Location"])
    quote = page.context["quote"]
    text = visible_text(page.content.decode())
    line = quote.addon_lines[0]
    assert f"GitHub integration: 2 seats × USD 1.50, prorated {money(line.amount_minor, 'USD')}" in text
    assert f"Total charged now {money(quote.amount_minor, 'USD')}" in text
    assert quote.amount_minor == quote.seats_amount_minor + line.amount_minor
    assert f"Pay {money(quote.amount_minor, 'USD')} and add 2 seats" in text


def test_a_downgrade_says_which_add_ons_it_removes_and_why_before_its_button(client, paid):
    organization, admin, subscription = paid
    AddOnSubscriptionFactory(subscription=subscription, addon=_addon("premium-support"))
    client.force_login(admin)
    with time_machine.travel(BUY_AT, tick=False):
        response = client.get(reverse("change_edition", args=[subscription.public_id]), {"edition": "free"})
        page = client.get(response["Location"])
    text = visible_text(page.content.decode())
    assert "Moving to Free also removes Premium support on 6 Jan 2027: Premium support needs Tracker Standard or above; it is not renewed." in text
    assert "Move to Free on 6 Jan 2027 and remove 1 add-on" in text
    assert text.index("also removes Premium support") < text.index("Move to Free on 6 Jan 2027 and remove")


def test_suspended_add_ons_say_why(client, paid):
    organization, admin, subscription = paid
    state = AddOnSubscriptionFactory(subscription=subscription, addon=_addon("premium-support"))
    client.force_login(admin)
    Subscription.objects.filter(pk=subscription.pk).update(status=Subscription.Status.SUSPENDED)
    text = visible_text(client.get(reverse("billing")).content.decode())
    assert "Suspended with Tracker It works again as soon as Tracker's open invoice is paid." in text

    Subscription.objects.filter(pk=subscription.pk).update(status=Subscription.Status.ACTIVE)
    with transaction.atomic():
        invoice = InvoiceFactory(
            subscription=subscription, kind=Invoice.Kind.ADDON, addon=state.addon, total_minor=9900,
            po_number="PO-1", due_at=timezone.now() - timedelta(days=3),
        )
    AddOnSubscription.objects.filter(pk=state.pk).update(status=AddOnSubscription.Status.SUSPENDED)
    text = visible_text(client.get(reverse("billing")).content.decode())
    assert f"Suspended Invoice {invoice.number} was due on" in text and "Premium support works again once it is." in text
