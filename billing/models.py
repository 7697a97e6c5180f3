"""Subscriptions: an organization's right to use one product in one edition.

A trial is a subscription in status `trialing` with a trial end; payments (the billing issue)
move it to `active` without a new model.
"""

from __future__ import annotations

import uuid

from django.db import models


class Subscription(models.Model):
    class Status(models.TextChoices):
        TRIALING = "trialing", "Trialing"
        ACTIVE = "active", "Active"
        PAST_DUE = "past_due", "Past due"
        SUSPENDED = "suspended", "Suspended"
        CANCELED = "canceled", "Canceled"

    class Interval(models.TextChoices):
        MONTH = "month", "Monthly"
        YEAR = "year", "Annual"

    LIVE_STATUSES = (Status.TRIALING, Status.ACTIVE, Status.PAST_DUE, Status.SUSPENDED)

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    organization = models.ForeignKey(
        "accounts.Organization", on_delete=models.CASCADE, related_name="subscriptions"
    )
    product = models.ForeignKey("catalog.Product", on_delete=models.PROTECT, related_name="+")
    edition = models.ForeignKey("catalog.Edition", on_delete=models.PROTECT, related_name="+")
    status = models.CharField(max_length=16, choices=Status.choices)
    seat_limit = models.PositiveIntegerField()
    trial_ends_at = models.DateTimeField(null=True, blank=True)
    # When its trial started, kept for good (trial_ends_at is cleared when the trial ends): one
    # trial per organization and product, whatever became of the subscription.
    trial_started_at = models.DateTimeField(null=True, blank=True)
    # Set once the subscription is paid for; empty for trials and the Free edition.
    interval = models.CharField(max_length=8, choices=Interval.choices, blank=True)
    current_period_start = models.DateTimeField(null=True, blank=True)
    current_period_end = models.DateTimeField(null=True, blank=True)
    # Changes that wait for the period end: a smaller edition, fewer seats.
    pending_edition = models.ForeignKey(
        "catalog.Edition", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    pending_seat_limit = models.PositiveIntegerField(null=True, blank=True)
    # Trial reminders already sent, in days before the end (e.g. [7, 3]).
    trial_reminders_sent = models.JSONField(default=list, blank=True)
    # Dunning: since when the renewal is unpaid, how many retries so far, when the next is due.
    past_due_since = models.DateTimeField(null=True, blank=True)
    dunning_attempts = models.PositiveSmallIntegerField(default=0)
    next_dunning_at = models.DateTimeField(null=True, blank=True)
    suspended_at = models.DateTimeField(null=True, blank=True)
    # Cancellation: a paid subscription ends at its period end (until then it can be kept after
    # all); anything else ends at once. The reason is the admin's own words, for the growth team.
    cancel_at_period_end = models.BooleanField(default=False)
    canceled_at = models.DateTimeField(null=True, blank=True)
    cancellation_reason = models.CharField(max_length=240, blank=True)
    started_by = models.ForeignKey(
        "accounts.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Who pays, when not the organization itself: a channel partner (partners app) that bought
    # it on the organization's behalf. Its invoices are billed to that organization (its card or
    # purchase-order terms), at `billed_to_discount_bp` (basis points) off list prices. The
    # organization stays the licensee: its people, seats and data are its own.
    billed_to = models.ForeignKey(
        "accounts.Organization", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    billed_to_discount_bp = models.PositiveIntegerField(default=0)
    # The partner link ended (or the admin chose to take over at renewal): the next renewal is
    # the organization's own, billed to it at list prices.
    billed_to_ends_at_renewal = models.BooleanField(default=False)
    # Bought against a purchase order (a quote accepted with a PO number): its invoices,
    # renewals included, are on net terms quoting this number, whatever the payer's account's
    # collection method. Blank: the payer's account decides.
    purchase_order_number = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(billed_to__isnull=False) | models.Q(billed_to_discount_bp=0, billed_to_ends_at_renewal=False),
                name="subscription_payer_terms_need_payer",
            ),
            models.CheckConstraint(condition=models.Q(billed_to_discount_bp__lt=10000), name="subscription_discount_below_whole"),
            models.UniqueConstraint(
                fields=["organization", "product"],
                condition=~models.Q(status="canceled"),
                name="subscription_one_live_per_product",
            ),
            models.CheckConstraint(condition=models.Q(seat_limit__gt=0), name="subscription_seats_positive"),
            models.CheckConstraint(
                condition=~models.Q(status="trialing", trial_ends_at__isnull=True),
                name="subscription_trial_has_end",
            ),
        ]
        indexes = [
            models.Index(fields=["trial_ends_at"], condition=models.Q(status="trialing"), name="subscription_trial_end_idx"),
            models.Index(
                fields=["current_period_end"], condition=models.Q(status="active"), name="subscription_renewal_idx"
            ),
            models.Index(
                fields=["next_dunning_at"], condition=models.Q(status="past_due"), name="subscription_dunning_idx"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.organization} {self.edition} ({self.status})"


class BillingAccount(models.Model):
    """An organization's payer record: its Stripe customer and the card on file."""

    organization = models.OneToOneField(
        "accounts.Organization", on_delete=models.CASCADE, related_name="billing_account"
    )
    class Collection(models.TextChoices):
        CARD = "card", "Card, charged automatically"
        INVOICE = "invoice", "Invoice with a purchase order, paid by transfer"

    stripe_customer_id = models.CharField(max_length=64, blank=True)
    collection_method = models.CharField(max_length=8, choices=Collection.choices, default=Collection.CARD)
    net_terms_days = models.PositiveSmallIntegerField(default=30)
    po_number = models.CharField(max_length=64, blank=True)
    billing_email = models.EmailField(blank=True)
    # When an admin asked to pay by invoice; pending while the collection method is still
    # card. Staff accept by switching the method, or clear this to decline.
    invoice_terms_requested_at = models.DateTimeField(null=True, blank=True)
    # Who invoices are made out to (the organization's name when blank), printed on each
    # invoice as it was when the invoice was issued.
    legal_name = models.CharField(max_length=200, blank=True)
    billing_address = models.TextField(max_length=500, blank=True)
    tax_id = models.CharField(max_length=32, blank=True)
    payment_method_id = models.CharField(max_length=64, blank=True)
    card_brand = models.CharField(max_length=32, blank=True)
    card_last4 = models.CharField(max_length=4, blank=True)
    card_exp_month = models.PositiveSmallIntegerField(null=True, blank=True)
    card_exp_year = models.PositiveSmallIntegerField(null=True, blank=True)
    # The SetupIntent that put the card on file, and when Stripe created it: a card confirmed
    # earlier (its webhook or page arriving late) never replaces a newer one.
    card_setup_intent_id = models.CharField(max_length=64, blank=True)
    card_setup_created_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["stripe_customer_id"],
                condition=~models.Q(stripe_customer_id=""),
                name="billing_account_customer_unique",
            )
        ]

    def __str__(self) -> str:
        return f"Billing of {self.organization}"

    @property
    def has_card(self) -> bool:
        return bool(self.payment_method_id)

    @property
    def invoice_terms_pending(self) -> bool:
        return self.invoice_terms_requested_at is not None and self.collection_method == self.Collection.CARD


