"""Quotes: numbers, prices from the catalog with the partner's tier discount, validation in
sentences, withdraw, and the pages (builder, quote, lists) behind the tenant wall."""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime, timedelta

import pytest
import time_machine
from django.db import connection
from django.test import override_settings
from django.urls import reverse

from accounts.models import Membership
from catalog.selectors import edition_get
from partners.exceptions import CustomerNotLinked, NotAPartner, QuoteInvalid, QuoteNotAcceptable
from partners.models import AuditEntry, PartnerLink, Quote, QuoteLine, QuoteSequence
from partners.services.quotes import (
    quote_accept,
    quote_create,
    quote_number_take,
    quote_valid_until,
    quote_withdraw,
)

from ..conftest import body_text, organization_on
from ..factories import MembershipFactory
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
def northwind(catalog):
    return partner_on("gold")


@pytest.fixture
def acme(northwind):
    partner, _ = northwind
    return linked_customer(partner, members=3)


# Numbers and dates ------------------------------------------------------------------------------


def test_numbers_follow_each_other_per_year_without_gaps(northwind, acme):
    partner, admin = northwind
    customer, _ = acme
    with time_machine.travel(datetime(2026, 12, 6, 10, tzinfo=UTC), tick=False):
        first = partner_quote(partner, admin, customer)
        second = partner_quote(partner, admin, customer)
    with time_machine.travel(datetime(2027, 1, 2, 10, tzinfo=UTC), tick=False):
        third = partner_quote(partner, admin, customer)
    assert [first.number, second.number, third.number] == ["Q-2026-000001", "Q-2026-000002", "Q-2027-000001"]


def test_a_refused_quote_takes_no_number(northwind, acme):
    partner, admin = northwind
    customer, _ = acme
    with pytest.raises(QuoteInvalid):
        partner_quote(partner, admin, customer, item(seats=1))  # under the 3 seats in use
    quote = partner_quote(partner, admin, customer)
    assert quote.number.endswith("-000001")


@pytest.mark.django_db(transaction=True)
def test_two_quotes_at_once_get_two_numbers(catalog):
    numbers, errors = [], []

    def take():
        try:
            from django.db import transaction

            with transaction.atomic():
                numbers.append(quote_number_take(at=datetime(2026, 6, 1, tzinfo=UTC)))
        except Exception as error:  # noqa: BLE001 - reported by the assertion below
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=take) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(numbers) == [f"Q-2026-00000{n}" for n in range(1, 5)]
    assert QuoteSequence.objects.get(name="quote-2026").next_number == 5


def test_valid_until_is_the_end_of_the_utc_day_thirty_days_on():
    made = datetime(2026, 12, 6, 22, 30, tzinfo=UTC)
    until = quote_valid_until(made)
    assert (until.date(), until.hour, until.minute) == (date(2027, 1, 5), 23, 59)


# Prices ---------------------------------------------------------------------------------------


def test_partner_quote_prices_list_less_the_tier_discount(northwind, acme):
    partner, admin = northwind
    customer, _ = acme
    quote = partner_quote(partner, admin, customer, item(seats=50, addons=("github", "premium-support")))
    lines = list(quote.lines.values_list("description", "quantity", "unit_amount_minor", "amount_minor"))
    assert lines == [
        ("Tracker Standard, 50 seats, annual", 50, 8150, 407500),
        ("GitHub integration for Tracker, 50 seats, annual", 50, 1500, 75000),
        ("Premium support for Tracker, annual", 1, 99000, 99000),
    ]
    assert quote.subtotal_minor == 581500
    assert (quote.discount_bp, quote.discount_minor) == (1500, 87225)  # 15 % of 5,815.00
    assert quote.total_minor == 494275
    assert quote.interval == "year" and quote.currency == "USD"
    assert "Northwind Partners" in quote.bill_to_details and "Acme Corp" in quote.licensee_details


