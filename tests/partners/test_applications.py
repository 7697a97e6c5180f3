"""Becoming a partner: an admin applies at /partner/apply/, staff hear of it, approve it with a
tier (or decline it with a note) in the admin, and the applicant is emailed both ways."""

from __future__ import annotations

import pytest

from partners.exceptions import PartnerError
from partners.models import AuditEntry, Partner, PartnerApplication
from partners.services.applications import (
    application_approve,
    application_decline,
    partner_set_tier,
)

from ..factories import OrganizationFactory, UserFactory
from .conftest import assert_reads_well, sign_in
from .factories import PartnerApplicationFactory, admin_of, member_of

FORM = {
    "company_name": "Northwind Partners Ltd",
    "country": "GB",
    "website": "northwind.example",
    "contact_name": "Nadia North",
    "contact_email": "Partners@Northwind.example",
    "contact_phone": "+44 20 7946 0000",
    "description": "Licences and onboarding for engineering teams of 50 to 500.",
}


@pytest.fixture
def firm(db):
    organization = OrganizationFactory(name="Northwind")
    return organization, admin_of(organization, "nadia@northwind.example"), member_of(organization)


@pytest.fixture
def staff(db):
    return UserFactory(email="ops@flywheel.example", is_staff=True, is_superuser=True)


def test_an_admin_applies_and_staff_hear_of_it(client, firm, staff, mailbox):
    organization, admin, _ = firm
    sign_in(client, admin, organization)
    page = client.get("/partner/apply/").content.decode()
    assert "You apply for <strong>Northwind</strong>" in page and 'value="nadia@northwind.example"' in page

    response = client.post("/partner/apply/", FORM, follow=True)
    assert "your application is with our staff" in response.content.decode()
    application = PartnerApplication.objects.get()
    assert application.organization == organization and application.status == "pending" and application.applied_by == admin
    assert application.website == "https://northwind.example" and application.contact_email == "partners@northwind.example"
    assert "Your application is waiting for review" in client.get("/partner/apply/").content.decode()

    to_staff = mailbox.one(staff.email)
    assert str(to_staff["Subject"]) == "[Flywheel] New partner application: Northwind Partners Ltd"
    text = mailbox.text(to_staff)
    assert_reads_well(text)
    assert "Northwind Partners Ltd (United Kingdom) applied to become a partner, for the organization Northwind." in text
    assert f"/admin/partners/partnerapplication/{application.pk}/change/" in text
    copy = mailbox.text(mailbox.one(admin.email))
    assert "Company: Northwind Partners Ltd\nCountry: United Kingdom" in copy

    again = client.post("/partner/apply/", FORM)
    assert PartnerApplication.objects.count() == 1 and again.status_code == 400
    assert "Northwind already applied on" in again.content.decode()


def test_staff_notify_setting_wins(client, firm, staff, mailbox, settings):
    settings.STAFF_NOTIFY = ["partners-desk@flywheel.example"]
    organization, admin, _ = firm
    sign_in(client, admin, organization)
    client.post("/partner/apply/", FORM)
    assert mailbox.one("partners-desk@flywheel.example") and not mailbox.to(staff.email)


def test_a_member_cannot_apply_and_bad_input_is_named(client, firm):
    organization, admin, member = firm
    sign_in(client, member, organization)
    response = client.post("/partner/apply/", FORM)
    assert response.status_code == 403
    assert "Only an admin of Northwind can apply" in response.content.decode()
    sign_in(client, admin, organization)
    response = client.post("/partner/apply/", {**FORM, "country": "XX", "contact_email": "nope", "company_name": ""})
    assert response.status_code == 400
    html = response.content.decode()
    assert "Select a valid choice" in html and "Enter a valid email address." in html and "This field is required." in html
    assert not PartnerApplication.objects.exists()