class InvoiceSequence(models.Model):
    """The next invoice number. Its row is locked while a number is taken, so numbers have no
    gaps and no duplicates: a number is only taken in the transaction that issues the invoice."""

    name = models.CharField(max_length=32, unique=True)
    next_number = models.PositiveBigIntegerField(default=1)

    def __str__(self) -> str:
        return f"{self.name}: next {self.next_number}"


class Invoice(models.Model):
    """A bill: numbered and immutable once issued. Paying it applies its change once."""

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        PAID = "paid", "Paid"
        VOID = "void", "Void"

    class Kind(models.TextChoices):
        CONVERSION = "conversion", "Trial to paid"
        SEATS = "seats", "Added seats"
        UPGRADE = "upgrade", "Edition upgrade"
        RENEWAL = "renewal", "Renewal"
        ADDON = "addon", "Add-on"
        # The licensee takes over a partner-billed subscription now: the rest of the current
        # term at list price; paying it clears the payer and credits the partner's unused days.
        TAKEOVER = "takeover", "Take-over from a partner"

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    organization = models.ForeignKey("accounts.Organization", on_delete=models.PROTECT, related_name="invoices")
    number = models.CharField(max_length=32, unique=True)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.OPEN)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    currency = models.CharField(max_length=3)
    total_minor = models.PositiveBigIntegerField()
    issued_at = models.DateTimeField()
    paid_at = models.DateTimeField(null=True, blank=True)
    collection_method = models.CharField(max_length=8, default="card")
    due_at = models.DateTimeField(null=True, blank=True)
    po_number = models.CharField(max_length=64, blank=True)
    overdue_reminders_sent = models.PositiveSmallIntegerField(default=0)
    # Seller and customer as they were at issue (settings.SELLER_DETAILS, the billing account);
    # empty on invoices issued before these were kept.
    seller_details = models.TextField(blank=True)
    customer_details = models.TextField(blank=True)
    # Billed to another organization (a channel partner paying for `organization`, the
    # licensee): its details are `customer_details`, the licensee is printed beside them, and
    # the invoice's emails and receipts go to it. Empty: billed to the organization itself.
    bill_to = models.ForeignKey(
        "accounts.Organization", null=True, blank=True, on_delete=models.PROTECT, related_name="invoices_billed"
    )
    licensee_details = models.TextField(blank=True)
    # The payer's discount (basis points) its lines were priced at; paying a conversion billed to
    # a payer makes it the subscription's `billed_to_discount_bp`.
    discount_bp = models.PositiveIntegerField(default=0)
    # What paying this invoice does to a subscription, applied exactly once (applied_at).
    subscription = models.ForeignKey(Subscription, on_delete=models.PROTECT, related_name="invoices")
    target_edition = models.ForeignKey("catalog.Edition", on_delete=models.PROTECT, related_name="+")
    target_seats = models.PositiveIntegerField()
    target_interval = models.CharField(max_length=8, choices=Subscription.Interval.choices)
    period_start = models.DateTimeField()
    period_end = models.DateTimeField()
    # For added seats: how many, granted on payment on top of whatever the limit is then.
    seats_delta = models.PositiveIntegerField(default=0)
    # The key of the request that issued it: a repeated request finds this invoice.
    request_key = models.CharField(max_length=64, blank=True)
    applied_at = models.DateTimeField(null=True, blank=True)
    # For an add-on invoice (kind addon): the add-on it buys, granted (exactly once) when it is
    # paid, or at once on purchase-order terms. `subscription` is the base subscription.
    addon = models.ForeignKey("catalog.AddOn", null=True, blank=True, on_delete=models.PROTECT, related_name="+")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "request_key"],
                condition=~models.Q(request_key=""),
                name="invoice_request_key_unique",
            ),
            models.CheckConstraint(condition=models.Q(target_seats__gt=0), name="invoice_seats_positive"),
            models.CheckConstraint(
                condition=~models.Q(status="paid", paid_at__isnull=True), name="invoice_paid_has_date"
            ),
        ]
        indexes = [models.Index(fields=["organization", "-issued_at"], name="invoice_org_issued_idx")]

    def __str__(self) -> str:
        return f"Invoice {self.number}"