def test_the_discount_is_rounded_per_product(northwind, catalog):
    partner, admin = partner_on("silver")
    customer, _ = linked_customer(partner)
    quote = partner_quote(partner, admin, customer, item(seats=3), item("wiki", "standard", seats=3))
    # Tracker 244.50 -> 10 % = 24.45; Wiki 183.30 -> 18.33
    assert quote.discount_minor == 2445 + 1833
    assert quote.total_minor == quote.subtotal_minor - quote.discount_minor


def test_direct_quote_is_at_list_prices_billed_to_the_customer(catalog):
    customer, admin = organization_on("standard")
    quote = quote_create(organization=customer, partner=None, actor=admin, interval="month", items=[item(seats=10)])
    assert (quote.partner, quote.discount_minor, quote.total_minor) == (None, 0, 8150)
    assert quote.bill_to_details == quote.licensee_details


def test_making_a_partner_quote_is_audited_and_the_customer_admins_told(northwind, acme, django_capture_on_commit_callbacks):
    from config.celery import app as celery_app

    partner, admin = northwind
    customer, customer_admin = acme
    celery_app.conf.task_always_eager = True
    try:
        with django_capture_on_commit_callbacks(execute=True):
            quote = partner_quote(partner, admin, customer)
    finally:
        celery_app.conf.task_always_eager = False
    entry = AuditEntry.objects.get(action="quote_made")
    assert (entry.partner, entry.customer, entry.actor) == (partner, customer, admin)
    assert entry.summary.startswith(f"Northwind Partners made quote {quote.number} for Acme Corp: Tracker Standard, 50 seats")
    [mail] = sent_to(customer_admin.email)
    assert f"Northwind Partners sent Acme Corp quote {quote.number}" in mail["Subject"]
    text = body_text(mail)
    assert_reads_well(text)
    assert "USD" not in text  # the partner's prices are its own
    assert "valid until" in text and reverse("partners:quote", args=[quote.public_id]) in text
    assert "Nothing is bought until Northwind Partners accepts it." in text


# Validation -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("items", "words"),
    [
        ([], "Choose at least one product"),
        ([{"edition": "free", "seats": 5}], "Tracker Free is free"),
        ([{"seats": 2}], "uses 3 seats"),
        ([{"seats": 101}], "Tracker Standard allows at most 100 users"),
        ([{"seats": 50}, {"seats": 60}], "Tracker is in this quote twice"),
        ([{"seats": 50, "addons": ("training",)}], "bought once, from the billing page"),
    ],
)
def test_refusals_name_what_is_wrong_and_write_nothing(northwind, acme, items, words):
    partner, admin = northwind
    customer, _ = acme
    items = [item(**chosen) for chosen in items]
    with pytest.raises(QuoteInvalid) as refusal:
        quote_create(organization=customer, partner=partner, actor=admin, interval="year", items=items)
    assert words in refusal.value.message
    assert not Quote.objects.exists() and not QuoteLine.objects.exists() and not AuditEntry.objects.exists()


def test_an_addon_needing_a_bigger_edition_is_refused(northwind, acme):
    from catalog.models import AddOn

    partner, admin = northwind
    customer, _ = acme
    github = AddOn.objects.get(product__code="tracker", code="github")
    github.min_edition = edition_get(product_code="tracker", edition_code="premium")
    github.save()
    with pytest.raises(QuoteInvalid, match="GitHub integration needs Tracker Premium or above"):
        partner_quote(partner, admin, customer, item(addons=("github",)))


@override_settings(PARTNER_ANNUAL_ONLY=True)
def test_partners_quote_annual_only(northwind, acme):
    partner, admin = northwind
    customer, _ = acme
    with pytest.raises(QuoteInvalid, match="billed annually"):
        quote_create(organization=customer, partner=partner, actor=admin, interval="month", items=[item()])


