"""The channel-partner journey in headless Chromium, at a laptop's and a phone's width
(docs/partners.md): a firm applies to be a partner, staff approve it in the admin, the partner
invites a customer, the customer's admin accepts, the partner quotes 50 seats of Tracker
Standard for a year and pays for them by card, the customer's member at the seat limit is told
to ask the partner (and asks), the partner adds seats for the customer, and the customer's admin
moves to direct billing at renewal: the renewal, a year later, is the customer's own invoice at
list price.

localstripe stands in for Stripe and the real Celery worker charges the partner's card. Every
page passes axe-core and does not scroll sideways on a phone (conftest.PageChecks); the emails
each side gets are read in the dev mailbox as their recipient would."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from playwright.sync_api import expect

from accounts.models import Membership
from billing.models import Invoice, Payment, Subscription
from billing.pricing import unit_price
from catalog.selectors import edition_get
from common.money import money
from partners.models import (
    AuditEntry,
    Partner,
    PartnerApplication,
    PartnerLink,
    PartnerRequest,
    Quote,
)

from ..billing.helpers import OK_CARD, card_set_up, tick_at, workspace_ready
from ..conftest import organization_on
from ..factories import PASSWORD, MembershipFactory, OrganizationFactory, UserFactory
from ..partners.factories import PartnerFactory, PartnerLinkFactory
from .conftest import main_text, open_newest_mail, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SEATS = 50


def _active_when_paid(page, organization) -> Subscription:
    """The organization's Tracker once the worker has charged the card (it is active)."""
    for _ in range(120):
        subscription = Subscription.objects.get(organization=organization)
        if subscription.status == Subscription.Status.ACTIVE and subscription.interval:
            return subscription
        page.wait_for_timeout(250)
    raise AssertionError(f"Tracker is still {subscription.status} for {organization.name}")


@pytest.fixture
def cast(catalog):
    """Northwind Partners (a firm, not yet a partner) and its admin Pat; Acme Robotics on a
    Tracker Standard trial with its admin Dana and 49 members, Sam among them (50 people); staff."""
    northwind = OrganizationFactory(name="Northwind Partners", email_domain="northwind.example")
    pat = UserFactory(email="pat@northwind.example", first_name="Pat", last_name="Quinn")
    MembershipFactory(organization=northwind, user=pat, role=Membership.Role.ADMIN)
    acme, dana = organization_on("standard")
    acme.name = "Acme Robotics"
    acme.save()
    dana.first_name, dana.last_name = "Dana", "Reyes"
    dana.save()
    sam = UserFactory(email=f"sam@{acme.email_domain}", first_name="Sam", last_name="Lee")
    MembershipFactory(organization=acme, user=sam, role=Membership.Role.MEMBER)
    for _ in range(SEATS - 2):
        MembershipFactory(organization=acme, role=Membership.Role.MEMBER)
    workspace_ready(acme)
    staff = UserFactory(email="staff@flywheel.example", is_staff=True, is_superuser=True)
    return {"northwind": northwind, "pat": pat, "acme": acme, "dana": dana, "sam": sam, "staff": staff}