class InvoiceLine(models.Model):
    """One line of an invoice. A credit (unused time on the edition being left) is a line
    with a negative unit amount and amount; the invoice's total, their sum, is never negative."""

    invoice = models.ForeignKey(Invoice, on_delete=models.PROTECT, related_name="lines")
    description = models.CharField(max_length=240)
    quantity = models.PositiveIntegerField()
    unit_amount_minor = models.BigIntegerField()
    amount_minor = models.BigIntegerField()
    period_start = models.DateTimeField()
    period_end = models.DateTimeField()
    # The add-on a line charges for (a renewal or added seats carry one line per add-on);
    # empty for the base product's lines and credits.
    addon = models.ForeignKey("catalog.AddOn", null=True, blank=True, on_delete=models.PROTECT, related_name="+")

    def __str__(self) -> str:
        return self.description


class Payment(models.Model):
    """One attempt to collect an invoice by card. Written (and committed) before Stripe is
    called; its public id is the idempotency key of the PaymentIntent."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        PROCESSING = "processing", "Processing"
        REQUIRES_ACTION = "requires_action", "Needs authentication"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    SETTLED = (Status.SUCCEEDED, Status.FAILED)
    LIVE = (Status.PENDING, Status.PROCESSING, Status.REQUIRES_ACTION)  # under way: may still charge

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    organization = models.ForeignKey("accounts.Organization", on_delete=models.PROTECT, related_name="payments")
    invoice = models.ForeignKey(Invoice, on_delete=models.PROTECT, related_name="payments")
    amount_minor = models.PositiveBigIntegerField()
    currency = models.CharField(max_length=3)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    payment_method_id = models.CharField(max_length=64)
    stripe_payment_intent_id = models.CharField(max_length=64, blank=True)
    client_secret = models.CharField(max_length=128, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    failure_code = models.CharField(max_length=64, blank=True)
    failure_message = models.TextField(blank=True)
    created_by = models.ForeignKey("accounts.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    succeeded_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["stripe_payment_intent_id"],
                condition=~models.Q(stripe_payment_intent_id=""),
                name="payment_intent_unique",
            ),
            # At most one payment per invoice in flight or done: a double click cannot start two.
            models.UniqueConstraint(
                fields=["invoice"],
                condition=models.Q(status__in=["pending", "processing", "requires_action", "succeeded"]),
                name="payment_one_live_per_invoice",
            ),
        ]

    def __str__(self) -> str:
        return f"Payment {self.public_id} ({self.status})"

    @property
    def decline_reason(self) -> str:
        """Why it failed, as a sentence for the customer (never Stripe's code)."""
        from .declines import decline_reason

        return decline_reason(self.failure_code)


class WebhookEvent(models.Model):
    """A Stripe webhook event, stored once by its id before it is processed.

    Its `outcome` says where it stands: pending (waiting for the drain, or backing off after a
    temporary error), then one final outcome: applied (a handler of ours acted on it, or found
    nothing left to change), stored (a type Flywheel does not act on: kept, nothing to do),
    not ours (about nothing Flywheel knows: a Connect account's event, an object Stripe cannot
    find, the other mode's event; never retried), or dead (a temporary error that outlasted
    WEBHOOK_MAX_ATTEMPTS; never claimed again until staff replay it). Applied, stored and not
    ours set `processed_at`; dead leaves it empty.
    """

    class Outcome(models.TextChoices):
        PENDING = "pending", "Pending"
        APPLIED = "applied", "Applied"
        STORED = "stored", "Stored"
        NOT_OURS = "not_ours", "Not ours"
        DEAD = "dead", "Dead"

    # Stripe's ids may be up to 255 characters; its longest event type is 70 today.
    stripe_event_id = models.CharField(max_length=255, unique=True)
    type = models.CharField(max_length=255, db_index=True)
    # The event as JSON. PostgreSQL's jsonb refuses \u0000 and lone surrogates (\ud83d): such
    # characters are replaced by U+FFFD here, and the body as Stripe sent it is kept in
    # `raw_body`, which is empty for every other event.
    payload = models.JSONField()
    raw_body = models.TextField(blank=True, default="", db_default="")
    received_at = models.DateTimeField(auto_now_add=True)
    processed_at = models.DateTimeField(null=True, blank=True)
    # Database defaults too: the intake's own INSERT (and the previous release's, during a
    # deploy) names neither column.
    outcome = models.CharField(max_length=16, choices=Outcome.choices, default=Outcome.PENDING, db_default=Outcome.PENDING)
    # Why an event is not ours or dead, in words staff can act on.
    outcome_reason = models.TextField(blank=True, default="", db_default="")
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    # A drain's lease: until then no other drain takes the event. After a failure, the time of
    # the next try (a backoff). Empty for an event nobody has taken yet.
    claimed_until = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["received_at"], condition=models.Q(outcome="pending"), name="webhook_pending_idx"),
            # The few events staff may need to look at (the staff home counts the dead ones).
            models.Index(fields=["outcome"], condition=models.Q(outcome__in=["not_ours", "dead"]), name="webhook_attention_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.type} {self.stripe_event_id}"


class CreditNote(models.Model):
    """Money given back on a paid invoice: a refund of (part of) a card payment.

    Written as `pending` (and committed) before Stripe is asked to refund, numbered in its own
    gapless sequence ("credit_note") only once Stripe has refunded, and immutable from then on.
    Refunds made in Stripe's dashboard become credit notes too (source `stripe`).
    """

    class Status(models.TextChoices):
        PENDING = "pending", "Refund requested"
        ISSUED = "issued", "Issued"
        FAILED = "failed", "Refund failed"

    class Source(models.TextChoices):
        STAFF = "staff", "Refunded by our staff"
        STRIPE = "stripe", "Refunded in Stripe"
        # Owed back on a purchase-order invoice already paid by transfer (a partner's unused
        # days when its customer took the subscription over): issued at once, paid back by staff.
        TRANSFER = "transfer", "To pay back by transfer"

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    organization = models.ForeignKey("accounts.Organization", on_delete=models.PROTECT, related_name="credit_notes")
    invoice = models.ForeignKey(Invoice, on_delete=models.PROTECT, related_name="credit_notes")
    # Empty for a credit note to pay back by transfer (source transfer): no card payment to refund.
    payment = models.ForeignKey(Payment, null=True, blank=True, on_delete=models.PROTECT, related_name="credit_notes")
    # Empty until the refund went through: numbers are only taken for credit notes that exist.
    number = models.CharField(max_length=32, blank=True)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.PENDING)
    source = models.CharField(max_length=8, choices=Source.choices, default=Source.STAFF)
    currency = models.CharField(max_length=3)
    amount_minor = models.PositiveBigIntegerField()
    reason = models.CharField(max_length=240)
    stripe_refund_id = models.CharField(max_length=64, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    failure_message = models.TextField(blank=True)
    created_by = models.ForeignKey("accounts.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    issued_at = models.DateTimeField(null=True, blank=True)
    # Source transfer: when staff paid the money back (empty while it is still owed).
    paid_back_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["number"], condition=~models.Q(number=""), name="credit_note_number_unique"),
            models.UniqueConstraint(
                fields=["stripe_refund_id"], condition=~models.Q(stripe_refund_id=""), name="credit_note_refund_unique"
            ),
            models.CheckConstraint(condition=models.Q(amount_minor__gt=0), name="credit_note_amount_positive"),
            models.CheckConstraint(
                condition=~models.Q(status="issued", number="") & ~models.Q(status="issued", issued_at__isnull=True),
                name="credit_note_issued_has_number",
            ),
        ]

    def __str__(self) -> str:
        return f"Credit note {self.number or '(pending)'}"