def test_a_product_already_paid_for_is_refused(northwind, acme):
    from billing.models import Subscription

    partner, admin = northwind
    customer, _ = acme
    subscription = customer.subscriptions.get()
    subscription.status, subscription.interval, subscription.seat_limit = Subscription.Status.ACTIVE, "year", 20
    subscription.current_period_start = datetime(2026, 1, 1, tzinfo=UTC)
    subscription.current_period_end = datetime(2027, 1, 1, tzinfo=UTC)
    subscription.save()
    with pytest.raises(QuoteInvalid) as refusal:
        partner_quote(partner, admin, customer)
    assert refusal.value.message == (
        "Acme Corp already pays for Tracker Standard (20 seats, renews on 1 Jan 2027): use Add seats or Change "
        "edition for it instead of a quote."
    )


def test_a_partner_quotes_only_linked_customers(northwind, catalog):
    partner, admin = northwind
    stranger, _ = organization_on("standard")
    other_partner, _ = partner_on("silver", name="Contoso Channel")
    theirs, _ = linked_customer(other_partner)
    ended, _ = organization_on("standard")
    ended_link = link(partner, ended)
    ended_link.status = PartnerLink.Status.ENDED
    ended_link.save()
    for customer in (stranger, theirs, ended):
        with pytest.raises(CustomerNotLinked) as refusal:
            partner_quote(partner, admin, customer)
        assert refusal.value.message == "No customer of yours has that id."
    assert not Quote.objects.exists()


def test_a_direct_quote_needs_an_admin(catalog):
    customer, _ = organization_on("standard")
    member = MembershipFactory(organization=customer, role=Membership.Role.MEMBER).user
    from common.exceptions import PermissionDenied

    with pytest.raises(PermissionDenied):
        quote_create(organization=customer, partner=None, actor=member, interval="year", items=[item(seats=2)])


# Withdraw and expiry ---------------------------------------------------------------------------


def test_withdraw_then_it_cannot_be_accepted(northwind, acme):
    partner, admin = northwind
    customer, _ = acme
    quote = partner_quote(partner, admin, customer)
    quote_withdraw(quote=quote, actor=admin)
    quote.refresh_from_db()
    assert quote.status == Quote.Status.WITHDRAWN and quote.withdrawn_at
    assert AuditEntry.objects.filter(action="quote_withdrawn").count() == 1
    with pytest.raises(QuoteNotAcceptable, match="was withdrawn on"):
        quote_accept(quote=quote, actor=admin, paid_with="card")
    quote.refresh_from_db()
    assert quote.status == Quote.Status.WITHDRAWN


def test_an_expired_quote_is_refused_and_nothing_is_written(northwind, acme):
    from billing.models import Invoice, Subscription

    partner, admin = northwind
    customer, _ = acme
    with time_machine.travel(datetime(2026, 12, 6, 10, tzinfo=UTC), tick=False):
        quote = partner_quote(partner, admin, customer)
    before = list(Subscription.objects.filter(organization=customer).values())
    with time_machine.travel(datetime(2027, 1, 6, 0, 0, 1, tzinfo=UTC), tick=False):
        with pytest.raises(QuoteNotAcceptable) as refusal:
            quote_accept(quote=quote, actor=admin, paid_with="card")
    assert refusal.value.message == f"Quote {quote.number} expired on 5 Jan 2027: nothing was bought. Ask for a new quote."
    quote.refresh_from_db()
    assert quote.status == Quote.Status.OPEN and quote.accepted_at is None
    assert not Invoice.objects.exists()
    assert list(Subscription.objects.filter(organization=customer).values()) == before
    assert not AuditEntry.objects.filter(action="quote_accepted").exists()


def test_only_a_partner_admin_accepts(northwind, acme):
    partner, admin = northwind
    customer, _ = acme
    quote = partner_quote(partner, admin, customer)
    with pytest.raises(NotAPartner, match="Only an admin"):
        quote_accept(quote=quote, actor=partner_member(partner), paid_with="card")


# Pages -----------------------------------------------------------------------------------------


def signed_in(client, user, organization):
    client.force_login(user)
    use_session_org(client, organization)
    return client


