"""Buying on behalf: a partner's admin adds seats, changes the edition, starts a trial for a
linked customer; exact prices at the partner's rate before one click, each audited once and
told to the customer's admins (without the partner's prices)."""

from __future__ import annotations

import pytest
from django.urls import reverse

from billing.models import BillingAccount, Invoice, Payment, Subscription
from billing.services.seats import seats_quote
from catalog.selectors import edition_get
from partners.exceptions import NotAPartner
from partners.models import AuditEntry
from partners.services.on_behalf import (
    on_behalf_add_seats,
    on_behalf_change_edition,
    on_behalf_start_trial,
)
from partners.services.quotes import quote_accept, quote_create

from ..conftest import body_text, organization_on
from .quote_helpers import (
    assert_reads_well,
    item,
    link,
    linked_customer,
    partner_member,
    partner_on,
    partner_quote,
    sent_to,
    use_session_org,
    visible_text,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def eager(django_capture_on_commit_callbacks):
    from config.celery import app as celery_app

    celery_app.conf.task_always_eager = True
    yield django_capture_on_commit_callbacks
    celery_app.conf.task_always_eager = False


@pytest.fixture
def managed(catalog):
    """Northwind (Gold, on purchase-order terms) bought Tracker Standard, 50 seats, annual, for
    Acme Corp on a quote: active, billed to Northwind at 15 %."""
    partner, admin = partner_on("gold")
    BillingAccount.objects.update_or_create(
        organization=partner.organization, defaults={"collection_method": BillingAccount.Collection.INVOICE, "po_number": "NW-PO"}
    )
    customer, customer_admin = linked_customer(partner, members=3)
    quote = partner_quote(partner, admin, customer, item(seats=50))
    quote_accept(quote=quote, actor=admin, paid_with="purchase_order", po_number="NW-PO-1")
    subscription = Subscription.objects.get(organization=customer, status=Subscription.Status.ACTIVE)
    assert subscription.billed_to == partner.organization
    return partner, admin, customer, customer_admin, subscription


def test_adding_seats_on_terms_is_granted_at_once_audited_and_told(managed, eager):
    partner, admin, customer, customer_admin, subscription = managed
    shown = seats_quote(subscription=subscription, seats=10)
    assert shown.discount_bp == 1500 and shown.discount_minor > 0
    with eager(execute=True):
        outcome = on_behalf_add_seats(
            partner=partner, actor=admin, subscription=subscription, seats=10, request_key="seats-1", quote_token=shown.token
        )
    assert isinstance(outcome, Invoice)
    assert (outcome.bill_to, outcome.total_minor, outcome.po_number) == (partner.organization, shown.amount_minor, "NW-PO-1")
    subscription.refresh_from_db()
    assert subscription.seat_limit == 60
    entry = AuditEntry.objects.get(action="seats_added")
    assert entry.summary == f"Northwind Partners added 10 seats to Tracker (invoice {outcome.number}, billed to Northwind Partners)."
    [mail] = [mail for mail in sent_to(customer_admin.email) if "added 10 seats" in mail["Subject"]]
    text = body_text(mail)
    assert_reads_well(text)
    assert "Tracker now has 60 seats." in text and "USD" not in text
    # A double click (same key) buys nothing more and writes no second entry.
    again = on_behalf_add_seats(
        partner=partner, actor=admin, subscription=subscription, seats=10, request_key="seats-1", quote_token=shown.token
    )
    assert again.pk == outcome.pk
    assert Invoice.objects.filter(kind=Invoice.Kind.SEATS).count() == 1
    assert AuditEntry.objects.filter(action="seats_added").count() == 1


def test_adding_seats_by_the_partners_card(catalog, localstripe, eager):
    from ..billing.helpers import OK_CARD, card_set_up

    partner, admin = partner_on("gold")
    customer, customer_admin = linked_customer(partner)
    card_set_up(localstripe, partner.organization, admin, OK_CARD)
    quote = partner_quote(partner, admin, customer, item(seats=20))
    with eager(execute=True):
        quote_accept(quote=quote, actor=admin, paid_with="card")
    subscription = Subscription.objects.get(organization=customer, status="active")
    shown = seats_quote(subscription=subscription, seats=5)
    with eager(execute=True):
        payment = on_behalf_add_seats(
            partner=partner, actor=admin, subscription=subscription, seats=5, request_key="seats-card", quote_token=shown.token
        )
    assert isinstance(payment, Payment)
    payment.refresh_from_db()
    assert payment.status == Payment.Status.SUCCEEDED and payment.invoice.total_minor == shown.amount_minor
    subscription.refresh_from_db()
    assert subscription.seat_limit == 25


def test_the_seats_page_shows_the_exact_discounted_price_then_one_click(client, managed):
    partner, admin, customer, _, subscription = managed
    client.force_login(admin)
    use_session_org(client, partner.organization)
    url = reverse("partners:on_behalf_seats", args=[customer.public_id, subscription.public_id])
    keyed = client.get(url, {"seats": "10"})
    assert keyed.status_code == 302 and "quote=" in keyed["Location"]
    page = client.get(keyed["Location"])
    text = visible_text(page.content.decode())
    shown = page.context["quote"]
    from common.money import money

    assert f"Total, billed to Northwind Partners {money(shown.amount_minor, 'USD')}" in text
    assert f"Partner discount (Gold, 15 %) -{money(shown.discount_minor, 'USD')}" in text
    assert f"Invoice {money(shown.amount_minor, 'USD')} and add 10 seats" in text
    key = keyed["Location"].split("quote=")[1]
    done = client.post(url, {"seats": "10", "request_key": key, "quote_token": shown.token})
    assert done.status_code == 302
    subscription.refresh_from_db()
    assert subscription.seat_limit == 60
    # Back: the same page says it is done instead of offering to pay again.
    assert "These seats were added on" in visible_text(client.get(keyed["Location"]).content.decode())


def test_an_upgrade_on_behalf(managed, eager):
    from billing.services.subscriptions import edition_change_quote

    partner, admin, customer, customer_admin, subscription = managed
    premium = edition_get(product_code="tracker", edition_code="premium")
    shown = edition_change_quote(subscription=subscription, edition=premium)
    with eager(execute=True):
        on_behalf_change_edition(
            partner=partner, actor=admin, subscription=subscription, edition=premium, request_key="ed-1", quote_token=shown.token
        )
    subscription.refresh_from_db()
    assert subscription.edition == premium
    assert AuditEntry.objects.get(action="edition_changed").summary == "Northwind Partners moved Tracker from Standard to Premium."
    [mail] = [mail for mail in sent_to(customer_admin.email) if "changed Tracker to Premium" in mail["Subject"]]
    text = body_text(mail)
    assert_reads_well(text)
    assert "Tracker is now on Premium." in text and "USD" not in text


def test_a_trial_of_another_product_for_the_customer(managed, eager):
    partner, admin, customer, customer_admin, _ = managed
    with eager(execute=True):
        trial = on_behalf_start_trial(partner=partner, actor=admin, customer=customer, product_code="wiki")
    assert (trial.product.code, trial.status) == ("wiki", Subscription.Status.TRIALING)
    assert AuditEntry.objects.get(action="trial_started").summary.startswith("Northwind Partners started a trial of Wiki Standard, until ")
    [mail] = [mail for mail in sent_to(customer_admin.email) if "Wiki trial" in mail["Subject"]]
    text = body_text(mail)
    assert_reads_well(text)
    assert "nothing is charged to Acme Corp" in text


def test_only_a_partner_admin_buys_and_only_what_is_billed_to_it(client, managed, catalog):
    partner, admin, customer, _, subscription = managed
    member = partner_member(partner)
    with pytest.raises(NotAPartner):
        on_behalf_add_seats(partner=partner, actor=member, subscription=subscription, seats=1, request_key="m", quote_token=None)
    client.force_login(member)
    use_session_org(client, partner.organization)
    answer = client.get(reverse("partners:on_behalf_seats", args=[customer.public_id, subscription.public_id]), {"seats": 1})
    assert answer.status_code == 404 and "Only an admin of your partner organization can do that." in answer.content.decode()
    # A customer that pays for itself: the partner cannot buy for it.
    own, own_admin = organization_on("standard")
    link(partner, own)
    direct = quote_create(organization=own, partner=None, actor=own_admin, interval="year", items=[item(seats=1)])
    quote_accept(quote=direct, actor=own_admin, paid_with="purchase_order", po_number="OWN-1")
    own_subscription = Subscription.objects.get(organization=own, status="active")
    from common.exceptions import FlywheelError

    with pytest.raises(FlywheelError, match="not billed to Northwind Partners"):
        on_behalf_add_seats(partner=partner, actor=admin, subscription=own_subscription, seats=1, request_key="x", quote_token=None)
    assert not AuditEntry.objects.filter(action="seats_added").exists()