class Dispute(models.Model):
    """A chargeback: the cardholder's bank disputes a payment. Stored once by Stripe's id so
    staff can answer it (with evidence, by `evidence_due_by`) from the admin."""

    stripe_dispute_id = models.CharField(max_length=64, unique=True)
    organization = models.ForeignKey("accounts.Organization", on_delete=models.PROTECT, related_name="disputes")
    payment = models.ForeignKey(Payment, on_delete=models.PROTECT, related_name="disputes")
    amount_minor = models.PositiveBigIntegerField()
    currency = models.CharField(max_length=3)
    reason = models.CharField(max_length=64, blank=True)
    status = models.CharField(max_length=32, blank=True)
    evidence_due_by = models.DateTimeField(null=True, blank=True)
    # When Stripe created the event that set `status`: an older event never overwrites it.
    status_at = models.DateTimeField(null=True, blank=True)
    # Set while the dispute is decided (CLOSED_STATUSES); cleared when an appeal reopens a lost
    # one, and set again when the appeal is decided.
    closed_at = models.DateTimeField(null=True, blank=True)
    # What the dispute takes back as analytics counts it (payment_refunded): its amount while
    # lost, nothing before, nor once won (a won appeal records the reversal).
    refund_recorded_minor = models.PositiveBigIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    # Every status Stripe documents (stripe-python 16.1's Dispute.status, from Stripe's API spec).
    OPEN_STATUSES = ("warning_needs_response", "warning_under_review", "needs_response", "under_review")
    APPEAL_STATUSES = ("appeal_needs_response", "appeal_under_review")
    # The bank decided (won, lost), an inquiry closed without a chargeback (warning_closed), or
    # the dispute was prevented before it opened (prevented: no money moved).
    CLOSED_STATUSES = ("won", "lost", "warning_closed", "prevented")
    # What a closed status may still become: only a lost dispute, by an appeal and its outcome
    # (won directly when the appeal's own events were missed). Any other closed one is final.
    REOPENED_BY = {"lost": (*APPEAL_STATUSES, "won")}

    class Meta:
        indexes = [models.Index(fields=["evidence_due_by"], condition=models.Q(closed_at__isnull=True), name="dispute_open_due_idx")]

    def __str__(self) -> str:
        return f"Dispute {self.stripe_dispute_id}"