def test_the_builder_shows_the_discounted_price_live_then_makes_the_quote(client, northwind, acme):
    partner, admin = northwind
    customer, _ = acme
    signed_in(client, admin, partner.organization)
    url = reverse("partners:quote_new", args=[customer.public_id])
    page = client.get(url)
    assert page.status_code == 200
    text = visible_text(page.content.decode())
    assert "New quote for Acme Corp" in text and "Billing: annual." in text
    live = client.get(url, {"edition_tracker": "standard", "seats_tracker": "50"}, HTTP_HX_REQUEST="true")
    live_text = visible_text(live.content.decode())
    assert "Partner discount (Gold, 15 %) -USD 611.25" in live_text
    assert "Total, billed to Northwind Partners USD 3,463.75" in live_text
    made = client.post(url, {"edition_tracker": "standard", "seats_tracker": "50", "interval": "year", "note": "PO to follow"})
    quote = Quote.objects.get()
    assert made.status_code == 302 and made["Location"] == reverse("partners:quote", args=[quote.public_id])
    assert quote.total_minor == 346375 and quote.note == "PO to follow"


def test_the_builder_refuses_bad_input_with_a_sentence(client, northwind, acme):
    partner, admin = northwind
    customer, _ = acme
    signed_in(client, admin, partner.organization)
    url = reverse("partners:quote_new", args=[customer.public_id])
    for data, words in [
        ({"edition_tracker": "standard", "seats_tracker": "lots"}, "Enter the seats of Tracker as a whole number."),
        ({"edition_tracker": "gold-plated", "seats_tracker": "5"}, "Tracker has no paid edition called 'gold-plated'."),
        ({"edition_tracker": "standard", "seats_tracker": "500"}, "Tracker Standard allows at most 100 users"),
        ({}, "Choose at least one product to quote."),
    ]:
        answer = client.post(url, {**data, "interval": "year"})
        assert answer.status_code == 400
        assert words in visible_text(answer.content.decode())
    assert not Quote.objects.exists()


def test_the_quote_page_for_the_partner_and_the_customer_admin(client, northwind, acme):
    partner, admin = northwind
    customer, customer_admin = acme
    quote = partner_quote(partner, admin, customer)
    signed_in(client, admin, partner.organization)
    text = visible_text(client.get(reverse("partners:quote", args=[quote.public_id])).content.decode())
    assert f"Quote {quote.number}" in text and "Open" in text
    assert "Licensee Acme Corp" in text and "Bill to Northwind Partners" in text
    assert "Subtotal at list prices USD 4,075.00" in text and "Partner discount (Gold, 15 %) -USD 611.25" in text
    assert "Total USD 3,463.75" in text
    assert "Accept and pay USD 3,463.75" in text and "Withdraw this quote" in text
    client.logout()
    signed_in(client, customer_admin, customer)
    text = visible_text(client.get(reverse("partners:quote", args=[quote.public_id])).content.decode())
    assert "Total USD 3,463.75" in text
    assert "Accept" not in text and "Withdraw" not in text
    assert "Northwind Partners made this quote and pays for it; they accept it." in text


def test_the_customer_quote_list_and_direct_builder(client, catalog):
    customer, admin = organization_on("standard")
    signed_in(client, admin, customer)
    assert "No quotes yet." in visible_text(client.get(reverse("partners:customer_quotes")).content.decode())
    made = client.post(
        reverse("partners:direct_quote_new"), {"edition_tracker": "premium", "seats_tracker": "5", "interval": "year"}
    )
    assert made.status_code == 302
    quote = Quote.objects.get()
    assert (quote.partner, quote.total_minor) == (None, 80000)
    listing = visible_text(client.get(reverse("partners:customer_quotes")).content.decode())
    assert quote.number in listing and "You (direct)" in listing and "USD 800.00" in listing


# The tenant wall: every quote URL answers the same 404 to anyone without sight of it ---------------------


def quote_urls(quote):
    return [
        ("get", reverse("partners:quote", args=[quote.public_id])),
        ("get", reverse("partners:quote_pdf", args=[quote.public_id])),
        ("post", reverse("partners:quote_accept", args=[quote.public_id])),
        ("post", reverse("partners:quote_withdraw", args=[quote.public_id])),
    ]


