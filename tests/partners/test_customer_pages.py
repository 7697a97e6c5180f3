"""What a customer sees of its partner, under /app/partner/ (partners/views/customer.py): its
partner and what it manages, invitations to accept or decline, the directory, "ask <partner>",
ending the partnership and the activity log. Members see and ask; admins change things; another
organization's ids are a 404 with one sentence."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from billing.models import Subscription
from billing.services.subscriptions import subscription_start_trial
from catalog.models import Product
from catalog.selectors import edition_get
from config.celery import app as celery_app
from partners.models import AuditEntry, PartnerLink, PartnerRequest
from partners.services.audit import audit_record

from ..billing.helpers import visible_text, workspace_ready
from ..conftest import organization_on
from ..factories import UserFactory
from .conftest import customer_link, partner_make, sign_in
from .factories import PartnerFactory, PartnerLinkFactory, PartnerRequestFactory, admin_of

pytestmark = pytest.mark.django_db


@pytest.fixture
def eager_mail():
    """Mail is sent in-process (mail.outbox) once the transaction commits."""
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = False


def _text(response) -> str:
    return visible_text(response.content.decode())


def _managed(customer, partner_organization, *, seats: int = 50) -> Subscription:
    """The customer's Tracker Standard, a year paid by the partner."""
    subscription = subscription_start_trial(
        organization=customer, edition=edition_get(product_code="tracker", edition_code="standard"), actor=None
    )
    now = timezone.now()
    Subscription.objects.filter(pk=subscription.pk).update(
        status=Subscription.Status.ACTIVE,
        interval=Subscription.Interval.YEAR,
        trial_ends_at=None,
        current_period_start=now - timedelta(days=65),
        current_period_end=now + timedelta(days=300),
        seat_limit=seats,
        billed_to=partner_organization,
        billed_to_discount_bp=1500,
    )
    subscription.refresh_from_db()
    return subscription


# /app/partner/ --------------------------------------------------------------------------------


def test_a_member_sees_the_partner_and_what_it_manages_without_the_admins_actions(client, catalog, northwind, acme):
    _managed(acme.customer, northwind.organization)
    sign_in(client, acme.member, acme.customer)
    page = client.get(reverse("partners:customer_partner"))
    assert page.status_code == 200
    text = _text(page)
    assert "Northwind Partners" in text and "Gold partner" in text
    assert "Tracker Standard" in text and "50 seats" in text
    assert "Ask Northwind Partners" in text
    for admin_only in ("Move to direct billing", "End the partnership", "What they did"):
        assert admin_only not in text
    # The admin's pages answer a member as a page that does not exist.
    for name in ("customer_direct", "customer_activity", "customer_link_end"):
        assert client.get(reverse(f"partners:{name}")).status_code == 404


def test_an_admin_sees_what_to_do_and_a_customer_without_partner_is_pointed_to_the_directory(client, catalog, northwind, acme):
    _managed(acme.customer, northwind.organization)
    sign_in(client, acme.admin, acme.customer)
    text = _text(client.get(reverse("partners:customer_partner")))
    assert "Move to direct billing" in text and "End the partnership with Northwind Partners" in text

    loner = organization_on("standard")[1]
    client.force_login(loner)
    page = client.get(reverse("partners:customer_partner"))
    assert page.status_code == 200
    assert "You buy directly from Flywheel" in _text(page)


def test_someone_outside_any_organization_gets_a_404(client, db):
    client.force_login(UserFactory())
    assert client.get(reverse("partners:customer_partner")).status_code == 404


# Invitations ---------------------------------------------------------------------------------


@pytest.fixture
def invited(northwind):
    """Globex, invited by Northwind (pending), with its admin and a member."""
    return customer_link(northwind.partner, name="Globex", status=PartnerLink.Status.INVITED)