def test_a_partner_buys_for_its_customer_who_moves_to_direct_billing(
    cast, celery_worker, localstripe, live_server, people, check_page, viewport, mailbox_on
):
    northwind, pat, acme, dana, sam = cast["northwind"], cast["pat"], cast["acme"], cast["dana"], cast["sam"]

    # 1. Northwind's admin applies to be a partner.
    partner_page = people.open()
    sign_in(partner_page, pat.email, PASSWORD, check_page)
    partner_page.goto("/partner/apply/")
    check_page(partner_page, "partner application form")
    form = partner_page.locator("main form")
    form.locator("[name=company_name]").fill("Northwind Partners Ltd")
    form.locator("[name=country]").select_option("GB")
    form.locator("[name=website]").fill("https://northwind.example")
    form.locator("[name=contact_name]").fill("Pat Quinn")
    form.locator("[name=contact_email]").fill("partners@northwind.example")
    form.locator("[name=description]").fill("We license and support tools for engineering teams of 20 to 500.")
    partner_page.locator("#apply").click()
    expect(partner_page.locator("#application-pending")).to_contain_text("waiting for review")
    check_page(partner_page, "application sent")
    application = PartnerApplication.objects.get(organization=northwind)

    # 2. Staff approve it in the admin, as a Gold partner; the applicant is told by email.
    staff_page = people.open()
    sign_in(staff_page, cast["staff"].email, PASSWORD)
    staff_page.goto("/admin/partners/partnerapplication/")
    staff_page.locator(f"input[name=_selected_action][value='{application.pk}']").check()
    staff_page.locator("select[name=action]").select_option("approve")
    staff_page.locator("button[name=index], input[name=index], .actions button[type=submit]").first.click()
    staff_page.locator("select#tier").select_option("gold")
    staff_page.locator("input[name=apply]").click()
    expect(staff_page.locator(".messagelist")).to_contain_text("Approved as Gold partners: Northwind Partners")
    partner = Partner.objects.get(organization=northwind)
    assert partner.tier == "gold" and partner.status == Partner.Status.ACTIVE
    approval = open_newest_mail(staff_page, "partners@northwind.example", "partner")
    check_page.soft("Gold" in approval and "Northwind" in approval, f"the approval names the tier: {approval[:400]}")

    # The partner pays by card: Pat puts one on file (the card form is billing's, tested elsewhere).
    card_set_up(localstripe, northwind, pat, OK_CARD)

    # 3. The partner invites Acme's admin.
    partner_page.goto("/partner/invite/")
    check_page(partner_page, "invite a customer")
    partner_page.locator("main form [name=email]").fill(dana.email)
    partner_page.locator("main form [name=message]").fill("As agreed on the phone: we will handle your Tracker licences.")
    partner_page.locator("#send-invite").click()
    link = PartnerLink.objects.get(partner=partner, customer=acme)
    assert link.status == PartnerLink.Status.INVITED

    # 4. Acme's admin reads the invitation (home, email) and accepts it on the partner page.
    customer_page = people.open()
    sign_in(customer_page, dana.email, PASSWORD)
    customer_page.goto("/app/")
    expect(customer_page.locator("#partner-invitation")).to_contain_text("Northwind Partners invited Acme Robotics")
    check_page(customer_page, "home with the invitation")
    invitation = open_newest_mail(customer_page, dana.email, "Northwind")
    check_page.soft("Acme Robotics" in invitation and "/app/partner/" in invitation,
                    f"the invitation email names Acme and links the partner page: {invitation[:500]}")
    customer_page.goto("/app/")
    customer_page.locator("#partner-invitation a").click()
    expect(customer_page.locator(f"#link-{link.public_id}")).to_contain_text("never sees your members' names")
    check_page(customer_page, "the invitation on the partner page")
    customer_page.locator(f"#accept-{link.public_id}").click()
    expect(customer_page.locator("#partner")).to_contain_text("Northwind Partners")
    expect(customer_page.locator("main")).to_contain_text("Northwind Partners is now your partner")
    check_page(customer_page, "partner page once linked")
    link.refresh_from_db()
    assert link.status == PartnerLink.Status.ACTIVE

    # 5. The partner quotes 50 seats of Tracker Standard for a year, at its Gold discount, and
    # pays by card: the quote's total is what the card is charged.
    partner_page.goto(f"/partner/customers/{acme.public_id}/")
    check_page(partner_page, "the customer's page, before buying")
    partner_page.locator("#new-quote").click()
    partner_page.locator("#edition-tracker").select_option("standard")
    partner_page.locator("#seats-tracker").fill(str(SEATS))
    check_page(partner_page, "quote builder")
    partner_page.locator("#make-quote").click()
    expect(partner_page.locator("#quote-number")).to_have_text(re.compile(r"^Q-\d{4}-\d{6}$"))
    check_page(partner_page, "the quote")
    quote = Quote.objects.get(organization=acme)
    standard = edition_get(product_code="tracker", edition_code="standard")
    list_total = unit_price(standard, "year") * SEATS
    assert quote.subtotal_minor == list_total and quote.discount_bp == 1500
    assert quote.total_minor == list_total - list_total * 15 // 100
    expect(partner_page.locator("#quote-total")).to_contain_text(money(quote.total_minor, "USD"))
    partner_page.locator("#accept-card").click()
    subscription = _active_when_paid(partner_page, acme)
    partner_page.reload()
    check_page.soft(
        partner_page.locator("#payment[data-status=succeeded]").count(),
        f"the partner sees its payment succeed (at {partner_page.url}): {main_text(partner_page)[:300]}",
    )
    check_page(partner_page, "the partner's payment")
    assert subscription.status == Subscription.Status.ACTIVE and subscription.seat_limit == SEATS
    assert subscription.interval == Subscription.Interval.YEAR and subscription.billed_to_id == northwind.pk
    bought = Invoice.objects.get(organization=acme, bill_to=northwind)
    assert bought.total_minor == quote.total_minor
    assert Payment.objects.get(invoice=bought).amount_minor == quote.total_minor

    # Acme's admin reads the partner's quote (not to accept it: the partner pays), and sees on
    # the app home who manages Tracker now.
    customer_page.goto("/app/quotes/")
    expect(customer_page.locator("main")).to_contain_text(quote.number)
    check_page(customer_page, "the customer's quotes")
    customer_page.goto(f"/quotes/{quote.public_id}/")
    expect(customer_page.locator("#quote-status")).to_contain_text("Accepted")
    check_page.soft(customer_page.locator("#accept-card").count() == 0, "the customer's admin cannot accept the partner's quote")
    check_page(customer_page, "the partner's quote, read by the customer")
    customer_page.goto("/app/")
    expect(customer_page.locator("#managed-by-tracker")).to_contain_text("Managed by Northwind Partners")

    # 6. Acme's member Sam is at the seat limit: Flywheel tells him to ask the partner, and he
    # asks for 5 more seats; the partner is emailed.
    member_page = people.open()
    sign_in(member_page, sam.email, PASSWORD)
    member_page.goto("/app/")
    expect(member_page.locator("#managed-by-tracker")).to_contain_text("Managed by Northwind Partners")
    check_page(member_page, "member's home at the seat limit")
    check_page.soft(
        re.search(r"ask Northwind Partners", main_text(member_page), re.I),
        f"the member at the limit reads \"ask Northwind Partners\": {main_text(member_page)[:600]}",
    )
    check_page.soft("Ask an admin of Acme Robotics for more seats" not in main_text(member_page),
                    "the member is not sent to the admins for seats of a partner-managed product")
    member_page.locator("#managed-by-tracker a", has_text="Ask Northwind Partners").click()
    expect(member_page.locator("h1")).to_have_text("Ask Northwind Partners")
    check_page(member_page, "ask the partner")
    member_page.locator("#id_seats_wanted").fill("5")
    member_page.locator("#id_message").fill("Five engineers join on Monday.")
    member_page.locator("#send-ask").click()
    expect(member_page.locator("#ask-sent")).to_contain_text("Northwind Partners has your request: 5 more seats of Tracker.")
    check_page(member_page, "request sent")
    asked = PartnerRequest.objects.get(customer=acme)
    assert asked.requested_by == sam and asked.seats_wanted == 5
    request_mail = open_newest_mail(partner_page, pat.email, "Acme Robotics")
    check_page.soft("5 more seats of Tracker" in request_mail, f"the partner's email says what is asked: {request_mail[:500]}")

    # 7. The partner adds the seats for Acme, prorated at its discount, from the customer's page:
    # the exact price first, then one click; the card is charged that.
    partner_page.goto(f"/partner/customers/{acme.public_id}/")
    expect(partner_page.locator("#customer-requests")).to_contain_text("5 more seats of Tracker")
    partner_page.goto(f"/partner/customers/{acme.public_id}/manage/")
    check_page(partner_page, "managing the customer's subscriptions")
    manage = partner_page.locator("#manage-tracker")
    manage.locator("#seats-tracker").fill("5")
    manage.locator("form").filter(has=partner_page.locator("#seats-tracker")).locator("button[type=submit]").click()
    expect(partner_page.locator("#seats-discount")).to_contain_text("USD")
    check_page(partner_page, "the price of 5 seats for the customer")
    price = partner_page.locator("#seats-total").inner_text()
    partner_page.locator("#confirm-seats").click()
    for _ in range(120):
        subscription.refresh_from_db()
        if subscription.seat_limit == SEATS + 5:
            break
        partner_page.wait_for_timeout(250)
    assert subscription.seat_limit == SEATS + 5 and subscription.billed_to_id == northwind.pk
    seats_invoice = Invoice.objects.get(organization=acme, bill_to=northwind, kind=Invoice.Kind.SEATS)
    assert money(seats_invoice.total_minor, "USD") == price  # what was shown is what was charged
    check_page(partner_page, "seats added")

    # 8. Acme's admin moves to direct billing at renewal: the page shows the list price the
    # renewal will cost and the date; the partner keeps the term it paid for.
    customer_page.goto("/app/partner/")
    customer_page.locator("#to-direct").click()
    renews = subscription.current_period_end
    list_renewal = unit_price(standard, "year") * (SEATS + 5)
    expect(customer_page.locator("#renewal-tracker")).to_contain_text(money(list_renewal, "USD"))
    expect(customer_page.locator("#renewal-tracker")).to_contain_text(f"{renews:%-d %b %Y}")
    check_page(customer_page, "move to direct billing")
    customer_page.locator("#direct-at-renewal").click()
    expect(customer_page.locator("main")).to_contain_text("Moved to direct billing: Tracker from")
    expect(customer_page.locator("#managed-tracker")).to_contain_text(f"Billed to Acme Robotics from {renews:%-d %b %Y}")
    check_page(customer_page, "partner page after moving")
    link.refresh_from_db()
    subscription.refresh_from_db()
    assert link.status == PartnerLink.Status.ENDED
    assert subscription.billed_to_id == northwind.pk and subscription.billed_to_ends_at_renewal
    ended = open_newest_mail(customer_page, dana.email, "no longer linked")
    check_page.soft(f"{renews:%-d %b %Y}" in ended or "renewal" in ended, f"the end email says when: {ended[:600]}")

    # 9. A year later the renewal is Acme's own invoice, at list price, not the partner's.
    tick_at(renews + timedelta(minutes=1))
    renewal = Invoice.objects.get(subscription=subscription, kind=Invoice.Kind.RENEWAL)
    assert renewal.organization_id == acme.pk and renewal.bill_to_id is None
    assert renewal.total_minor == list_renewal
    subscription.refresh_from_db()
    assert subscription.billed_to_id is None
    customer_page.goto("/app/partner/activity/")
    activity = main_text(customer_page)
    check_page(customer_page, "partner activity")
    for said in ("Acme Robotics moves Tracker to direct billing",):
        check_page.soft(said in activity, f"the activity log says {said!r}: {activity[:800]}")
    assert AuditEntry.objects.filter(customer=acme).count() >= 4
    check_page.assert_clean()