def test_the_wall_around_quotes(client, northwind, acme):
    import uuid

    partner, admin = northwind
    customer, _ = acme
    quote = partner_quote(partner, admin, customer)
    other_partner, other_admin = partner_on("silver", name="Contoso Channel")
    customer_member = MembershipFactory(organization=customer, role=Membership.Role.MEMBER).user
    stranger_org, stranger = organization_on("standard")
    cases = [(other_admin, other_partner.organization), (customer_member, customer), (stranger, stranger_org)]
    for user, organization in cases:
        client.logout()
        signed_in(client, user, organization)
        for method, url in quote_urls(quote):
            answer = getattr(client, method)(url, {"paid_with": "card"} if method == "post" else {})
            assert answer.status_code == 404, (user, url)
            assert "No quote of yours has that number." in answer.content.decode()
    client.logout()
    signed_in(client, admin, partner.organization)
    for method, url in quote_urls(Quote(public_id=uuid.uuid4())):
        assert getattr(client, method)(url).status_code == 404
    # An ended link closes the partner's sight of its own quotes too.
    PartnerLink.objects.filter(partner=partner, customer=customer).update(status=PartnerLink.Status.ENDED)
    for method, url in quote_urls(quote):
        answer = getattr(client, method)(url)
        assert answer.status_code == 404 and "No quote of yours has that number." in answer.content.decode()
    assert client.get(reverse("partners:quote_new", args=[customer.public_id])).status_code == 404
    assert quote.number not in client.get(reverse("partners:partner_quotes")).content.decode()
    quote.refresh_from_db()
    assert quote.status == Quote.Status.OPEN


def test_the_builder_wall(client, northwind, acme, catalog):
    import uuid

    partner, admin = northwind
    other_partner, _ = partner_on("silver", name="Contoso Channel")
    theirs, _ = linked_customer(other_partner)
    stranger, _ = organization_on("standard")
    signed_in(client, admin, partner.organization)
    answers = [
        client.get(reverse("partners:quote_new", args=[customer_id]))
        for customer_id in (theirs.public_id, stranger.public_id, uuid.uuid4())
    ]
    assert [answer.status_code for answer in answers] == [404, 404, 404]
    assert len({visible_text(answer.content.decode()) for answer in answers}) == 1
    # A customer's member (not admin) sees no quotes and no prices.
    customer, _ = acme
    member = MembershipFactory(organization=customer, role=Membership.Role.MEMBER).user
    client.logout()
    signed_in(client, member, customer)
    assert client.get(reverse("partners:customer_quotes")).status_code == 404
    assert client.get(reverse("partners:direct_quote_new")).status_code == 404


def test_an_expired_quote_page_says_so_and_offers_no_accept(client, northwind, acme):
    partner, admin = northwind
    customer, _ = acme
    with time_machine.travel(datetime(2026, 12, 6, 10, tzinfo=UTC), tick=False):
        quote = partner_quote(partner, admin, customer)
    with time_machine.travel(datetime(2026, 12, 6, 10, tzinfo=UTC) + timedelta(days=31), tick=False):
        signed_in(client, admin, partner.organization)
        text = visible_text(client.get(reverse("partners:quote", args=[quote.public_id])).content.decode())
    assert "This quote expired on 5 Jan 2027: it can no longer be accepted." in text
    assert "Accept and pay" not in text


# Accept ------------------------------------------------------------------------------------------


@pytest.fixture
def eager(django_capture_on_commit_callbacks):
    """Tasks queued on commit (the charge, the emails) run in-process when the test says so."""
    from config.celery import app as celery_app

    celery_app.conf.task_always_eager = True
    yield django_capture_on_commit_callbacks
    celery_app.conf.task_always_eager = False


def on_terms(organization, *, po_number="PO-NW-1"):
    from billing.models import BillingAccount

    BillingAccount.objects.update_or_create(
        organization=organization, defaults={"collection_method": BillingAccount.Collection.INVOICE, "po_number": po_number}
    )


