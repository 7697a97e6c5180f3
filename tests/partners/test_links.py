"""Links between a partner and a customer, by consent, for both sides: invite, request, accept,
decline, withdraw, end. Each audited, each emailing the other side; a customer has one partner."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from accounts.services import organization_create_for_signup
from billing.models import Subscription
from partners.exceptions import CustomerNotLinked, PartnerError
from partners.models import AuditEntry, PartnerLink
from partners.selectors import customer_for_partner
from partners.services.links import (
    link_accept,
    link_decline,
    link_end,
    link_invite,
    link_request,
    link_withdraw,
)

from ..billing.factories import SubscriptionFactory
from ..factories import OrganizationFactory, UserFactory
from .conftest import assert_reads_well, customer_link
from .factories import admin_of, member_of

Status = PartnerLink.Status
Side = PartnerLink.Side


def _customer(name="Acme Robotics"):
    customer = OrganizationFactory(name=name)
    return customer, admin_of(customer, f"ada@{name.split()[0].lower()}.example"), member_of(customer)


def test_a_partner_invites_an_admin_and_the_customer_accepts(northwind, mailbox):
    customer, admin, _member = _customer()
    outcome = link_invite(partner=northwind.partner, actor=northwind.admin, email="  ADA@acme.example ", message="As discussed on the phone.")

    link = outcome.link
    assert link.customer == customer and link.status == Status.INVITED and link.invited_email == "ada@acme.example"
    invite = mailbox.one(admin.email)
    assert str(invite["Subject"]) == "[Flywheel] Northwind Partners invites Acme Robotics to work with them"
    text = mailbox.text(invite)
    assert_reads_well(text)
    assert "Northwind Partners, a Gold partner, asks to manage Acme Robotics' subscriptions" in text
    assert '"As discussed on the phone."' in text
    assert "never sees your people's names or addresses" in text
    assert f"/app/partner/?organization={customer.public_id}" in text
    assert "because you are an admin of Acme Robotics" in text

    mailbox.clear()
    link_accept(link=link, actor=admin)
    link.refresh_from_db()
    assert link.status == Status.ACTIVE and link.accepted_by == admin and link.accepted_at is not None
    assert customer_for_partner(partner=northwind.partner, customer_id=customer.public_id) == customer
    told = mailbox.one(northwind.admin.email, "accepted your invitation")
    assert northwind.partner.contact_email in told["To"]
    assert f"/partner/customers/{customer.public_id}/" in mailbox.text(told)
    assert list(AuditEntry.objects.filter(customer=customer).order_by("pk").values_list("action", "actor_side")) == [
        ("link_invited", "partner"),
        ("link_accepted", "customer"),
    ]


def test_an_address_without_an_organization_gets_a_signup_invitation_and_the_link_waits(northwind, mailbox, catalog):
    outcome = link_invite(partner=northwind.partner, actor=northwind.admin, email="newcomer@globex.example")
    assert outcome.link is None
    assert not PartnerLink.objects.exists()
    text = mailbox.text(mailbox.one("newcomer@globex.example"))
    assert_reads_well(text)
    assert "Sign up with this address (newcomer@globex.example)" in text and "http://" in text

    mailbox.clear()
    user = UserFactory(email="newcomer@globex.example")
    organization = organization_create_for_signup(user=user, name="Globex")
    link = PartnerLink.objects.get(customer=organization)
    assert link.partner == northwind.partner and link.status == Status.INVITED
    assert "Northwind Partners invites Globex" in str(mailbox.one(user.email)["Subject"])
    link_accept(link=link, actor=user)
    assert PartnerLink.objects.get(pk=link.pk).status == Status.ACTIVE


def test_a_customer_with_a_partner_cannot_accept_another_one(northwind, contoso, mailbox):
    linked = customer_link(northwind.partner)
    invite = link_invite(partner=contoso.partner, actor=contoso.admin, email=linked.admin.email).link
    with pytest.raises(PartnerError, match="already works with Northwind Partners: end that link first, then accept Contoso Channel"):
        link_accept(link=invite, actor=linked.admin)
    assert PartnerLink.objects.get(pk=invite.pk).status == Status.INVITED
    assert PartnerLink.objects.get(pk=linked.link.pk).status == Status.ACTIVE
    with pytest.raises(PartnerError, match="already works with Northwind Partners: end that link first"):
        link_request(customer=linked.customer, partner=contoso.partner, actor=linked.admin)


def test_only_the_asked_sides_admin_answers(northwind):
    customer, admin, member = _customer()
    link = link_invite(partner=northwind.partner, actor=northwind.admin, email=admin.email).link
    for stranger in (member, northwind.admin, northwind.member):
        with pytest.raises(PartnerError, match="Only an admin of Acme Robotics can accept this link"):
            link_accept(link=link, actor=stranger)
    with pytest.raises(PartnerError, match="Only an admin of Northwind Partners can invite customers"):
        link_invite(partner=northwind.partner, actor=northwind.member, email="x@y.example")
    assert PartnerLink.objects.get(pk=link.pk).status == Status.INVITED


def test_invites_that_make_no_sense_are_refused(northwind):
    customer, admin, _ = _customer()
    with pytest.raises(PartnerError, match="Enter the email address of an admin"):
        link_invite(partner=northwind.partner, actor=northwind.admin, email="not an address")
    with pytest.raises(PartnerError, match="is your own organization"):
        link_invite(partner=northwind.partner, actor=northwind.admin, email=northwind.admin.email)
    link_invite(partner=northwind.partner, actor=northwind.admin, email=admin.email)
    with pytest.raises(PartnerError, match="You already invited .*; the invitation waits for an answer"):
        link_invite(partner=northwind.partner, actor=northwind.admin, email=admin.email)
    assert PartnerLink.objects.count() == 1


def test_a_customer_asks_from_the_directory_and_the_partner_accepts(northwind, mailbox):
    customer, admin, member = _customer()
    with pytest.raises(PartnerError, match="Only an admin of Acme Robotics can choose a partner"):
        link_request(customer=customer, partner=northwind.partner, actor=member)
    link = link_request(customer=customer, partner=northwind.partner, actor=admin, message="We need help with 300 seats.")
    assert link.status == Status.REQUESTED
    ask = mailbox.one(northwind.admin.email)
    assert str(ask["Subject"]) == "[Flywheel] Acme Robotics asks Northwind Partners to manage its subscriptions"
    assert '"We need help with 300 seats."' in mailbox.text(ask)
    with pytest.raises(PartnerError, match="You already asked Northwind Partners"):
        link_request(customer=customer, partner=northwind.partner, actor=admin)
    with pytest.raises(PartnerError, match="Only an admin of Northwind Partners"):
        link_accept(link=link, actor=northwind.member)

    mailbox.clear()
    link_accept(link=link, actor=northwind.admin)
    welcome = mailbox.one(admin.email)
    assert str(welcome["Subject"]) == "[Flywheel] Northwind Partners is now Acme Robotics' partner"
    assert_reads_well(mailbox.text(welcome))
    assert f"/app/partner/activity/?organization={customer.public_id}" in mailbox.text(welcome)


def test_an_unlisted_or_suspended_partner_is_not_in_the_directory(northwind):
    customer, admin, _ = _customer()
    northwind.partner.listed = False
    northwind.partner.save()
    with pytest.raises(PartnerError, match="not in the directory"):
        link_request(customer=customer, partner=northwind.partner, actor=admin)


def test_decline_and_withdraw_tell_the_other_side(northwind, mailbox):
    customer, admin, _ = _customer()
    invite = link_invite(partner=northwind.partner, actor=northwind.admin, email=admin.email).link
    link_decline(link=invite, actor=admin, reason="We buy directly.")
    assert PartnerLink.objects.get(pk=invite.pk).status == Status.DECLINED
    declined = mailbox.one(northwind.admin.email, "declined your invitation")
    assert '"We buy directly."' in mailbox.text(declined)
    with pytest.raises(PartnerError, match="no longer pending: it was declined"):
        link_accept(link=invite, actor=admin)

    again = link_invite(partner=northwind.partner, actor=northwind.admin, email=admin.email).link
    link_withdraw(link=again, actor=northwind.admin)
    assert PartnerLink.objects.get(pk=again.pk).status == Status.WITHDRAWN
    assert mailbox.one(admin.email, "withdrew its invitation")

    request = link_request(customer=customer, partner=northwind.partner, actor=admin)
    link_decline(link=request, actor=northwind.admin)
    text = mailbox.text(mailbox.one(admin.email, "declined Acme Robotics' request"))
    assert "Nothing changed: you keep buying directly" in text and "/app/partner/directory/" in text
    assert list(AuditEntry.objects.filter(customer=customer).values_list("action", flat=True).order_by("pk")) == [
        "link_invited", "link_declined", "link_invited", "link_withdrawn", "link_requested", "link_declined",
    ]


def test_ending_a_link_mid_period_hands_the_subscriptions_back_at_renewal(northwind, mailbox, catalog):
    linked = customer_link(northwind.partner)
    start = timezone.now() - timedelta(days=100)
    subscription = SubscriptionFactory(
        paid=True, organization=linked.customer, interval=Subscription.Interval.YEAR, seat_limit=50,
        current_period_start=start, current_period_end=start + timedelta(days=365),
        billed_to=northwind.organization, billed_to_discount_bp=1500,
    )
    own = SubscriptionFactory(
        paid=True, organization=linked.customer, edition=subscription.edition.__class__.objects.get(product__code="wiki", code="standard"),
    )

    with pytest.raises(PartnerError, match="Only an admin of Northwind Partners can end this link"):
        link_end(link=linked.link, actor=northwind.member, side=Side.PARTNER)
    with time_machine.travel(timezone.now(), tick=False):
        link_end(link=linked.link, actor=linked.admin, side=Side.CUSTOMER, reason="We move to direct billing.")

    link = PartnerLink.objects.get(pk=linked.link.pk)
    assert link.status == Status.ENDED and link.closed_by_side == Side.CUSTOMER and link.close_reason == "We move to direct billing."
    subscription.refresh_from_db()
    own.refresh_from_db()
    # The partner keeps the term it paid for; the renewal is the customer's.
    assert subscription.billed_to == northwind.organization and subscription.billed_to_ends_at_renewal
    assert subscription.status == Subscription.Status.ACTIVE and subscription.current_period_end == start + timedelta(days=365)
    assert not own.billed_to_ends_at_renewal
    with pytest.raises(CustomerNotLinked):
        customer_for_partner(partner=northwind.partner, customer_id=linked.customer.public_id)

    renewal = subscription.current_period_end
    customer_mail = mailbox.text(mailbox.one(linked.admin.email, "are no longer linked"))
    assert_reads_well(customer_mail)
    assert f"Northwind Partners has paid until {renewal:%-d %b %Y}" in customer_mail
    assert "invoiced to you at list price" in customer_mail and "Nothing lapses" in customer_mail
    partner_mail = mailbox.text(mailbox.one(northwind.admin.email, "is no longer your customer"))
    assert f"Tracker Standard: you have paid until {renewal:%-d %b %Y}" in partner_mail
    assert '"We move to direct billing."' in partner_mail
    entry = AuditEntry.objects.get(action="link_ended")
    assert entry.summary == (
        "Acme Robotics ended the link between Acme Robotics and Northwind Partners; 1 subscription billed to "
        "Northwind Partners comes back to Acme Robotics at renewal."
    )
    with pytest.raises(PartnerError, match="not active"):
        link_end(link=link, actor=linked.admin, side=Side.CUSTOMER)


def test_staff_end_a_link_and_nobody_else_does_it_for_staff(northwind, mailbox):
    linked = customer_link(northwind.partner)
    with pytest.raises(PartnerError, match="Only staff"):
        link_end(link=linked.link, actor=linked.admin, side=Side.STAFF)
    staff = UserFactory(is_staff=True)
    link_end(link=linked.link, actor=staff, side=Side.STAFF, reason="Partner agreement ended.")
    assert PartnerLink.objects.get(pk=linked.link.pk).closed_by_side == Side.STAFF
    assert "Flywheel staff ended the link" in mailbox.text(mailbox.one(linked.admin.email))
    assert "paid for none of your subscriptions" in mailbox.text(mailbox.one(linked.admin.email))


def test_after_an_ended_link_a_new_partner_can_be_accepted(northwind, contoso):
    linked = customer_link(northwind.partner)
    link_end(link=linked.link, actor=northwind.admin, side=Side.PARTNER)
    invite = link_invite(partner=contoso.partner, actor=contoso.admin, email=linked.admin.email).link
    link_accept(link=invite, actor=linked.admin)
    assert PartnerLink.objects.get(pk=invite.pk).status == Status.ACTIVE
    # and the old partner may invite again later (a new link; the ended one is history)
    again = link_invite(partner=northwind.partner, actor=northwind.admin, email=linked.admin.email).link
    assert again.pk != linked.link.pk


@pytest.mark.django_db(transaction=True)
def test_two_partners_accepted_at_once_one_wins(catalog):
    import threading

    from django.db import connection

    from .conftest import partner_make

    first, second = partner_make(), partner_make(name="Contoso Channel")
    customer, admin, _ = _customer()
    links = [
        link_invite(partner=partner.partner, actor=partner.admin, email=admin.email).link for partner in (first, second)
    ]
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def accept(link):
        barrier.wait()
        try:
            link_accept(link=link, actor=admin)
            outcomes.append("accepted")
        except PartnerError as refusal:
            outcomes.append(refusal.message)
        finally:
            connection.close()

    threads = [threading.Thread(target=accept, args=(link,)) for link in links]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert outcomes.count("accepted") == 1 and len(outcomes) == 2
    assert "end that link first" in next(outcome for outcome in outcomes if outcome != "accepted")
    assert PartnerLink.objects.filter(customer=customer, status=Status.ACTIVE).count() == 1
    assert PartnerLink.objects.filter(customer=customer, status=Status.INVITED).count() == 1


def test_staff_end_a_link_from_the_admin_and_read_the_audit_log_there(client, northwind, mailbox):
    linked = customer_link(northwind.partner)
    staff = UserFactory(is_staff=True, is_superuser=True)
    client.force_login(staff)
    changelist = "/admin/partners/partnerlink/"
    form = client.post(changelist, {"action": "end_link", "_selected_action": [linked.link.pk]})
    assert "End these links for both sides" in form.content.decode()
    client.post(changelist, {"action": "end_link", "_selected_action": [linked.link.pk], "reason": "Agreement ended", "apply": "1"})
    link = PartnerLink.objects.get(pk=linked.link.pk)
    assert link.status == Status.ENDED and link.closed_by_side == Side.STAFF and link.close_reason == "Agreement ended"
    log = client.get("/admin/partners/auditentry/").content.decode()
    assert "Flywheel staff ended the link between Acme Robotics and Northwind Partners." in log
    entry = AuditEntry.objects.get(action="link_ended")
    assert client.get(f"/admin/partners/auditentry/{entry.pk}/change/").status_code == 200  # readable
    assert client.post(f"/admin/partners/auditentry/{entry.pk}/delete/", {"post": "yes"}).status_code == 403
    assert AuditEntry.objects.filter(pk=entry.pk).exists()