class PromptDismissal(models.Model):
    """A user dismissed an in-product prompt at one stage (docs/api.md#prompts).

    The stage (`threshold`) is part of the key, so a dismissed "trial ends in 7 days" comes
    back as "3 days", and a dismissed "card expiring" comes back for the next card.
    """

    user = models.ForeignKey("accounts.User", on_delete=models.CASCADE, related_name="+")
    organization = models.ForeignKey("accounts.Organization", on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=32)
    product_code = models.CharField(max_length=64, blank=True)
    threshold = models.CharField(max_length=64, blank=True)
    dismissed_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["user", "organization", "kind", "product_code", "threshold"],
                name="prompt_dismissal_unique",
            )
        ]

    def __str__(self) -> str:
        return f"{self.user} dismissed {self.kind} {self.product_code} {self.threshold}"


class AddOnSubscription(models.Model):
    """An add-on (catalog.AddOn, per seat or flat) on top of one of the organization's
    subscriptions (its base): co-termed with it, renewed on the base's renewal invoice (one line
    each), on the base's interval. A per-seat add-on's quantity is the base's seat limit, always.

    What it grants (features, a support tier) holds while it is trialing or active *and* its
    base is entitled (billing.entitlements.ENTITLED_STATUSES): a suspended base suspends its
    add-ons without a write here. `suspended` is the add-on's own suspension (its purchase-order
    invoice is overdue). One-off add-ons (training) are not subscriptions: see TrainingPack.
    """

    class Status(models.TextChoices):
        TRIALING = "trialing", "Trialing"
        ACTIVE = "active", "Active"
        SUSPENDED = "suspended", "Suspended"
        CANCELED = "canceled", "Removed"

    LIVE_STATUSES = (Status.TRIALING, Status.ACTIVE, Status.SUSPENDED)
    GRANTING_STATUSES = (Status.TRIALING, Status.ACTIVE)

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    organization = models.ForeignKey("accounts.Organization", on_delete=models.CASCADE, related_name="addon_subscriptions")
    subscription = models.ForeignKey(Subscription, on_delete=models.CASCADE, related_name="addons")
    addon = models.ForeignKey("catalog.AddOn", on_delete=models.PROTECT, related_name="+")
    status = models.CharField(max_length=16, choices=Status.choices)
    trial_ends_at = models.DateTimeField(null=True, blank=True)
    trial_started_at = models.DateTimeField(null=True, blank=True)
    # Removal waits for the base's period end; the reason says who or what asked, in words
    # (the admin removed it; the edition it needs is being left).
    cancel_at_period_end = models.BooleanField(default=False)
    cancel_reason = models.CharField(max_length=240, blank=True)
    canceled_at = models.DateTimeField(null=True, blank=True)
    suspended_at = models.DateTimeField(null=True, blank=True)
    started_by = models.ForeignKey("accounts.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["subscription", "addon"],
                condition=~models.Q(status="canceled"),
                name="addon_subscription_one_live",
            ),
            models.CheckConstraint(
                condition=~models.Q(status="trialing", trial_ends_at__isnull=True),
                name="addon_subscription_trial_has_end",
            ),
        ]
        indexes = [
            models.Index(fields=["trial_ends_at"], condition=models.Q(status="trialing"), name="addon_trial_end_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.addon} for {self.organization} ({self.status})"


class TrainingPack(models.Model):
    """Training credits bought once (a one-off training add-on): spent by assigning people to
    the catalog's courses, until `expires_at`. What is left then is lost (`expired_at`)."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    organization = models.ForeignKey("accounts.Organization", on_delete=models.CASCADE, related_name="training_packs")
    addon = models.ForeignKey("catalog.AddOn", on_delete=models.PROTECT, related_name="+")
    # The invoice that bought it: one pack per invoice, however often its payment is applied.
    invoice = models.OneToOneField(Invoice, null=True, blank=True, on_delete=models.PROTECT, related_name="training_pack")
    credits = models.PositiveIntegerField()
    credits_used = models.PositiveIntegerField(default=0)
    granted_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    # Expiry reminders already sent, in days before the end (e.g. [30, 7]).
    expiry_reminders_sent = models.JSONField(default=list, blank=True)
    expired_at = models.DateTimeField(null=True, blank=True)
    # Its purchase-order invoice is overdue: nothing can be spent until it is paid.
    suspended_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey("accounts.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        constraints = [
            models.CheckConstraint(condition=models.Q(credits__gt=0), name="training_pack_credits_positive"),
            models.CheckConstraint(
                condition=models.Q(credits_used__lte=models.F("credits")), name="training_pack_not_overspent"
            ),
        ]
        indexes = [
            models.Index(fields=["expires_at"], condition=models.Q(expired_at__isnull=True), name="training_pack_expiry_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.credits} training credits for {self.organization}"

    @property
    def credits_left(self) -> int:
        return 0 if self.expired_at else self.credits - self.credits_used


class TrainingAssignment(models.Model):
    """A person of the organization assigned to a course (or live session), paid with credits
    drawn from one or more packs (TrainingSpend). Withdrawing it gives the credits back to
    packs that have not expired."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    organization = models.ForeignKey("accounts.Organization", on_delete=models.CASCADE, related_name="training_assignments")
    course = models.ForeignKey("catalog.Course", on_delete=models.PROTECT, related_name="+")
    user = models.ForeignKey("accounts.User", on_delete=models.CASCADE, related_name="training_assignments")
    assigned_by = models.ForeignKey("accounts.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    credits = models.PositiveIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    withdrawn_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "course", "user"],
                condition=models.Q(withdrawn_at__isnull=True),
                name="training_assignment_once",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user} on {self.course}"


class TrainingSpend(models.Model):
    """Credits an assignment drew from one pack."""

    assignment = models.ForeignKey(TrainingAssignment, on_delete=models.CASCADE, related_name="spends")
    pack = models.ForeignKey(TrainingPack, on_delete=models.PROTECT, related_name="spends")
    credits = models.PositiveIntegerField()

    class Meta:
        constraints = [models.CheckConstraint(condition=models.Q(credits__gt=0), name="training_spend_positive")]

    def __str__(self) -> str:
        return f"{self.credits} credits from pack {self.pack_id}"