def test_a_partner_accepts_by_card_the_customer_gets_it_billed_to_the_partner(northwind, acme, localstripe, eager):
    from billing.models import Invoice, Subscription

    from ..billing.helpers import OK_CARD, card_set_up

    partner, admin = northwind
    customer, customer_admin = acme
    card_set_up(localstripe, partner.organization, admin, OK_CARD)
    quote = partner_quote(partner, admin, customer, item(seats=50, addons=("github",)))
    with eager(execute=True):
        [invoice] = quote_accept(quote=quote, actor=admin, paid_with="card")
    invoice.refresh_from_db()
    assert invoice.status == Invoice.Status.PAID
    assert invoice.bill_to == partner.organization and invoice.organization == customer
    assert invoice.total_minor == quote.total_minor == 410125
    lines = list(invoice.lines.order_by("pk").values_list("description", "amount_minor"))
    assert lines == [
        ("Tracker Standard, 50 seats, annual", 407500),
        ("GitHub integration for Tracker, 50 seats, annual", 75000),
        ("Partner discount (Gold, 15 %)", -72375),
    ]
    subscription = Subscription.objects.get(organization=customer, status=Subscription.Status.ACTIVE)
    assert (subscription.seat_limit, subscription.interval, subscription.billed_to) == (50, "year", partner.organization)
    assert subscription.billed_to_discount_bp == 1500
    quote.refresh_from_db()
    assert (quote.status, quote.paid_with, quote.accepted_by) == (Quote.Status.ACCEPTED, "card", admin)
    entry = AuditEntry.objects.get(action="quote_accepted")
    assert entry.summary == (
        f"Northwind Partners accepted quote {quote.number} and bought Tracker Standard, 50 seats, annual for Acme Corp, "
        f"paid by card (invoice {invoice.number}, billed to Northwind Partners)."
    )
    # The partner reads the amounts; the customer's admins read what they have, not the price.
    [to_partner] = [mail for mail in sent_to(admin.email) if "accepted" in mail["Subject"]]
    text = body_text(to_partner)
    assert_reads_well(text)
    assert "Total USD 4,101.25 (after the 15 % partner discount), charged to the card on file." in text
    assert invoice.number in text
    [to_customer] = [mail for mail in sent_to(customer_admin.email) if "bought" in mail["Subject"]]
    assert to_customer["Subject"] == "[Flywheel] Northwind Partners bought Tracker Standard, 50 seats, annual for Acme Corp"
    text = body_text(to_customer)
    assert_reads_well(text)
    assert "USD" not in text and "to change seats or editions, ask Northwind Partners" in text


def test_accepting_twice_buys_once(northwind, acme):
    from billing.models import Invoice

    partner, admin = northwind
    customer, _ = acme
    on_terms(partner.organization)
    quote = partner_quote(partner, admin, customer)
    first = quote_accept(quote=quote, actor=admin, paid_with="purchase_order", po_number="PO-77")
    second = quote_accept(quote=quote, actor=admin, paid_with="purchase_order", po_number="PO-77")
    third = quote_accept(quote=quote, actor=admin, paid_with="card")
    assert [invoice.pk for invoice in first] == [invoice.pk for invoice in second] == [invoice.pk for invoice in third]
    assert Invoice.objects.count() == 1
    assert AuditEntry.objects.filter(action="quote_accepted").count() == 1


@pytest.mark.django_db(transaction=True)
def test_two_admins_accepting_at_once_buy_once(catalog):
    from billing.models import Invoice, Subscription

    partner, admin = partner_on("gold")
    second_admin = MembershipFactory(organization=partner.organization, role=Membership.Role.ADMIN).user
    customer, _ = linked_customer(partner)
    on_terms(partner.organization)
    quote = partner_quote(partner, admin, customer)
    barrier = threading.Barrier(2)
    outcomes, errors = [], []

    def accept(actor):
        try:
            barrier.wait(5)
            outcomes.append([invoice.number for invoice in quote_accept(quote=quote, actor=actor, paid_with="purchase_order", po_number="PO-1")])
        except Exception as error:  # noqa: BLE001 - reported by the assertion below
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=accept, args=(actor,)) for actor in (admin, second_admin)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(outcomes) == 2 and outcomes[0] == outcomes[1]
    assert Invoice.objects.filter(organization=customer).count() == 1
    assert Subscription.objects.get(organization=customer, status="active").seat_limit == 50
    assert AuditEntry.objects.filter(action="quote_accepted").count() == 1


