"""Ask your partner: a customer's person asks, the partner's people are emailed and answer from
the inbox; the person who asked reads the answer."""

from __future__ import annotations

import pytest

from catalog.models import Product
from partners.exceptions import PartnerError
from partners.models import AuditEntry, PartnerLink, PartnerRequest
from partners.portfolio import requests_of
from partners.services.links import link_end
from partners.services.requests import request_answer, request_create

from .conftest import assert_reads_well, partner_make, sign_in
from .factories import admin_of


def test_a_member_asks_for_seats_and_the_partner_is_emailed(acme, northwind, mailbox, catalog):
    tracker = Product.objects.get(code="tracker")
    request = request_create(
        customer=acme.customer, actor=acme.member, kind="seats", product=tracker, seats_wanted=10,
        message="  Ten new engineers start on Monday. ",
    )
    assert request.partner == northwind.partner and request.link == acme.link and request.status == "open"
    assert request.message == "Ten new engineers start on Monday."
    message = mailbox.one(northwind.admin.email)
    assert northwind.partner.contact_email in message["To"]
    assert str(message["Subject"]) == "[Flywheel] Acme Robotics asks for 10 more seats of Tracker"
    text = mailbox.text(message)
    assert_reads_well(text)
    assert "Acme Robotics, your customer, asks Northwind Partners for 10 more seats of Tracker." in text
    assert '"Ten new engineers start on Monday."' in text
    assert f"/partner/requests/?organization={northwind.organization.public_id}" in text
    assert acme.member.email not in text  # the partner never learns who, only that the customer asks
    entry = AuditEntry.objects.get(action="request_created")
    assert entry.summary == "Acme Robotics asked Northwind Partners for 10 more seats of Tracker."


@pytest.mark.parametrize(
    ("kind", "seats", "message", "refusal"),
    [
        ("seats", None, "", "Enter how many more seats you need."),
        ("seats", 0, "", "Enter a number of seats from 1 to 100,000."),
        ("seats", 100_001, "", "Enter a number of seats from 1 to 100,000."),
        ("colour", None, "", "Choose what you are asking for"),
        ("other", None, "  ", "Say what you need in the message."),
        ("other", None, "x" * 1001, "Keep the message under 1,000 characters."),
    ],
)
def test_bad_requests_are_refused_with_a_sentence(acme, mailbox, kind, seats, message, refusal):
    with pytest.raises(PartnerError, match=refusal):
        request_create(customer=acme.customer, actor=acme.admin, kind=kind, seats_wanted=seats, message=message)
    assert not PartnerRequest.objects.exists() and not mailbox.to(acme.link.partner.contact_email)


def test_no_partner_no_request(db, northwind):
    lonely = partner_make(name="Lonely Firm")  # an organization with people but no link as a customer
    with pytest.raises(PartnerError, match="Lonely Firm has no partner"):
        request_create(customer=lonely.organization, actor=lonely.admin, kind="other", message="Hello")
    stranger = admin_of(northwind.organization)
    with pytest.raises(PartnerError, match="Only a member of Lonely Firm"):
        request_create(customer=lonely.organization, actor=stranger, kind="other", message="Hello")


def test_the_partner_answers_once_and_the_asker_reads_it(acme, northwind, mailbox, catalog):
    request = request_create(customer=acme.customer, actor=acme.member, kind="edition", product=Product.objects.get(code="tracker"))
    mailbox.clear()
    with pytest.raises(PartnerError, match="Say why you decline it"):
        request_answer(request=request, partner=northwind.partner, actor=northwind.member, status="declined", note="")
    request_answer(request=request, partner=northwind.partner, actor=northwind.member, status="done", note="Moved you to Premium.")
    request.refresh_from_db()
    assert request.status == "done" and request.handled_by == northwind.member
    answer = mailbox.one(acme.member.email)
    assert str(answer["Subject"]) == "[Flywheel] Northwind Partners answered your request for another edition of Tracker"
    text = mailbox.text(answer)
    assert_reads_well(text)
    assert "marked Acme Robotics' request for another edition of Tracker done" in text and '"Moved you to Premium."' in text
    assert "as a member of Acme Robotics" in text
    with pytest.raises(PartnerError, match="already marked done"):
        request_answer(request=request, partner=northwind.partner, actor=northwind.admin, status="declined", note="No")
    assert AuditEntry.objects.filter(action="request_done").get().summary == (
        'Northwind Partners marked Acme Robotics\' request for another edition of Tracker done: "Moved you to Premium."'
    )


def test_another_partner_cannot_answer(acme, contoso):
    request = request_create(customer=acme.customer, actor=acme.admin, kind="other", message="Call me")
    with pytest.raises(PartnerError, match="not one of yours"):
        request_answer(request=request, partner=contoso.partner, actor=contoso.admin, status="done")


def test_the_inbox_lists_open_requests_and_answers_them(client, acme, northwind, mailbox):
    request = request_create(customer=acme.customer, actor=acme.admin, kind="other", message="Can we talk about renewal?")
    sign_in(client, northwind.member, northwind.organization)
    page = client.get("/partner/requests/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "Can we talk about renewal?" in html and "Acme Robotics" in html and "Open (1)" in html
    assert acme.admin.email not in html

    response = client.post(f"/partner/requests/{request.public_id}/answer/", {"status": "maybe"}, follow=True)
    assert "Mark the request done or declined." in response.content.decode()
    assert PartnerRequest.objects.get(pk=request.pk).status == "open"
    response = client.post(f"/partner/requests/{request.public_id}/answer/", {"status": "done", "note": "Booked a call"}, follow=True)
    assert "Marked done; Acme Robotics was told." in response.content.decode()
    assert PartnerRequest.objects.get(pk=request.pk).status == "done"
    assert "No open request." in client.get("/partner/requests/").content.decode()
    assert "Done on" in client.get("/partner/requests/?status=done").content.decode()


def test_requests_through_an_ended_link_leave_the_inbox(acme, northwind):
    request_create(customer=acme.customer, actor=acme.admin, kind="other", message="Hello")
    link_end(link=acme.link, actor=acme.admin, side=PartnerLink.Side.CUSTOMER)
    assert not requests_of(partner=northwind.partner).exists()


def test_a_suspended_partner_takes_no_request(acme, northwind, mailbox):
    northwind.partner.status = "suspended"
    northwind.partner.save()
    with pytest.raises(PartnerError, match="Northwind Partners cannot take requests at the moment"):
        request_create(customer=acme.customer, actor=acme.admin, kind="other", message="Hello")
    assert not PartnerRequest.objects.exists() and not mailbox.to(northwind.admin.email)
