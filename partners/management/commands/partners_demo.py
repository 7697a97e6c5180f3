"""Demo data for channel partners in `make run` (docs/partners.md):

| account | organization | what to try |
|---|---|---|
| partner@northwind.example (admin), liam@northwind.example | Northwind Partners, a Gold partner (15 % off) on purchase-order terms | /partner/: Hooli's Tracker (50 seats, billed to Northwind, renews in about two months), its open request, the invitation waiting at Acme |
| ivy@hooli.example (admin), ben@hooli.example | Hooli, Northwind's customer | /app/partner/: the partner, the activity log; Billing: "managed by Northwind Partners" |
| dana@acme.example | Acme | /app/partner/: Northwind's invitation to accept or decline |
| tom@tailspin.example | Tailspin Toys | its partner application, waiting for staff (/staff/partners/, the admin) |

What no service does (a term bought a year ago, an invoice paid then, a link accepted then) is
written directly, as demo data; the audit entries say what happened in plain words. Idempotent;
never in production. Run `demo_data --only-accounts` first (Acme)."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone

from accounts.management.commands.demo_data import DEMO_PASSWORD, demo_user_ensure
from accounts.models import Membership, Organization, User
from billing.models import BillingAccount, Invoice, Subscription
from billing.pricing import discount_minor, period_end_after, unit_price
from billing.services.billing_account import billing_account_of
from billing.services.invoices import discount_lines, invoice_issue
from catalog.models import Product
from catalog.selectors import edition_get

from ...models import AuditEntry, Partner, PartnerApplication, PartnerLink, PartnerRequest
from ...services.audit import audit_record

PARTNER_ADMIN, PARTNER_MEMBER = "partner@northwind.example", "liam@northwind.example"
CUSTOMER_ADMIN, CUSTOMER_MEMBER = "ivy@hooli.example", "ben@hooli.example"
APPLICANT = "tom@tailspin.example"
SEATS = 50
DISCOUNT_BP = 1500


def paid_invoice(
    subscription: Subscription, *, start, end, seats: int, bill_to: Organization | None, discount_bp: int,
    request_key: str, po_number: str = "",
) -> Invoice:
    """The invoice of one period of `subscription`, issued at `start` and paid 12 days later
    (demo data: written as billing issues it, then dated and marked paid)."""
    edition, interval = subscription.edition, subscription.interval
    price = unit_price(edition, interval)
    invoice = invoice_issue(
        organization=subscription.organization, subscription=subscription,
        kind=Invoice.Kind.CONVERSION if start == subscription.current_period_start or not subscription.invoices.exists() else Invoice.Kind.RENEWAL,
        edition=edition, seats=seats, interval=interval, unit_amount_minor=price, quantity=seats, amount_minor=price * seats,
        period_start=start, period_end=end,
        description=f"{edition}, {seats} seats, {'annual' if interval == Subscription.Interval.YEAR else 'monthly'}",
        lines=discount_lines(discount_minor(price * seats, discount_bp), discount_bp) if bill_to else [],
        bill_to=bill_to, discount_bp=discount_bp if bill_to else 0, request_key=request_key,
    )
    Invoice.objects.filter(pk=invoice.pk).update(
        issued_at=start, status=Invoice.Status.PAID, paid_at=start + timedelta(days=12 if po_number else 0), applied_at=start,
        collection_method=BillingAccount.Collection.INVOICE if po_number else BillingAccount.Collection.CARD,
        po_number=po_number, due_at=start + timedelta(days=30) if po_number else None,
    )
    return invoice


class Command(BaseCommand):
    help = "Create Northwind Partners (a Gold partner) with a linked customer, Hooli, and a pending application (never in production)."

    def handle(self, *args, **options):
        if settings.PRODUCTION:
            raise CommandError("partners_demo never runs in production.")
        if not Product.objects.filter(code="tracker").exists():
            self.stderr.write("The catalog is empty: run `python manage.py catalog_sync` first. Nothing created.")
            return
        with transaction.atomic():
            northwind = self._partner()
            initech = self._customer(northwind)
            self._invite_acme(northwind)
            self._second_customer(northwind)
            self._direct_customer()
            self._application()
        self.stdout.write(
            f"Partners demo (password {DEMO_PASSWORD}):\n"
            f"  {PARTNER_ADMIN}   admin of Northwind Partners (Gold): /partner/ (Hooli, its renewal and request)\n"
            f"  {CUSTOMER_ADMIN}       admin of {initech.name}, Northwind's customer: /app/partner/, Billing\n"
            f"  dana@acme.example         Acme has Northwind's invitation waiting at /app/partner/\n"
            f"  {APPLICANT}      Tailspin Toys applied to become a partner: /staff/partners/"
        )

    def _organization(self, name: str, admin: User, members: list[User]) -> Organization:
        membership = Membership.objects.filter(user=admin, role=Membership.Role.ADMIN).select_related("organization").first()
        if membership is not None:
            organization = membership.organization
        else:
            organization = Organization.objects.create(name=name, created_by=admin)
            Membership.objects.create(organization=organization, user=admin, role=Membership.Role.ADMIN, source=Membership.Source.SIGNUP)
        for member in members:
            Membership.objects.get_or_create(organization=organization, user=member, defaults={"source": Membership.Source.STAFF})
        return organization

    def _partner(self) -> Partner:
        admin = demo_user_ensure(PARTNER_ADMIN, "Nora West")
        organization = self._organization("Northwind Partners", admin, [demo_user_ensure(PARTNER_MEMBER, "Liam Ortiz")])
        partner = Partner.objects.filter(organization=organization).first()
        if partner is not None:
            return partner
        approved = timezone.now() - timedelta(days=400)
        application = PartnerApplication.objects.create(
            organization=organization, company_name="Northwind Partners Ltd", country="GB",
            website="https://northwind.example", contact_name="Nora West", contact_email="partners@northwind.example",
            description="Licences, onboarding and support for engineering teams of 50 to 500 people in the UK and Ireland.",
            status=PartnerApplication.Status.APPROVED, applied_by=admin, decided_at=approved,
        )
        partner = Partner.objects.create(
            organization=organization, application=application, tier="gold", country="GB",
            website=application.website, description=application.description,
            contact_email=application.contact_email, approved_at=approved,
        )
        account = billing_account_of(organization)
        account.collection_method = BillingAccount.Collection.INVOICE
        account.po_number = "NW-PO-2026"
        account.net_terms_days = 30
        account.legal_name = "Northwind Partners Ltd"
        account.billing_address = "12 Harbour Street\nLondon E14 5AB\nUnited Kingdom"
        account.billing_email = "billing@northwind.example"
        account.save()
        audit_record(
            partner=partner, customer=None, actor=None, actor_side=PartnerLink.Side.STAFF, action="partner_approved",
            summary="Staff approved Northwind Partners as a Gold partner.", detail={"tier": "gold"},
        )
        return partner

    def _customer(self, partner: Partner) -> Organization:
        admin = demo_user_ensure(CUSTOMER_ADMIN, "Ivy Chen")
        customer = self._organization("Hooli", admin, [demo_user_ensure(CUSTOMER_MEMBER, "Ben Okafor")])
        link = PartnerLink.objects.filter(partner=partner, customer=customer).first()
        if link is not None:
            return customer
        start = timezone.now() - timedelta(days=300)
        link = PartnerLink.objects.create(
            partner=partner, customer=customer, status=PartnerLink.Status.ACTIVE,
            invited_email=CUSTOMER_ADMIN, created_by=User.objects.get(email=PARTNER_ADMIN), accepted_by=admin,
            accepted_at=start - timedelta(days=2),
        )
        PartnerLink.objects.filter(pk=link.pk).update(created_at=start - timedelta(days=3))
        edition = edition_get(product_code="tracker", edition_code="standard")
        end = period_end_after(start, Subscription.Interval.YEAR)
        subscription = Subscription.objects.create(
            organization=customer, product=edition.product, edition=edition, status=Subscription.Status.ACTIVE,
            seat_limit=SEATS, interval=Subscription.Interval.YEAR, current_period_start=start, current_period_end=end,
            billed_to=partner.organization, billed_to_discount_bp=DISCOUNT_BP,
        )
        invoice = paid_invoice(
            subscription, start=start, end=end, seats=SEATS, bill_to=partner.organization, discount_bp=DISCOUNT_BP,
            request_key="demo:initech:tracker", po_number="NW-PO-2026",
        )
        partner_name = partner.organization.name
        for action, side, summary, when in (
            ("link_invited", PartnerLink.Side.PARTNER, f"{partner_name} invited Hooli to link as its customer.", start - timedelta(days=3)),
            ("link_accepted", PartnerLink.Side.CUSTOMER,
             f"Hooli and {partner_name} are linked: {partner_name} manages Hooli's subscriptions.", start - timedelta(days=2)),
            ("quote_accepted", PartnerLink.Side.PARTNER,
             f"{partner_name} bought Tracker Standard, {SEATS} seats, annual, for Hooli (invoice {invoice.number}, billed to {partner_name}).",
             start),
        ):
            entry = audit_record(partner=partner, customer=customer, actor=None, actor_side=side, action=action, summary=summary)
            AuditEntry.objects.filter(pk=entry.pk).update(created_at=when)
        request = PartnerRequest.objects.create(
            link=link, partner=partner, customer=customer, product=edition.product, kind=PartnerRequest.Kind.SEATS,
            seats_wanted=10, message="Ten engineers join us next month; can you add seats before then?",
            requested_by=User.objects.get(email=CUSTOMER_MEMBER),
        )
        PartnerRequest.objects.filter(pk=request.pk).update(created_at=timezone.now() - timedelta(days=2))
        entry = audit_record(
            partner=partner, customer=customer, actor=request.requested_by, actor_side=PartnerLink.Side.CUSTOMER,
            action="request_created", summary=f"Hooli asked {partner_name} for 10 more seats of Tracker.",
        )
        AuditEntry.objects.filter(pk=entry.pk).update(created_at=timezone.now() - timedelta(days=2))
        return customer

    def _second_customer(self, partner: Partner) -> None:
        """Vandelay Industries: Wiki Premium, 30 seats a year, bought by Northwind four months ago."""
        admin = demo_user_ensure("art@vandelay.example", "Art Vandelay")
        customer = self._organization("Vandelay Industries", admin, [])
        if PartnerLink.objects.filter(partner=partner, customer=customer).exists():
            return
        start = timezone.now() - timedelta(days=122)
        link = PartnerLink.objects.create(
            partner=partner, customer=customer, status=PartnerLink.Status.ACTIVE, created_by=User.objects.get(email=PARTNER_ADMIN),
            accepted_by=admin, accepted_at=start - timedelta(days=1),
        )
        edition = edition_get(product_code="wiki", edition_code="premium")
        subscription = Subscription.objects.create(
            organization=customer, product=edition.product, edition=edition, status=Subscription.Status.ACTIVE, seat_limit=30,
            interval=Subscription.Interval.YEAR, current_period_start=start,
            current_period_end=period_end_after(start, Subscription.Interval.YEAR),
            billed_to=partner.organization, billed_to_discount_bp=DISCOUNT_BP,
        )
        invoice = paid_invoice(
            subscription, start=start, end=subscription.current_period_end, seats=30, bill_to=partner.organization,
            discount_bp=DISCOUNT_BP, request_key="demo:vandelay:wiki", po_number="NW-PO-2026",
        )
        name = partner.organization.name
        for action, side, summary, when in (
            ("link_requested", PartnerLink.Side.CUSTOMER, f"Vandelay Industries asked {name} to become its partner.", start - timedelta(days=4)),
            ("link_accepted", PartnerLink.Side.PARTNER, f"Vandelay Industries and {name} are linked: {name} manages Vandelay Industries's subscriptions.", start - timedelta(days=1)),
            ("quote_accepted", PartnerLink.Side.PARTNER, f"{name} bought Wiki Premium, 30 seats, annual, for Vandelay Industries (invoice {invoice.number}, billed to {name}).", start),
        ):
            entry = audit_record(partner=partner, customer=customer, actor=None, actor_side=side, action=action, summary=summary, detail={"link": str(link.public_id)})
            AuditEntry.objects.filter(pk=entry.pk).update(created_at=when)

    def _direct_customer(self) -> None:
        """Globex: Tracker Standard, 20 seats, paid by card every month for eleven months (direct
        revenue beside the partners' on the staff partners page)."""
        admin = demo_user_ensure("gail@globex.example", "Gail Novak")
        customer = self._organization("Globex", admin, [])
        if Subscription.objects.filter(organization=customer).exists():
            return
        edition = edition_get(product_code="tracker", edition_code="standard")
        now = timezone.now()
        starts = [now - timedelta(days=30 * months) for months in range(10, -1, -1)]
        subscription = Subscription.objects.create(
            organization=customer, product=edition.product, edition=edition, status=Subscription.Status.ACTIVE, seat_limit=20,
            interval=Subscription.Interval.MONTH, current_period_start=starts[-1],
            current_period_end=period_end_after(starts[-1], Subscription.Interval.MONTH),
        )
        for index, start in enumerate(starts):
            paid_invoice(
                subscription, start=start, end=period_end_after(start, Subscription.Interval.MONTH), seats=20, bill_to=None,
                discount_bp=0, request_key=f"demo:globex:{index}",
            )

    def _invite_acme(self, partner: Partner) -> None:
        acme = Organization.objects.filter(memberships__user__email="dana@acme.example", memberships__role="admin").first()
        if acme is None or PartnerLink.objects.filter(partner=partner, customer=acme).exists():
            return
        PartnerLink.objects.create(
            partner=partner, customer=acme, status=PartnerLink.Status.INVITED, invited_email="dana@acme.example",
            message="We look after Tracker for 40 teams in London. Happy to take care of your renewal and seats.",
            created_by=User.objects.get(email=PARTNER_ADMIN),
        )
        audit_record(
            partner=partner, customer=acme, actor=None, actor_side=PartnerLink.Side.PARTNER, action="link_invited",
            summary=f"{partner.organization.name} invited {acme.name} to link as its customer.",
        )

    def _application(self) -> None:
        applicant = demo_user_ensure(APPLICANT, "Tom Baker")
        organization = self._organization("Tailspin Toys", applicant, [])
        if PartnerApplication.objects.filter(organization=organization).exists():
            return
        PartnerApplication.objects.create(
            organization=organization, company_name="Tailspin Toys Consulting", country="DE",
            website="https://tailspin.example", contact_name="Tom Baker", contact_email=APPLICANT, contact_phone="+49 30 1234567",
            description="We set up Tracker and Wiki for game studios in Germany and Austria, and run their renewals.",
            applied_by=applicant,
        )