def test_staff_approve_in_the_admin_with_a_tier(client, staff, mailbox):
    application = PartnerApplicationFactory(company_name="Northwind Partners Ltd", contact_email="partners@northwind.example")
    admin_of(application.organization)
    client.force_login(staff)
    changelist = "/admin/partners/partnerapplication/"
    form = client.post(changelist, {"action": "approve", "_selected_action": [application.pk]})
    assert form.status_code == 200 and "Gold (15 % off)" in form.content.decode()
    response = client.post(changelist, {"action": "approve", "_selected_action": [application.pk], "tier": "gold", "apply": "1"}, follow=True)
    assert "Approved as Gold partners" in response.content.decode()

    partner = Partner.objects.get(organization=application.organization)
    assert partner.tier == "gold" and partner.status == "active" and partner.contact_email == "partners@northwind.example"
    application.refresh_from_db()
    assert application.status == "approved" and application.decided_by == staff
    welcome = mailbox.one("partners@northwind.example")
    assert str(welcome["Subject"]) == "[Flywheel] Northwind Partners Ltd is now a Flywheel partner"
    text = mailbox.text(welcome)
    assert_reads_well(text)
    assert "as a Gold partner. You buy for your customers at 15 % off list prices, annual terms." in text
    assert f"/partner/?organization={application.organization.public_id}" in text
    assert mailbox.one(application.applied_by.email)  # the person who applied, too
    assert AuditEntry.objects.get(action="partner_approved").summary.endswith("as a Gold partner.")
    with pytest.raises(PartnerError, match="already approved"):
        application_approve(application=application, actor=staff, tier="gold")


def test_staff_decline_with_a_note_and_the_firm_may_apply_again(client, firm, staff, mailbox):
    organization, admin, _ = firm
    application = PartnerApplicationFactory(organization=organization, applied_by=admin, contact_email="nadia@northwind.example")
    with pytest.raises(PartnerError, match="Write a note"):
        application_decline(application=application, actor=staff, note=" ")
    client.force_login(staff)
    client.post(
        "/admin/partners/partnerapplication/",
        {"action": "decline", "_selected_action": [application.pk], "note": "We need a website that describes your services.", "apply": "1"},
    )
    application.refresh_from_db()
    assert application.status == "declined"
    text = mailbox.text(mailbox.one("nadia@northwind.example"))
    assert_reads_well(text)
    assert '"We need a website that describes your services."' in text
    assert not Partner.objects.exists()

    sign_in(client, admin, organization)
    page = client.get("/partner/apply/").content.decode()
    assert "was declined: “We need a website that describes your services.” You may apply again." in page
    client.post("/partner/apply/", FORM)
    assert PartnerApplication.objects.filter(status="pending").count() == 1


def test_a_non_staff_user_cannot_decide(firm):
    organization, admin, _ = firm
    application = PartnerApplicationFactory(organization=organization)
    with pytest.raises(PartnerError, match="Only staff"):
        application_approve(application=application, actor=admin, tier="gold")


def test_a_tier_change_emails_the_partner(northwind, staff, mailbox):
    partner_set_tier(partner=northwind.partner, actor=staff, tier="platinum")
    northwind.partner.refresh_from_db()
    assert northwind.partner.tier == "platinum"
    text = mailbox.text(mailbox.one(northwind.admin.email))
    assert "moved from Gold to Platinum: quotes and purchases you make from now on are at 20 % off" in text


def test_a_partner_goes_to_its_dashboard_and_a_suspended_one_sees_nothing(client, northwind, staff):
    sign_in(client, northwind.admin, northwind.organization)
    assert client.get("/partner/apply/").url == "/partner/"
    client.force_login(staff)
    client.post("/admin/partners/partner/", {"action": "suspend", "_selected_action": [northwind.partner.pk]})
    assert Partner.objects.get(pk=northwind.partner.pk).status == "suspended"
    sign_in(client, northwind.admin, northwind.organization)
    response = client.get("/partner/")
    assert response.status_code == 404
    assert "This page is for approved partners. Apply to become one from /partner/apply/." in response.content.decode()
