"""Channel partners: firms that buy and manage subscriptions on a customer's behalf.

A partner is an ordinary organization (accounts.Organization) that staff approved after it
applied (PartnerApplication -> Partner). It reaches a customer organization only through a
consented link (PartnerLink): the partner invites and the customer's admin accepts, or the
admin asks from the directory and the partner accepts. Everything a partner may see or do for a
customer goes through an active link; ended links keep their history.

Money stays in billing: a subscription a partner pays for names it as `billed_to`
(billing.Subscription), and its invoices name it as `bill_to`. Quotes (partner or direct) live
here because they are offers, not bills: accepting one calls billing's services.
"""

from __future__ import annotations

import uuid

from django.db import models
from django_countries.fields import CountryField


class PartnerApplication(models.Model):
    """A firm's request to become a partner, decided by staff in the admin (emails both ways).

    The applicant applies for an organization they administer (a new firm signs up first), so
    an approved application turns that organization into a partner."""

    class Status(models.TextChoices):
        PENDING = "pending", "Waiting for review"
        APPROVED = "approved", "Approved"
        DECLINED = "declined", "Declined"

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    organization = models.ForeignKey("accounts.Organization", on_delete=models.CASCADE, related_name="partner_applications")
    company_name = models.CharField(max_length=200)
    country = CountryField()
    website = models.URLField(max_length=200, blank=True)
    contact_name = models.CharField(max_length=120)
    contact_email = models.EmailField()
    contact_phone = models.CharField(max_length=40, blank=True)
    # What the firm does and for whom, in its own words: staff read it to decide.
    description = models.TextField(max_length=2000, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    applied_by = models.ForeignKey("accounts.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    decided_by = models.ForeignKey("accounts.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    decided_at = models.DateTimeField(null=True, blank=True)
    # Sent to the applicant with a decline; staff's own words.
    decision_note = models.TextField(max_length=2000, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["organization"], condition=models.Q(status="pending"), name="partner_application_one_pending"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.company_name} ({self.get_status_display()})"


class Partner(models.Model):
    """An organization staff approved as a channel partner. Its tier (a code of
    settings.PARTNER_TIERS) sets the discount it buys at."""

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        SUSPENDED = "suspended", "Suspended"

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    organization = models.OneToOneField("accounts.Organization", on_delete=models.CASCADE, related_name="partner")
    application = models.OneToOneField(PartnerApplication, null=True, blank=True, on_delete=models.SET_NULL, related_name="partner")
    tier = models.CharField(max_length=32)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    country = CountryField()
    website = models.URLField(max_length=200, blank=True)
    # Shown in the directory customers pick a partner from.
    description = models.TextField(max_length=2000, blank=True)
    listed = models.BooleanField(default=True, help_text="Shown in the partner directory customers choose from.")
    contact_email = models.EmailField()
    approved_at = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return str(self.organization)


class PartnerLink(models.Model):
    """A partner's consented relation to one customer organization.

    Invited (the partner asked) or requested (the customer's admin asked) until the other side
    accepts; then active until either side ends it. A customer has at most one active partner,
    and one pending link per partner; every link is kept with who did what and when."""

    class Status(models.TextChoices):
        INVITED = "invited", "Invited by the partner"
        REQUESTED = "requested", "Requested by the customer"
        ACTIVE = "active", "Active"
        DECLINED = "declined", "Declined"
        WITHDRAWN = "withdrawn", "Withdrawn"
        ENDED = "ended", "Ended"

    PENDING_STATUSES = (Status.INVITED, Status.REQUESTED)
    LIVE_STATUSES = (Status.INVITED, Status.REQUESTED, Status.ACTIVE)

    class Side(models.TextChoices):
        PARTNER = "partner", "The partner"
        CUSTOMER = "customer", "The customer"
        STAFF = "staff", "Staff"

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    partner = models.ForeignKey(Partner, on_delete=models.PROTECT, related_name="links")
    customer = models.ForeignKey("accounts.Organization", on_delete=models.CASCADE, related_name="partner_links")
    status = models.CharField(max_length=16, choices=Status.choices)
    # For an invite: the customer admin's address it was sent to.
    invited_email = models.EmailField(blank=True)
    message = models.TextField(max_length=1000, blank=True)
    created_by = models.ForeignKey("accounts.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    accepted_by = models.ForeignKey("accounts.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    accepted_at = models.DateTimeField(null=True, blank=True)
    closed_by = models.ForeignKey("accounts.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    closed_by_side = models.CharField(max_length=16, choices=Side.choices, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    close_reason = models.CharField(max_length=240, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["partner", "customer"],
                condition=models.Q(status__in=["invited", "requested", "active"]),
                name="partner_link_one_live_per_pair",
            ),
            models.UniqueConstraint(
                fields=["customer"], condition=models.Q(status="active"), name="partner_link_one_active_per_customer"
            ),
        ]
        indexes = [
            models.Index(fields=["partner", "status"], name="partner_link_partner_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.partner} for {self.customer} ({self.status})"


class QuoteSequence(models.Model):
    """The next quote number, taken under a row lock like invoice numbers: no gaps, no duplicates."""

    name = models.CharField(max_length=32, unique=True)
    next_number = models.PositiveBigIntegerField(default=1)

    def __str__(self) -> str:
        return f"{self.name}: next {self.next_number}"


class Quote(models.Model):
    """A priced offer for one customer organization (the licensee), numbered, valid until a date.

    Made by a partner (its tier's discount applied, the partner pays) or by the customer's own
    admin (a direct quote for procurement: no discount, paid against a purchase order). Its
    prices are fixed when it is made. Accepting it buys it once: a second accept finds it
    accepted; an expired or withdrawn quote cannot be accepted."""

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        ACCEPTED = "accepted", "Accepted"
        WITHDRAWN = "withdrawn", "Withdrawn"

    class PaidWith(models.TextChoices):
        CARD = "card", "Card on file"
        PURCHASE_ORDER = "purchase_order", "Purchase order"

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    number = models.CharField(max_length=32, unique=True)
    organization = models.ForeignKey("accounts.Organization", on_delete=models.PROTECT, related_name="quotes")
    partner = models.ForeignKey(Partner, null=True, blank=True, on_delete=models.PROTECT, related_name="quotes")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OPEN)
    interval = models.CharField(max_length=8)  # billing.Subscription.Interval
    currency = models.CharField(max_length=3)
    # List prices' sum, the discount (basis points of it, and its amount), and what is paid.
    subtotal_minor = models.PositiveBigIntegerField()
    discount_bp = models.PositiveIntegerField(default=0)
    discount_minor = models.PositiveBigIntegerField(default=0)
    total_minor = models.PositiveBigIntegerField()
    valid_until = models.DateTimeField()
    # Seller, bill-to and licensee as they were when it was made (printed on the page and PDF).
    seller_details = models.TextField(blank=True)
    bill_to_details = models.TextField(blank=True)
    licensee_details = models.TextField(blank=True)
    note = models.TextField(max_length=2000, blank=True)
    created_by = models.ForeignKey("accounts.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    accepted_by = models.ForeignKey("accounts.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    accepted_at = models.DateTimeField(null=True, blank=True)
    paid_with = models.CharField(max_length=16, choices=PaidWith.choices, blank=True)
    po_number = models.CharField(max_length=64, blank=True)
    withdrawn_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=~models.Q(status="accepted", accepted_at__isnull=True), name="quote_accepted_has_date"
            ),
            models.CheckConstraint(
                condition=models.Q(total_minor=models.F("subtotal_minor") - models.F("discount_minor")),
                name="quote_total_is_subtotal_less_discount",
            ),
        ]
        indexes = [
            models.Index(fields=["organization", "-created_at"], name="quote_org_created_idx"),
            models.Index(fields=["partner", "-created_at"], name="quote_partner_created_idx"),
        ]

    def __str__(self) -> str:
        return f"Quote {self.number}"


class QuoteLine(models.Model):
    """One priced line: a product's edition and seats for the term, or an add-on of it."""

    quote = models.ForeignKey(Quote, on_delete=models.CASCADE, related_name="lines")
    product = models.ForeignKey("catalog.Product", on_delete=models.PROTECT, related_name="+")
    edition = models.ForeignKey("catalog.Edition", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    addon = models.ForeignKey("catalog.AddOn", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    description = models.CharField(max_length=240)
    quantity = models.PositiveIntegerField()
    unit_amount_minor = models.PositiveBigIntegerField()
    amount_minor = models.PositiveBigIntegerField()
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["position", "pk"]
        constraints = [
            models.CheckConstraint(
                condition=(models.Q(edition__isnull=False, addon__isnull=True) | models.Q(edition__isnull=True, addon__isnull=False)),
                name="quote_line_edition_or_addon",
            ),
            models.CheckConstraint(condition=models.Q(quantity__gt=0), name="quote_line_quantity_positive"),
        ]

    def __str__(self) -> str:
        return self.description


class PartnerRequest(models.Model):
    """"Ask <partner>": a customer's person asks their partner for something (more seats, another
    edition, a product to try), from Flywheel's pages or the product's kit. The partner is
    notified; it marks the request done or declined."""

    class Kind(models.TextChoices):
        SEATS = "seats", "More seats"
        EDITION = "edition", "Another edition"
        PRODUCT = "product", "Another product"
        ADDON = "addon", "An add-on"
        OTHER = "other", "Something else"

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        DONE = "done", "Done"
        DECLINED = "declined", "Declined"

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    link = models.ForeignKey(PartnerLink, on_delete=models.PROTECT, related_name="requests")
    partner = models.ForeignKey(Partner, on_delete=models.PROTECT, related_name="requests")
    customer = models.ForeignKey("accounts.Organization", on_delete=models.CASCADE, related_name="partner_requests")
    product = models.ForeignKey("catalog.Product", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    seats_wanted = models.PositiveIntegerField(null=True, blank=True)
    message = models.TextField(max_length=1000, blank=True)
    requested_by = models.ForeignKey("accounts.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OPEN)
    created_at = models.DateTimeField(auto_now_add=True)
    handled_by = models.ForeignKey("accounts.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    handled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["partner", "status", "-created_at"], name="partner_request_inbox_idx")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} for {self.customer}"


class AuditEntry(models.Model):
    """One thing a partner (or a customer about its partner) did, kept for good: read by staff
    and by the customer's admins. `summary` is a sentence in the reader's words; `detail` keeps
    the ids and figures behind it."""

    partner = models.ForeignKey(Partner, null=True, blank=True, on_delete=models.PROTECT, related_name="audit_entries")
    customer = models.ForeignKey("accounts.Organization", null=True, blank=True, on_delete=models.CASCADE, related_name="partner_audit_entries")
    actor = models.ForeignKey("accounts.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    # Which side acted, kept apart from the actor (who may leave).
    actor_side = models.CharField(max_length=16, choices=PartnerLink.Side.choices)
    action = models.CharField(max_length=64)
    summary = models.CharField(max_length=400)
    detail = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [
            models.Index(fields=["customer", "-created_at"], name="partner_audit_customer_idx"),
            models.Index(fields=["partner", "-created_at"], name="partner_audit_partner_idx"),
        ]

    def __str__(self) -> str:
        return self.summary