def test_a_partner_on_po_terms_accepts_against_a_po_granted_at_once(northwind, acme):
    from billing.models import Invoice, Subscription

    partner, admin = northwind
    customer, _ = acme
    on_terms(partner.organization)
    quote = partner_quote(partner, admin, customer, item(seats=50), item("wiki", "premium", seats=20))
    invoices = quote_accept(quote=quote, actor=admin, paid_with="purchase_order", po_number="  NW-2026-118 ")
    assert [invoice.po_number for invoice in invoices] == ["NW-2026-118", "NW-2026-118"]
    assert all(invoice.status == Invoice.Status.OPEN and invoice.due_at and invoice.bill_to == partner.organization for invoice in invoices)
    assert sum(invoice.total_minor for invoice in invoices) == quote.total_minor
    subscriptions = Subscription.objects.filter(organization=customer, status=Subscription.Status.ACTIVE)
    assert sorted(subscriptions.values_list("product__code", "seat_limit", "purchase_order_number")) == [
        ("tracker", 50, "NW-2026-118"),
        ("wiki", 20, "NW-2026-118"),
    ]
    quote.refresh_from_db()
    assert (quote.paid_with, quote.po_number) == ("purchase_order", "NW-2026-118")


def test_a_partner_paying_by_card_cannot_use_a_po(northwind, acme):
    partner, admin = northwind
    customer, _ = acme
    quote = partner_quote(partner, admin, customer)
    with pytest.raises(QuoteInvalid, match="Northwind Partners pays by card: purchase orders need invoice terms"):
        quote_accept(quote=quote, actor=admin, paid_with="purchase_order", po_number="PO-1")
    with pytest.raises(QuoteInvalid, match="Enter the purchase-order number"):
        quote_accept(quote=quote, actor=admin, paid_with="purchase_order", po_number="  ")
    with pytest.raises(QuoteInvalid, match="Northwind Partners has no card on file"):
        quote_accept(quote=quote, actor=admin, paid_with="card")
    quote.refresh_from_db()
    assert quote.status == Quote.Status.OPEN


def test_a_direct_quote_accepted_with_a_po_starts_invoice_terms(catalog, eager):
    from billing.models import Invoice, Subscription

    customer, admin = organization_on("standard")
    quote = quote_create(organization=customer, partner=None, actor=admin, interval="year", items=[item(seats=10)])
    with eager(execute=True):
        [invoice] = quote_accept(quote=quote, actor=admin, paid_with="purchase_order", po_number="ACME-PO-9")
    assert (invoice.bill_to, invoice.po_number, invoice.total_minor) == (None, "ACME-PO-9", 81500)
    assert invoice.status == Invoice.Status.OPEN and (invoice.due_at - invoice.issued_at).days == 30
    subscription = Subscription.objects.get(organization=customer)
    assert (subscription.status, subscription.seat_limit, subscription.purchase_order_number) == ("active", 10, "ACME-PO-9")
    assert subscription.billed_to is None
    # Billing's invoice email is the one the admin gets: no second "accepted" email for a direct quote.
    [sent] = sent_to(admin.email)
    assert sent["Subject"] == f"[Flywheel] Invoice {invoice.number}: Tracker Standard, 10 seats, annual"
    text = body_text(sent)
    assert "USD 815.00" in text and "ACME-PO-9" in text


def test_the_customer_admin_cannot_accept_a_partner_quote(client, northwind, acme):
    partner, admin = northwind
    customer, customer_admin = acme
    quote = partner_quote(partner, admin, customer)
    with pytest.raises(NotAPartner):
        quote_accept(quote=quote, actor=customer_admin, paid_with="card")
    signed_in(client, customer_admin, customer)
    answer = client.post(reverse("partners:quote_accept", args=[quote.public_id]), {"paid_with": "card"})
    assert answer.status_code == 404
    quote.refresh_from_db()
    assert quote.status == Quote.Status.OPEN