def test_the_admin_reads_what_accepting_means_and_accepts(client, invited, northwind, eager_mail, django_capture_on_commit_callbacks):
    sign_in(client, invited.admin, invited.customer)
    text = _text(client.get(reverse("partners:customer_partner")))
    assert "Northwind Partners invited Globex to be its customer" in text
    assert "never sees your members' names or addresses" in text
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("partners:customer_link_answer", args=[invited.link.public_id]), {"action": "accept"}, follow=True
        )
    assert "Northwind Partners is now your partner" in _text(response)
    invited.link.refresh_from_db()
    assert invited.link.status == PartnerLink.Status.ACTIVE and invited.link.accepted_by == invited.admin
    assert AuditEntry.objects.filter(customer=invited.customer, action__icontains="accept").exists()
    # The partner is told, by email, in words.
    told = [message for message in mail.outbox if northwind.admin.email in message.to]
    assert told and "Globex" in told[-1].body


def test_the_home_page_shows_the_invitation_to_the_admin_only(client, catalog, invited):
    subscription_start_trial(
        organization=invited.customer, edition=edition_get(product_code="tracker", edition_code="standard"), actor=None
    )
    workspace_ready(invited.customer)
    sign_in(client, invited.admin, invited.customer)
    assert "Northwind Partners invited Globex to be its customer" in _text(client.get(reverse("home")))
    sign_in(client, invited.member, invited.customer)
    assert "invited Globex" not in _text(client.get(reverse("home")))


def test_declining_closes_the_invitation(client, invited):
    sign_in(client, invited.admin, invited.customer)
    client.post(reverse("partners:customer_link_answer", args=[invited.link.public_id]), {"action": "decline"})
    invited.link.refresh_from_db()
    assert invited.link.status == PartnerLink.Status.DECLINED
    text = _text(client.get(reverse("partners:customer_partner")))
    assert "Waiting for an answer" not in text
    assert "Northwind Partners: declined" in text


def test_a_member_cannot_answer_and_nothing_changes(client, invited):
    sign_in(client, invited.member, invited.customer)
    response = client.post(reverse("partners:customer_link_answer", args=[invited.link.public_id]), {"action": "accept"})
    assert response.status_code == 404
    invited.link.refresh_from_db()
    assert invited.link.status == PartnerLink.Status.INVITED


def test_accepting_a_second_partner_is_refused_with_a_sentence(client, acme, contoso):
    second = PartnerLinkFactory(partner=contoso.partner, customer=acme.customer, status=PartnerLink.Status.INVITED)
    sign_in(client, acme.admin, acme.customer)
    page = client.get(reverse("partners:customer_partner"))
    assert "End the partnership with Northwind Partners first" in _text(page)
    response = client.post(reverse("partners:customer_link_answer", args=[second.public_id]), {"action": "accept"}, follow=True)
    assert "Northwind" in _text(response)
    second.refresh_from_db()
    acme.link.refresh_from_db()
    assert second.status == PartnerLink.Status.INVITED and acme.link.status == PartnerLink.Status.ACTIVE


def test_another_organizations_invitation_is_a_404_with_one_sentence(client, invited, northwind):
    other = customer_link(northwind.partner, name="Initech", status=PartnerLink.Status.INVITED)
    sign_in(client, invited.admin, invited.customer)
    for link_id in (other.link.public_id, "0b9c2d52-9b5e-4c3a-8c89-3f9d8f3f7a11"):
        response = client.post(reverse("partners:customer_link_answer", args=[link_id]), {"action": "accept"})
        assert response.status_code == 404
        assert "Your organization has no partner invitation with that id." in _text(response)
        assert "Initech" not in _text(response)
    other.link.refresh_from_db()
    assert other.link.status == PartnerLink.Status.INVITED


def test_an_unknown_answer_is_a_400(client, invited):
    sign_in(client, invited.admin, invited.customer)
    response = client.post(reverse("partners:customer_link_answer", args=[invited.link.public_id]), {"action": "maybe"})
    assert response.status_code == 400
    assert "Choose to accept or decline" in _text(response)


# The directory -------------------------------------------------------------------------------