def test_every_customer_partner_page_passes_axe_and_fits_a_phone(catalog, live_server, people, check_page, viewport):
    """The customer's partner pages the journey does not pass through (the directory, ending the
    partnership, the 404, a customer without a partner, a member's view), as their readers see
    them: axe-core and no sideways scroll at either width."""
    northwind = OrganizationFactory(name="Northwind Partners")
    PartnerFactory(organization=northwind, description="Licences, onboarding and support for growing engineering teams.")
    PartnerFactory(organization=OrganizationFactory(name="Contoso Channel"), tier="platinum")
    acme, dana = organization_on("standard")
    acme.name = "Acme Robotics"
    acme.save()
    sam = UserFactory(email=f"sam@{acme.email_domain}")
    MembershipFactory(organization=acme, user=sam, role=Membership.Role.MEMBER)
    loner_org, loner = organization_on("standard")

    page = people.open()
    sign_in(page, loner.email, PASSWORD)
    for path, what, says in (
        ("/app/partner/", "no partner yet", "You buy directly from Flywheel"),
        ("/app/partner/directory/", "the directory", "Ask Northwind Partners to be your partner"),
        ("/app/partner/ask/?product=tracker&kind=seats", "ask without a partner", "has no partner right now"),
        ("/app/partner/direct/", "direct with nothing to move", "you already pay Flywheel directly"),
        ("/app/partner/activity/", "empty activity", "Nothing yet"),
        ("/app/partner/ask/0b9c2d52-9b5e-4c3a-8c89-3f9d8f3f7a11/", "a request that is not ours", "no request with that id"),
    ):
        page.goto(path)
        expect(page.locator("main")).to_contain_text(says)
        check_page(page, what)

    # Acme with Northwind as its partner and Contoso's invitation waiting: the admin's end page
    # and the member's view of the partner page.
    PartnerLinkFactory(partner=Partner.objects.get(organization=northwind), customer=acme)
    PartnerLinkFactory(
        partner=Partner.objects.get(organization__name="Contoso Channel"), customer=acme, status=PartnerLink.Status.INVITED
    )
    admin_page = people.open()
    sign_in(admin_page, dana.email, PASSWORD)
    for path, what, says in (
        ("/app/partner/", "partner page with a second invitation", "End the partnership with Northwind Partners first"),
        ("/app/partner/end/", "ending the partnership", "pays for none of your products"),
        ("/app/partner/directory/", "the directory with a partner", "You can have one partner at a time"),
    ):
        admin_page.goto(path)
        expect(admin_page.locator("main")).to_contain_text(says)
        check_page(admin_page, what)
    member_page = people.open()
    sign_in(member_page, sam.email, PASSWORD)
    member_page.goto("/app/partner/")
    expect(member_page.locator("#partner")).to_contain_text("Northwind Partners")
    expect(member_page.locator("#pending-links")).to_contain_text("An admin of Acme Robotics can accept or decline it")
    check_page(member_page, "a member's partner page")
    check_page.assert_clean()