def test_accept_over_http_with_a_po_then_the_page_says_accepted(client, northwind, acme):
    partner, admin = northwind
    customer, _ = acme
    on_terms(partner.organization)
    quote = partner_quote(partner, admin, customer)
    signed_in(client, admin, partner.organization)
    url = reverse("partners:quote_accept", args=[quote.public_id])
    refused = client.post(url, {"paid_with": "purchase_order", "po_number": ""})
    assert refused.status_code == 400
    assert "Enter the purchase-order number the invoice should quote." in visible_text(refused.content.decode())
    accepted = client.post(url, {"paid_with": "purchase_order", "po_number": "NW-1"})
    assert accepted.status_code == 302
    again = client.post(url, {"paid_with": "purchase_order", "po_number": "NW-1"})
    assert again.status_code == 302
    text = visible_text(client.get(reverse("partners:quote", args=[quote.public_id])).content.decode())
    assert "Accepted on" in text and "; invoiced against purchase order NW-1." in text and "Accept and pay" not in text
    from billing.models import Invoice

    assert Invoice.objects.count() == 1


def test_a_declined_card_leaves_the_customer_as_it_was_and_the_page_says_so(client, northwind, acme, localstripe, eager):
    from billing.models import Invoice, Payment, Subscription

    from ..billing.helpers import DECLINED_AT_CHARGE, card_set_up

    partner, admin = northwind
    customer, _ = acme
    card_set_up(localstripe, partner.organization, admin, DECLINED_AT_CHARGE)
    quote = partner_quote(partner, admin, customer)
    with eager(execute=True):
        [invoice] = quote_accept(quote=quote, actor=admin, paid_with="card")
    invoice.refresh_from_db()
    assert invoice.status == Invoice.Status.OPEN
    assert Payment.objects.get(invoice=invoice).status == Payment.Status.FAILED
    assert Subscription.objects.get(organization=customer).status == Subscription.Status.TRIALING
    signed_in(client, admin, partner.organization)
    text = visible_text(client.get(reverse("partners:quote", args=[quote.public_id])).content.decode())
    assert "payment by card." in text
    assert f"Invoice {invoice.number} : the card was declined · pay it with another card" in text


def test_withdrawing_tells_the_customer_admins(northwind, acme, eager):
    partner, admin = northwind
    customer, customer_admin = acme
    quote = partner_quote(partner, admin, customer)
    with eager(execute=True):
        quote_withdraw(quote=quote, actor=admin)
    [mail] = [mail for mail in sent_to(customer_admin.email) if "withdrew" in mail["Subject"]]
    text = body_text(mail)
    assert_reads_well(text)
    assert f"withdrew quote {quote.number} (Tracker Standard, 50 seats, annual)" in text and "Nothing was bought" in text


def test_a_product_another_payer_manages_is_not_quoted(client, northwind, acme):
    partner, admin = northwind
    customer, customer_admin = acme
    # Northwind started the trial on Acme's behalf: billed to Northwind.
    customer.subscriptions.update(billed_to=partner.organization)
    signed_in(client, customer_admin, customer)
    page = visible_text(client.get(reverse("partners:direct_quote_new")).content.decode())
    assert "Tracker is managed by Northwind Partners: ask Northwind Partners for a quote." in page
    with pytest.raises(QuoteInvalid, match="Tracker is managed by Northwind Partners: ask Northwind Partners for a quote."):
        quote_create(organization=customer, partner=None, actor=customer_admin, interval="year", items=[item(seats=5)])
    assert partner_quote(partner, admin, customer).total_minor == 346375  # Northwind itself may quote it
    other, other_admin = partner_on("silver", name="Contoso Channel")
    customer.subscriptions.update(billed_to=other.organization)
    with pytest.raises(QuoteInvalid, match="Tracker is managed by Contoso Channel: only they can quote it."):
        partner_quote(partner, admin, customer)