def test_the_directory_lists_listed_partners_and_an_admin_asks_one(
    client, northwind, eager_mail, django_capture_on_commit_callbacks
):
    hidden = partner_make(name="Hidden Reseller")
    hidden.partner.listed = False
    hidden.partner.save()
    customer = partner_free_customer = customer_link(northwind.partner, name="Umbrella", status=PartnerLink.Status.ENDED)
    sign_in(client, partner_free_customer.admin, customer.customer)
    page = client.get(reverse("partners:customer_directory"))
    text = _text(page)
    assert "Northwind Partners" in text and "Gold partner · United Kingdom" in text
    assert "Hidden Reseller" not in text
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("partners:customer_directory_request", args=[northwind.partner.public_id]),
            {"message": "We are 40 people and grow fast."},
            follow=True,
        )
    assert "Northwind Partners has your request" in _text(response)
    requested = PartnerLink.objects.get(customer=customer.customer, status=PartnerLink.Status.REQUESTED)
    assert requested.message == "We are 40 people and grow fast."
    assert any(northwind.admin.email in message.to for message in mail.outbox)
    # Now waiting: the directory says so instead of offering to ask again.
    assert "Asked on" in _text(client.get(reverse("partners:customer_directory")))


def test_a_customer_with_a_partner_is_told_to_end_it_before_asking_another(client, acme, contoso):
    sign_in(client, acme.admin, acme.customer)
    text = _text(client.get(reverse("partners:customer_directory")))
    assert "Northwind Partners is your partner. You can have one partner at a time" in text
    assert "Ask Contoso Channel to be your partner" not in text
    client.post(reverse("partners:customer_directory_request", args=[contoso.partner.public_id]), {"message": ""})
    assert not PartnerLink.objects.filter(partner=contoso.partner).exists()


def test_a_note_too_long_is_a_400_and_nothing_is_asked(client, northwind):
    customer = customer_link(northwind.partner, name="Umbrella", status=PartnerLink.Status.ENDED)
    sign_in(client, customer.admin, customer.customer)
    response = client.post(
        reverse("partners:customer_directory_request", args=[northwind.partner.public_id]), {"message": "x" * 1001}
    )
    assert response.status_code == 400
    assert "Keep the note to 1,000 characters: nothing was sent." in _text(response)
    assert not PartnerLink.objects.filter(customer=customer.customer, status=PartnerLink.Status.REQUESTED).exists()


def test_an_unlisted_partner_cannot_be_asked_by_its_id(client, catalog):
    unlisted = PartnerFactory(listed=False)
    loner_admin = admin_of(organization_on("standard")[0])
    client.force_login(loner_admin)
    response = client.post(reverse("partners:customer_directory_request", args=[unlisted.public_id]), {})
    assert response.status_code == 404
    assert not PartnerLink.objects.filter(partner=unlisted).exists()


# Ask <partner> -------------------------------------------------------------------------------


def test_a_member_asks_the_partner_for_seats_from_the_kits_link(
    client, catalog, northwind, acme, eager_mail, django_capture_on_commit_callbacks
):
    _managed(acme.customer, northwind.organization)
    sign_in(client, acme.member, acme.customer)
    page = client.get(reverse("partners:ask") + "?product=tracker&kind=seats&seats=5")
    assert page.status_code == 200
    html = page.content.decode()
    assert "Ask Northwind Partners" in _text(page)
    assert 'value="tracker" selected' in html and 'value="seats" selected' in html
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("partners:ask"),
            {"product": "tracker", "kind": "seats", "seats_wanted": "5", "message": "Five new engineers start Monday."},
        )
    assert response.status_code == 302
    asked = PartnerRequest.objects.get(customer=acme.customer)
    assert (asked.kind, asked.seats_wanted, asked.product.code, asked.requested_by) == ("seats", 5, "tracker", acme.member)
    assert response["Location"] == reverse("partners:customer_ask_sent", args=[asked.public_id])
    sent = _text(client.get(response["Location"]))
    assert "Northwind Partners has your request: 5 more seats of Tracker." in sent
    assert "Nothing is bought or charged until they act" in sent
    told = [message for message in mail.outbox if northwind.admin.email in message.to]
    assert told and "Acme Robotics" in told[-1].body and "5" in told[-1].body


def test_bad_input_is_a_400_naming_the_field_and_nothing_is_written(client, catalog, northwind, acme):
    sign_in(client, acme.member, acme.customer)
    for data, sentence in (
        ({"product": "tracker", "kind": "seats", "seats_wanted": ""}, "Enter how many more seats you need."),
        ({"product": "tracker", "kind": "seats", "seats_wanted": "0"}, "greater than or equal to 1"),
        ({"product": "nothing", "kind": "seats", "seats_wanted": "3"}, "Select a valid choice"),
        ({"product": "tracker", "kind": "other", "message": ""}, "Say what you need in the message."),
    ):
        response = client.post(reverse("partners:ask"), data)
        assert response.status_code == 400, data
        assert sentence in _text(response), (data, _text(response))
    assert not PartnerRequest.objects.exists()


