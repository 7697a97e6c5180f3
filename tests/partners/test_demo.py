"""`partners_demo` (run by `demo_data`): Northwind Partners, Gold, with Hooli linked and billed
to it, an open request, an invitation waiting at Acme and an application waiting for staff."""

from __future__ import annotations

from django.core.management import call_command

from billing.models import Invoice, Subscription
from partners.models import AuditEntry, Partner, PartnerApplication, PartnerLink, PartnerRequest


def test_the_demo_is_made_once(catalog):
    call_command("demo_data", "--only-accounts")
    call_command("partners_demo")
    call_command("partners_demo")

    partner = Partner.objects.get()
    assert partner.organization.name == "Northwind Partners" and partner.tier == "gold"
    assert partner.organization.memberships.filter(user__email="partner@northwind.example", role="admin").exists()
    assert sorted(PartnerLink.objects.filter(status="active", partner=partner).values_list("customer__name", flat=True)) == [
        "Hooli", "Vandelay Industries",
    ]
    link = PartnerLink.objects.get(status="active", customer__name="Hooli")
    tracker = Subscription.objects.get(organization=link.customer)
    assert tracker.billed_to == partner.organization and tracker.billed_to_discount_bp == 1500 and tracker.seat_limit == 50
    invoice = Invoice.objects.get(organization=link.customer)
    assert invoice.bill_to == partner.organization and invoice.status == "paid"
    assert [line.description for line in invoice.lines.order_by("pk")] == [
        "Tracker Standard, 50 seats, annual", "Partner discount (Gold, 15 %)",
    ]
    assert invoice.total_minor == sum(line.amount_minor for line in invoice.lines.all())
    assert PartnerLink.objects.get(status="invited").customer.name == "Acme"
    assert PartnerRequest.objects.get().status == "open"
    assert PartnerApplication.objects.get(status="pending").company_name == "Tailspin Toys Consulting"
    assert AuditEntry.objects.filter(customer=link.customer).count() == 4
    # direct revenue beside the partners': Globex pays every month by card
    assert Invoice.objects.filter(organization__name="Globex", status="paid", bill_to__isnull=True).count() == 11