def test_without_a_partner_the_ask_page_says_so(client, catalog):
    organization, admin = organization_on("standard")
    client.force_login(admin)
    page = client.get(reverse("partners:ask") + "?product=tracker&kind=seats")
    assert page.status_code == 200
    assert f"{organization.name} has no partner right now" in _text(page)
    assert client.post(reverse("partners:ask"), {"product": "tracker", "kind": "seats", "seats_wanted": "2"}).status_code == 200
    assert not PartnerRequest.objects.exists()


def test_another_organizations_request_is_a_404(client, catalog, northwind, acme):
    other = customer_link(northwind.partner, name="Initech")

    theirs = PartnerRequestFactory(link=other.link, product=Product.objects.get(code="tracker"))
    sign_in(client, acme.admin, acme.customer)
    response = client.get(reverse("partners:customer_ask_sent", args=[theirs.public_id]))
    assert response.status_code == 404
    assert "Initech" not in _text(response)


# Ending the partnership ----------------------------------------------------------------------


def test_the_admin_reads_what_ending_does_then_ends_it(client, catalog, northwind, acme):
    subscription = _managed(acme.customer, northwind.organization)
    sign_in(client, acme.admin, acme.customer)
    page = client.get(reverse("partners:customer_link_end"))
    text = _text(page)
    renews = subscription.current_period_end
    assert f"paid by Northwind Partners until {renews:%-d %b %Y}" in text
    assert "from then it renews billed to Acme Robotics, at list price" in text
    response = client.post(reverse("partners:customer_link_end"), {"reason": "We have our own procurement now."}, follow=True)
    assert "Northwind Partners is no longer your partner" in _text(response)
    acme.link.refresh_from_db()
    subscription.refresh_from_db()
    assert acme.link.status == PartnerLink.Status.ENDED and acme.link.closed_by_side == "customer"
    assert subscription.billed_to_id == northwind.organization.pk and subscription.billed_to_ends_at_renewal
    # Still managed until the renewal, and the partner page says when it becomes the customer's.
    assert f"Billed to Acme Robotics from {renews:%-d %b %Y}" in _text(client.get(reverse("partners:customer_partner")))
    assert client.get(reverse("partners:customer_link_end")).status_code == 404


# The activity log ----------------------------------------------------------------------------


def test_the_admin_reads_the_audit_log_newest_first_and_only_their_own(client, northwind, acme, contoso):
    audit_record(partner=northwind.partner, customer=acme.customer, actor=northwind.admin, actor_side="partner",
                 action="quote_made", summary="Northwind Partners made quote Q-2026-000001 for Tracker.")
    audit_record(partner=northwind.partner, customer=acme.customer, actor=northwind.admin, actor_side="partner",
                 action="seats_added", summary="Northwind Partners added 10 seats to Tracker.")
    other = customer_link(contoso.partner, name="Initech")
    audit_record(partner=contoso.partner, customer=other.customer, actor=contoso.admin, actor_side="partner",
                 action="seats_added", summary="Contoso Channel added 3 seats to Tracker.")
    sign_in(client, acme.admin, acme.customer)
    text = _text(client.get(reverse("partners:customer_activity")))
    assert text.index("added 10 seats") < text.index("made quote Q-2026-000001")
    assert "Contoso" not in text
    # Partner people are named by their firm, never by name or address.
    assert northwind.admin.email not in text


def test_an_entry_whose_person_is_gone_is_signed_by_the_organization(client, acme):
    # The actor left (or the entry was written by the system): the log names the organization.
    audit_record(partner=None, customer=acme.customer, actor=None, actor_side="customer",
                 action="link_ended", summary="Acme Robotics ended the partnership with Northwind Partners.")
    sign_in(client, acme.admin, acme.customer)
    response = client.get(reverse("partners:customer_activity"))
    assert response.status_code == 200
    assert "ended the partnership" in _text(response) and "Acme Robotics" in _text(response)
