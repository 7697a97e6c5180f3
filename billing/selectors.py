import math
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from urllib.parse import urlencode

from django.db.models import F, Q, QuerySet, Sum
from django.db.models.functions import Coalesce
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.dateformat import format as date_format

from accounts.models import Membership, Organization
from accounts.selectors import membership_is_admin
from accounts.services import seats_in_use
from activity.selectors import active_people
from catalog.models import AddOn, Course, Edition, Product
from common.exceptions import NotFound
from common.money import money

from .formats import day, time_left
from .models import (
    AddOnSubscription,
    CreditNote,
    Invoice,
    Payment,
    Subscription,
    TrainingAssignment,
    TrainingPack,
    WebhookEvent,
)
from .pricing import addon_edition_includes, addon_edition_meets, addon_unit_price, unit_price


def subscriptions_of(*, organization: Organization) -> QuerySet[Subscription]:
    return (
        Subscription.objects.filter(organization=organization)
        .exclude(status=Subscription.Status.CANCELED)
        .select_related("product", "edition", "billed_to")
        .order_by("created_at")
    )


def get_subscription_for_user(*, user, subscription_public_id) -> Subscription:
    """A subscription of an organization the user belongs to; NotFound for anyone else's."""
    from accounts.models import Membership
    from common.exceptions import NotFound

    subscription = (
        Subscription.objects.select_related("organization", "product", "edition")
        .filter(
            public_id=subscription_public_id,
            organization__in=Membership.objects.filter(user=user).values("organization"),
        )
        .first()
    )
    if subscription is None:
        raise NotFound("Subscription not found.")
    return subscription


def get_payment_for_user(*, user, payment_public_id):
    from common.exceptions import NotFound

    from .models import Payment

    payment = (
        Payment.objects.select_related("invoice__subscription__product", "invoice__target_edition", "organization")
        .filter(invoice_readable_by(user, prefix="invoice__"), public_id=payment_public_id)
        .first()
    )
    if payment is None:
        raise NotFound("Payment not found.")
    return payment


def invoices_of(*, organization: Organization):
    """The organization's own invoices: those it pays. An invoice billed to a partner (its
    bill-to) is the partner's, never shown to the licensee (invoices_billed_to)."""
    from .models import Invoice

    return (
        Invoice.objects.filter(organization=organization, bill_to__isnull=True)
        .select_related("subscription__product", "addon")
        .order_by("-issued_at")
    )


def invoices_billed_to(*, payer: Organization, organization: Organization | None = None) -> QuerySet[Invoice]:
    """Invoices `payer` pays for other organizations (a partner's for its customers), newest
    first; only those of `organization` (one customer) when given. For the payer's own pages:
    the caller has checked that the person may see the payer's (and that customer's) billing."""
    invoices = Invoice.objects.filter(bill_to=payer).exclude(organization=payer)
    if organization is not None:
        invoices = invoices.filter(organization=organization)
    return invoices.select_related("organization", "subscription__product", "addon").order_by("-issued_at", "-pk")


def invoice_readable_by(user, *, prefix: str = "") -> Q:
    """Which invoices a person may read: their organization's own (billed to it), and those
    billed to an organization they belong to (a partner's for its customers). The licensee of an
    invoice billed to a partner does not read it: its amounts are the partner's business."""
    organizations = Membership.objects.filter(user=user).values("organization")
    return Q(**{f"{prefix}bill_to__isnull": True, f"{prefix}organization__in": organizations}) | Q(
        **{f"{prefix}bill_to__in": organizations}
    )


def products_billed_to_others(*, organization: Organization) -> list[tuple[Product, Organization]]:
    """The organization's live products another organization pays for (a partner): what its
    invoice list says goes elsewhere ("Invoices for Tracker go to Northwind Partners")."""
    return [
        (subscription.product, subscription.billed_to)
        for subscription in Subscription.objects.filter(organization=organization, billed_to__isnull=False)
        .exclude(status=Subscription.Status.CANCELED)
        .select_related("product", "billed_to")
        .order_by("product__position", "pk")
    ]


def get_open_invoice_for_organization(*, organization: Organization, invoice_public_id):
    """An open invoice this organization pays (its own, or one billed to it for a customer);
    NotFound for any other (another tenant's too, and a licensee's invoice billed to a partner)."""
    from common.exceptions import NotFound

    from .models import Invoice

    invoice = Invoice.objects.filter(
        Q(organization=organization, bill_to__isnull=True) | Q(bill_to=organization),
        public_id=invoice_public_id,
        status=Invoice.Status.OPEN,
    ).first()
    if invoice is None:
        raise NotFound("Invoice not found.")
    return invoice


def invoice_failed_payment(*, invoice: Invoice) -> Payment | None:
    """The payment whose failure an open invoice shows: its latest card payment, when that one
    failed (a newer attempt under way or paid shows nothing)."""
    if invoice.status != Invoice.Status.OPEN:
        return None
    latest = Payment.objects.filter(invoice=invoice).order_by("-created_at", "-pk").first()
    return latest if latest is not None and latest.status == Payment.Status.FAILED else None


# Invoices and credit notes the pages show --------------------------------------------------------


def get_invoice_for_user(*, user, invoice_public_id) -> Invoice:
    """An invoice the user may read (invoice_readable_by): of an organization they belong to and
    billed to it, or billed to their organization for a customer; NotFound for anyone else's."""
    invoice = (
        Invoice.objects.select_related("organization", "subscription__product", "target_edition", "bill_to")
        .filter(invoice_readable_by(user), public_id=invoice_public_id)
        .first()
    )
    if invoice is None:
        raise NotFound("Invoice not found.")
    return invoice


def invoice_of_request(*, organization: Organization, request_key: str) -> Invoice | None:
    """The invoice an admin's confirmed price (its request key) issued, if it was confirmed:
    how a price page knows, before its button, that it was already paid or is being paid."""
    if not request_key:
        return None
    return (
        Invoice.objects.select_related("subscription__product", "target_edition")
        .filter(organization=organization, request_key=request_key)
        .first()
    )


def invoice_paid_last(*, subscription: Subscription) -> Invoice | None:
    """The subscription's most recently paid invoice (what an "already paid" page links to)."""
    return Invoice.objects.filter(subscription=subscription, status=Invoice.Status.PAID).order_by("-paid_at").first()


def invoice_payment_last(*, invoice: Invoice) -> Payment | None:
    """The invoice's most recent payment (what a price already confirmed links to)."""
    return invoice.payments.order_by("-created_at").first()


def get_credit_note_for_user(*, user, credit_note_public_id) -> CreditNote:
    """An issued credit note of an organization the user is a member of; NotFound otherwise."""
    credit_note = (
        CreditNote.objects.select_related("organization", "invoice")
        .filter(invoice_readable_by(user, prefix="invoice__"), public_id=credit_note_public_id, status=CreditNote.Status.ISSUED)
        .first()
    )
    if credit_note is None:
        raise NotFound("Credit note not found.")
    return credit_note


# Editions the billing pages offer ----------------------------------------------------------------


def editions_to_change_to(*, subscription: Subscription) -> list[Edition]:
    """The product's active editions other than the subscription's own, by rank."""
    return [
        edition
        for edition in Edition.objects.filter(product=subscription.product, is_active=True).order_by("rank")
        if edition.pk != subscription.edition_id
    ]


def editions_to_buy(*, subscription: Subscription) -> list[Edition]:
    """The product's active paid editions, by rank: what its checkout offers."""
    return list(
        Edition.objects.filter(product=subscription.product, is_active=True, monthly_price_minor__gt=0).order_by("rank")
    )


def edition_of_product(*, product: Product, code: str, active_only: bool) -> Edition | None:
    """The product's edition with this code (an active one, when `active_only`), or None."""
    editions = Edition.objects.filter(product=product, code=code)
    return (editions.filter(is_active=True) if active_only else editions).first()


def edition_to_try(*, product_code: str) -> Edition | None:
    """The lowest-ranked active edition with a trial of an active product, or None."""
    return (
        Edition.objects.select_related("product")
        .filter(product__code=product_code, product__is_active=True, is_active=True, trial_days__gt=0)
        .order_by("rank")
        .first()
    )


def catalog_currencies() -> set[str]:
    """The currencies the catalog prices its editions in (one, in practice)."""
    return set(Edition.objects.values_list("currency", flat=True).distinct())


# What a product looks like to its organization, and the prompts on Flywheel's own pages ----------
#
# One reading of "what state is each product in, what happened and what to do", used by /app/,
# /billing/, the workspace pages and the members page (templates/billing/_prompts.html), so
# that a cancelled or suspended product looks it everywhere.

# A cancelled product is announced at the top of the pages for this long after it ended; its
# card on /app/ and its workspace say it for good.
CANCELLED_NOTICE_DAYS = 30
# The seat warning starts when this share of the seat limit is used (8 of 10).
SEAT_WARNING_SHARE = 0.8


def _date(value) -> str:
    return date_format(timezone.localtime(value), "j M Y")


def _seats(count: int) -> str:
    return f"{count} seat" if count == 1 else f"{count} seats"


@dataclass(frozen=True)
class Offer:
    """An edition to buy (or move to), with its price per seat and where to do it."""

    edition: Edition
    unit_amount_minor: int
    currency: str
    url: str = ""
    # A product with no live subscription is bought through the "Try or buy" endpoint (a POST):
    # nothing is created until the admin clicks.
    post_product: str = ""
    post_buy: bool = False
    period: str = "a month"

    @property
    def price_text(self) -> str:
        return f"{money(self.unit_amount_minor, self.currency)} per seat {self.period}"


@dataclass(frozen=True)
class ProductState:
    """A product of an organization: its live subscription, or the last one that ended."""

    product: Product
    subscription: Subscription
    usable: bool
    label: str  # "Trialing", "Active", "Past due", "Suspended", "Cancelled" (as /billing/ says them)
    badge: str  # the .status modifier: active, warning, failed or ""
    happened: str  # what happened, in a sentence ("" for a product in use)
    admin_todo: str  # what an admin can do about it
    member_todo: str  # what a member can do about it
    action_label: str = ""
    offer: Offer | None = None
    # Why the last payment failed, in words (billing.declines), for admins: "" when none did.
    decline_reason: str = ""

    @property
    def is_cancelled(self) -> bool:
        return self.subscription.status == Subscription.Status.CANCELED

    @property
    def is_suspended(self) -> bool:
        return self.subscription.status == Subscription.Status.SUSPENDED


def admin_name_of(*, organization: Organization) -> str:
    """How a member is told whom to ask: the first admin's name, or their address."""
    admin = (
        Membership.objects.filter(organization=organization, role=Membership.Role.ADMIN)
        .select_related("user")
        .order_by("created_at", "pk")
        .first()
    )
    if admin is None:
        return "an admin"
    return admin.user.get_full_name() or admin.user.email


def trial_used(*, organization: Organization, product: Product) -> bool:
    """Whether the organization already had its one trial of this product."""
    return Subscription.objects.filter(
        organization=organization, product=product, trial_started_at__isnull=False
    ).exists()


def trial_spent(*, organization: Organization, product: Product) -> bool:
    """Whether the product can only be bought now: its trial was used and nothing of it is live
    (a product it has is refused as such by subscription_start_trial)."""
    return trial_used(organization=organization, product=product) and not Subscription.objects.filter(
        organization=organization, product=product, status__in=Subscription.LIVE_STATUSES
    ).exists()


def seats_free(*, organization: Organization) -> int | None:
    """How many more people (members or invites) the organization can add before a live
    subscription's seat limit refuses one (services.seats.seat_limit_enforce's rule); None
    when no live subscription limits it."""
    limits = list(
        Subscription.objects.filter(organization=organization, status__in=Subscription.LIVE_STATUSES).values_list(
            "seat_limit", flat=True
        )
    )
    if not limits:
        return None
    return max(min(limits) - seats_in_use(organization=organization), 0)


def products_to_try(*, organization: Organization) -> list[Edition]:
    """"Try another product": for each active product the organization has nothing live of and
    never trialled, the edition its one-click trial starts (the lowest-ranked with a trial), in
    catalog order. The billing page and the in-product kit offer the same list."""
    taken = set(
        Subscription.objects.filter(organization=organization)
        .filter(Q(trial_started_at__isnull=False) | ~Q(status=Subscription.Status.CANCELED))
        .values_list("product_id", flat=True)
    )
    editions = (
        Edition.objects.select_related("product")
        .filter(product__is_active=True, is_active=True, trial_days__gt=0)
        .exclude(product_id__in=taken)
        .order_by("product__position", "product__code", "rank")
    )
    first: dict[int, Edition] = {}
    for edition in editions:
        first.setdefault(edition.product_id, edition)
    return list(first.values())


def _paid_editions(product: Product) -> list[Edition]:
    return list(
        Edition.objects.filter(product=product, is_active=True, monthly_price_minor__gt=0).order_by("rank")
    )


def _buy_offer(subscription: Subscription, *, edition: Edition | None = None, live: bool) -> Offer | None:
    """What buying this product means: the edition it had (when paid), or its smallest paid one."""
    editions = _paid_editions(subscription.product)
    if edition is None:
        edition = next((e for e in editions if e.pk == subscription.edition_id), editions[0] if editions else None)
    if edition is None:
        return None
    if live:
        url = reverse("checkout", args=[subscription.public_id])
        if edition.pk != subscription.edition_id:
            url += f"?edition={edition.code}"
        return Offer(edition, edition.monthly_price_minor, edition.currency, url=url)
    buy = trial_used(organization=subscription.organization, product=subscription.product)
    if not buy:
        # Never tried (a Free edition that was cancelled): its trial is still there to start.
        edition = next((e for e in editions if e.trial_days > 0), edition)
    return Offer(
        edition,
        edition.monthly_price_minor,
        edition.currency,
        post_product=subscription.product.code,
        post_buy=buy,
    )


def _open_invoice(subscription: Subscription) -> Invoice | None:
    """The latest open invoice the organization itself pays (never one billed to a partner:
    its number and amount are the partner's)."""
    return (
        Invoice.objects.filter(subscription=subscription, status=Invoice.Status.OPEN, bill_to__isnull=True)
        .order_by("-issued_at")
        .first()
    )


def managed_ask_url(subscription: Subscription, kind: str) -> str:
    """Flywheel's page to ask the partner that manages `subscription` for something (`kind`:
    seats, edition, product, addon, other): the partners app's, by URL name (billing does not
    import it); the billing page when there is none."""
    try:
        return reverse("partners:ask") + "?" + urlencode({"product": subscription.product.code, "kind": kind})
    except NoReverseMatch:
        return reverse("billing") + f"#billing-{subscription.product.code}"


def _partner_open_invoice(subscription: Subscription) -> Invoice | None:
    """The latest open invoice of the subscription billed to another organization (a partner's
    quote not paid yet, or one it left behind): whom the product waits for."""
    return (
        Invoice.objects.filter(subscription=subscription, status=Invoice.Status.OPEN, bill_to__isnull=False)
        .exclude(bill_to_id=subscription.organization_id)
        .select_related("bill_to")
        .order_by("-issued_at")
        .first()
    )


def _managed_state(subscription: Subscription, partner: str) -> ProductState | None:
    """A live product a partner manages (billed_to, or its purchase not paid yet): what to do is
    to ask the partner, and the partner's invoices and amounts are not the organization's to see."""
    product, status = subscription.product, subscription.status
    name = product.name
    if status == Subscription.Status.SUSPENDED:
        since = _date(subscription.suspended_at or subscription.updated_at)
        return ProductState(
            product, subscription, False, "Suspended", "failed",
            happened=f"{name} has been suspended since {since}: {partner}, who manages it, has an unpaid invoice for it.",
            admin_todo=f"Ask {partner} to pay it.",
            member_todo=f"to ask {partner} to pay it",
            action_label=f"Ask {partner}",
        )
    if status == Subscription.Status.PAST_DUE:
        return ProductState(
            product, subscription, True, "Past due", "warning",
            happened=f"The last payment by {partner} for {name} failed; it keeps working while they pay.",
            admin_todo="", member_todo="",
        )
    if status == Subscription.Status.TRIALING:
        return ProductState(
            product, subscription, True, "Trialing", "active",
            happened="", admin_todo="", member_todo=f"to ask {partner} to buy {name}",
            action_label=f"Ask {partner}",
        )
    return None


def _state(subscription: Subscription) -> ProductState:
    product, status = subscription.product, subscription.status
    name = product.name
    if subscription.billed_to_id and status != Subscription.Status.CANCELED:
        managed = _managed_state(subscription, subscription.billed_to.name)
        if managed is not None:
            return managed
    if status == Subscription.Status.SUSPENDED and _open_invoice(subscription) is None:
        # Suspended while a partner's purchase waits for the partner's payment: the partner's
        # to pay, and its invoice is not the organization's to see.
        waiting = _partner_open_invoice(subscription)
        if waiting is not None:
            return _managed_state(subscription, waiting.bill_to.name)
    if status == Subscription.Status.CANCELED:
        offer = _buy_offer(subscription, live=False)
        when = _date(subscription.canceled_at or subscription.updated_at)
        buy = "Buy" if offer is not None and offer.post_buy else "Try"
        return ProductState(
            product, subscription, False, "Cancelled", "",
            happened=f"{name} was cancelled on {when}.",
            admin_todo=f"{buy} {name} to use it again." if offer else "",
            member_todo="",
            action_label=f"{buy} {name}",
            offer=offer,
        )
    if status == Subscription.Status.SUSPENDED:
        since = _date(subscription.suspended_at or subscription.updated_at)
        invoice = _open_invoice(subscription)
        if invoice is not None:
            return ProductState(
                product, subscription, False, "Suspended", "failed",
                happened=(
                    f"{name} has been suspended since {since} because invoice {invoice.number} "
                    f"({money(invoice.total_minor, invoice.currency)}) is unpaid."
                ),
                admin_todo=f"Pay invoice {invoice.number} to use {name} again.",
                member_todo=f"to pay invoice {invoice.number}",
                action_label=f"Pay invoice {invoice.number}",
            )
        offer = _buy_offer(subscription, live=True)
        if subscription.trial_started_at is not None:
            free = Edition.objects.filter(product=product, is_active=True, monthly_price_minor=0).first()
            happened = f"{name} has been suspended since {since} because its trial ended"
            if free is not None:
                in_use = seats_in_use(organization=subscription.organization)
                happened += (
                    f" and {subscription.organization.name} has {_seats(in_use)} in use, more than "
                    f"{name} {free.name} allows ({free.seat_limit})"
                )
            happened += "."
        else:
            happened = f"{name} is not paid for yet: its trial was used before."
        return ProductState(
            product, subscription, False, "Suspended", "failed",
            happened=happened,
            admin_todo=f"Buy {name} to use it again." if offer else "",
            member_todo=f"to buy {name}",
            action_label=f"Buy {name}",
            offer=offer,
        )
    if status == Subscription.Status.PAST_DUE:
        open_invoice = _open_invoice(subscription)
        failed = invoice_failed_payment(invoice=open_invoice) if open_invoice is not None else None
        return ProductState(
            product, subscription, True, "Past due", "warning",
            happened=f"The last payment for {name} failed; it keeps working while we retry.",
            admin_todo="Update the card or pay the open invoice.",
            member_todo="to pay the open invoice",
            action_label="Pay the open invoice",
            decline_reason=failed.decline_reason if failed is not None else "",
        )
    if status == Subscription.Status.TRIALING:
        return ProductState(
            product, subscription, True, "Trialing", "active",
            happened="", admin_todo="", member_todo=f"to buy {name}",
            action_label=f"Buy {name}", offer=_buy_offer(subscription, live=True),
        )
    return ProductState(product, subscription, True, "Active", "active", happened="", admin_todo="", member_todo="")


def product_states_of(*, organization: Organization) -> dict[int, ProductState]:
    """Every product the organization has had, by product id: its live subscription, or the
    latest one that ended (a cancelled product keeps looking cancelled)."""
    subscriptions = (
        Subscription.objects.filter(organization=organization)
        .select_related("product", "edition", "organization", "billed_to")
        .order_by("product__position", "product__code", "created_at", "pk")
    )
    chosen: dict[int, Subscription] = {}
    for subscription in subscriptions:
        kept = chosen.get(subscription.product_id)
        if kept is None or kept.status == Subscription.Status.CANCELED:
            chosen[subscription.product_id] = subscription
    return {product_id: _state(subscription) for product_id, subscription in chosen.items()}


def product_state_of(*, organization: Organization, product: Product) -> ProductState | None:
    return product_states_of(organization=organization).get(product.pk)


@dataclass(frozen=True)
class PagePrompt:
    """A banner at the top of Flywheel's pages (templates/billing/_prompts.html)."""

    key: str  # "<kind>-<product>", the banner's id
    level: str  # info, warning, danger (the .banner modifiers)
    text: str
    action_label: str = ""  # admins only
    action_url: str = ""
    offer: Offer | None = None
    ask: str = ""  # members only: "Ask your admin (Dana) to ..."


def _seat_offer(subscription: Subscription) -> tuple[str, str, Offer | None]:
    """How an admin gets more seats: (label, url, offer); empty when nothing can be bought."""
    edition = subscription.edition
    name = subscription.product.name
    if subscription.status == Subscription.Status.ACTIVE and subscription.interval:
        unit = unit_price(edition, subscription.interval)
        offer = Offer(
            edition, unit, edition.currency, url=reverse("add_seats", args=[subscription.public_id]),
            period="a month" if subscription.interval == Subscription.Interval.MONTH else "a year",
        )
        if subscription.seat_limit < edition.seat_limit:
            return "Add seats", offer.url, offer
    bigger = (
        Edition.objects.filter(
            product=subscription.product, is_active=True, seat_limit__gt=subscription.seat_limit,
            monthly_price_minor__gt=0,
        )
        .order_by("rank")
        .first()
    )
    if bigger is None or subscription.status not in (Subscription.Status.ACTIVE, Subscription.Status.TRIALING):
        return "", "", None
    if subscription.status == Subscription.Status.ACTIVE and subscription.interval:
        # A paid edition moves up from the billing page (a prorated, priced change).
        offer = Offer(bigger, bigger.monthly_price_minor, bigger.currency, url=reverse("billing") + f"#billing-{subscription.product.code}")
    else:
        offer = _buy_offer(subscription, edition=bigger, live=True)
    return f"Move to {name} {bigger.name}", offer.url if offer else "", offer


def _managed_page_prompts(state: ProductState, *, is_admin: bool, used: int, now: datetime) -> list[tuple[int, PagePrompt]]:
    """The banners of a product a partner manages: suspended, trial ending, seats running out,
    each saying to ask the partner (the ask page for admins). Nothing of the partner's invoices."""
    subscription, code, name = state.subscription, state.product.code, state.product.name
    partner = subscription.billed_to.name
    found: list[tuple[int, PagePrompt]] = []
    if state.is_suspended:
        found.append((0, PagePrompt(
            f"suspended-{code}", "danger", f"{state.happened} Ask {partner} to pay it.",
            action_label=state.action_label if is_admin else "",
            action_url=managed_ask_url(subscription, "other") if is_admin else "",
        )))
        return found
    if subscription.status == Subscription.Status.TRIALING and subscription.trial_ends_at:
        remaining = subscription.trial_ends_at - now
        days = remaining.total_seconds() / 86400
        found.append((2, PagePrompt(
            f"trial-{code}", "danger" if days <= 1 else "warning" if days <= 3 else "info",
            f"{time_left(remaining.total_seconds(), round_up=True)} left in your {name} {subscription.edition.name} trial "
            f"(it ends on {_date(subscription.trial_ends_at)}). {name} is managed by {partner}: ask {partner} to buy it.",
            action_label=f"Ask {partner}" if is_admin else "",
            action_url=managed_ask_url(subscription, "product") if is_admin else "",
        )))
    if used >= math.ceil(subscription.seat_limit * SEAT_WARNING_SHARE):
        full = used >= subscription.seat_limit
        text = f"{used} of {subscription.seat_limit} seats used in {name} {subscription.edition.name}."
        if full:
            text += " Nobody else can join or be invited."
        text += f" {name} is managed by {partner}: ask {partner} for more seats."
        found.append((3, PagePrompt(
            f"seats-{code}", "danger" if full else "warning", text,
            action_label=f"Ask {partner}" if is_admin else "",
            action_url=managed_ask_url(subscription, "seats") if is_admin else "",
        )))
    return found


def page_prompts_for(*, membership: Membership, with_states: bool = True) -> list[PagePrompt]:
    """What Flywheel's pages tell this member about the organization's products now, most
    urgent first: suspended and cancelled products, trial days left, seats running out.
    Admins get the action (with its price); members are told whom to ask. Without
    `with_states`, suspended and cancelled products are left to the page (/app/ shows them on
    their cards)."""
    organization = membership.organization
    is_admin = membership_is_admin(membership)
    states = product_states_of(organization=organization)
    if not states:
        return []
    admin = "" if is_admin else admin_name_of(organization=organization)
    now = timezone.now()
    used = seats_in_use(organization=organization)
    found: list[tuple[int, PagePrompt]] = []
    order = {"danger": 0, "warning": 1, "info": 2}

    def ask(todo: str) -> str:
        return f"Ask your admin ({admin}) {todo}." if todo and not is_admin else ""

    for state in states.values():
        subscription, code, name = state.subscription, state.product.code, state.product.name
        if not with_states and not state.usable:
            continue
        if subscription.billed_to_id and not state.is_cancelled:
            found.extend(_managed_page_prompts(state, is_admin=is_admin, used=used, now=now))
            continue
        if state.is_suspended:
            url = state.offer.url if state.offer else reverse("billing") + f"#billing-{code}"
            found.append((0, PagePrompt(
                f"suspended-{code}", "danger", state.happened,
                action_label=state.action_label if is_admin else "", action_url=url if is_admin else "",
                offer=state.offer if is_admin else None, ask=ask(state.member_todo),
            )))
            continue
        if state.is_cancelled:
            ended = subscription.canceled_at or subscription.updated_at
            if now - ended <= timedelta(days=CANCELLED_NOTICE_DAYS):
                found.append((1, PagePrompt(
                    f"cancelled-{code}", "warning", f"{state.happened} Its workspace is closed; its data is kept.",
                    action_label=state.action_label if is_admin and state.offer else "",
                    offer=state.offer if is_admin else None,
                    ask="" if is_admin else f"Ask your admin ({admin}) if you need {name} again.",
                )))
            continue
        if subscription.status == Subscription.Status.PAST_DUE:
            found.append((0, PagePrompt(
                f"past-due-{code}", "danger",
                " ".join(part for part in (state.happened, *((state.decline_reason, state.admin_todo) if is_admin else ())) if part),
                action_label=state.action_label if is_admin else "",
                action_url=reverse("billing") + f"#billing-{code}" if is_admin else "",
                ask=ask(state.member_todo),
            )))
        if subscription.status == Subscription.Status.TRIALING and subscription.trial_ends_at:
            remaining = subscription.trial_ends_at - now
            days = remaining.total_seconds() / 86400
            level = "danger" if days <= 1 else "warning" if days <= 3 else "info"
            text = (
                f"{time_left(remaining.total_seconds(), round_up=True)} left in your {name} {subscription.edition.name} trial "
                f"(it ends on {_date(subscription.trial_ends_at)})."
            )
            found.append((2, PagePrompt(
                f"trial-{code}", level, text,
                action_label=state.action_label if is_admin and state.offer else "",
                action_url=state.offer.url if is_admin and state.offer else "",
                offer=state.offer if is_admin else None,
                ask=ask(f"to buy {name} before it ends"),
            )))
        if used >= math.ceil(subscription.seat_limit * SEAT_WARNING_SHARE):
            full = used >= subscription.seat_limit
            text = f"{used} of {subscription.seat_limit} seats used in {name} {subscription.edition.name}."
            if full:
                text += " Nobody else can join or be invited."
            label, url, offer = _seat_offer(subscription)
            todo = label[0].lower() + label[1:] if label else "to free a seat"
            found.append((3, PagePrompt(
                f"seats-{code}", "danger" if full else "warning", text,
                action_label=label if is_admin else "", action_url=url if is_admin else "",
                offer=offer if is_admin else None,
                ask=ask(f"to {todo}" if label else todo),
            )))
    found.sort(key=lambda item: (order[item[1].level], item[0]))
    return [prompt for _, prompt in found]


def webhook_events_dead_count() -> int:
    """Stripe events given up after WEBHOOK_MAX_ATTEMPTS temporary errors: nothing applies
    them until staff replay them (the admin's "Replay selected events")."""
    return WebhookEvent.objects.filter(outcome=WebhookEvent.Outcome.DEAD).count()


def organizations_over_sales_threshold(*, minimum_minor: int, since: datetime) -> list[tuple[Organization, int]]:
    """Organizations whose paid invoices since `since` add up to `minimum_minor` or more,
    counted for whoever paid them (a partner, for the invoices billed to it)."""
    totals = (
        Invoice.objects.filter(status=Invoice.Status.PAID, paid_at__gte=since)
        .annotate(payer=Coalesce("bill_to", "organization"))
        .values("payer")
        .annotate(total=Sum("total_minor"))
        .filter(total__gte=minimum_minor)
        .order_by("-total")
    )
    organizations = Organization.objects.in_bulk([row["payer"] for row in totals])
    return [(organizations[row["payer"]], row["total"]) for row in totals]


# Add-on and training pages (billing/views/addons.py, training.py) ------------------------------


def addon_of_product(*, product: Product, code: str) -> AddOn | None:
    """The product's add-on with this code, if it is on sale."""
    return AddOn.objects.filter(product=product, code=code, is_active=True).select_related("min_edition").first()


def addon_subscription_live(*, subscription: Subscription, addon: AddOn) -> AddOnSubscription | None:
    """The add-on on this base subscription that is not removed (trialing, active or suspended)."""
    return (
        AddOnSubscription.objects.filter(subscription=subscription, addon=addon)
        .exclude(status=AddOnSubscription.Status.CANCELED)
        .select_related("addon", "subscription__product")
        .first()
    )


def addon_invoices_overdue(*, organization: Organization) -> dict[int, Invoice]:
    """The organization's open add-on invoices past their due date, by add-on id (the newest
    of each): what a suspended add-on's state names."""
    overdue: dict[int, Invoice] = {}
    for invoice in Invoice.objects.filter(
        organization=organization, kind=Invoice.Kind.ADDON, status=Invoice.Status.OPEN, due_at__lt=timezone.now(),
        bill_to__isnull=True,  # a partner's overdue invoice is the partner's to see
    ).order_by("issued_at"):
        overdue[invoice.addon_id] = invoice
    return overdue


def training_packs_of(*, organization: Organization) -> QuerySet[TrainingPack]:
    """The organization's training packs, newest first, with the invoice that bought each."""
    return (
        TrainingPack.objects.filter(organization=organization)
        .select_related("addon__product", "invoice")
        .order_by("-granted_at", "-pk")
    )


def training_courses_of(*, organization: Organization) -> list[Course]:
    """The catalog's active courses of the products the organization has (live subscriptions)."""
    products = Subscription.objects.filter(organization=organization, status__in=Subscription.LIVE_STATUSES).values(
        "product"
    )
    return list(Course.objects.filter(product__in=products, is_active=True).select_related("product"))


def training_assignments_of(*, organization: Organization, user=None) -> QuerySet[TrainingAssignment]:
    """The organization's assignments that were not withdrawn (of one person, if given), newest first."""
    rows = TrainingAssignment.objects.filter(organization=organization, withdrawn_at__isnull=True)
    if user is not None:
        rows = rows.filter(user=user)
    return rows.select_related("course__product", "user", "assigned_by").order_by("-created_at", "-pk")


def get_training_assignment_for_user(*, user, organization: Organization, assignment_public_id) -> TrainingAssignment:
    """An assignment of `organization`, which the user must belong to; NotFound for anyone else's."""
    assignment = (
        TrainingAssignment.objects.select_related("course", "user", "organization")
        .filter(
            public_id=assignment_public_id,
            organization=organization,
            organization__in=Membership.objects.filter(user=user).values("organization"),
        )
        .first()
    )
    if assignment is None:
        raise NotFound("Assignment not found.")
    return assignment


def training_packs_expiring(*, within: timedelta) -> QuerySet[TrainingPack]:
    """Staff: packs with credits left that expire within `within`, soonest first."""
    now = timezone.now()
    return (
        TrainingPack.objects.filter(expired_at__isnull=True, expires_at__gt=now, expires_at__lte=now + within)
        .filter(credits_used__lt=F("credits"))
        .select_related("organization", "addon__product")
        .order_by("expires_at", "pk")
    )


# Add-ons ---------------------------------------------------------------------------------------

# A base subscription in one of these lets its add-ons grant (entitlements.ENTITLED_STATUSES).
_BASE_GRANTING = (Subscription.Status.TRIALING, Subscription.Status.ACTIVE, Subscription.Status.PAST_DUE)


def addons_granting(*, organization_id: int, product_id: int | None = None) -> QuerySet[AddOnSubscription]:
    """The organization's add-ons that grant now (of one product, or all): trialing or active,
    on a base subscription that is itself entitled. A suspended base suspends its add-ons."""
    rows = AddOnSubscription.objects.filter(
        organization_id=organization_id,
        status__in=AddOnSubscription.GRANTING_STATUSES,
        subscription__status__in=_BASE_GRANTING,
    )
    if product_id is not None:
        rows = rows.filter(subscription__product_id=product_id)
    return rows.select_related("addon", "subscription__product", "subscription__edition")


# Training --------------------------------------------------------------------------------------


def training_usage(*, since: datetime | None = None) -> QuerySet[TrainingAssignment]:
    """Staff: who used what training, newest first (since a moment, or all): each assignment
    with its organization, person, course (and product), who assigned it, the credits it took
    and the packs they came from (`spends`), and whether it was withdrawn or completed."""
    rows = TrainingAssignment.objects.select_related(
        "organization", "user", "course__product", "assigned_by"
    ).prefetch_related("spends__pack")
    if since is not None:
        rows = rows.filter(created_at__gte=since)
    return rows.order_by("-created_at", "-pk")
def addon_refusal(*, subscription: Subscription, addon: AddOn) -> str:
    """Why `addon` cannot be bought on `subscription` (its base) now, as a sentence saying what
    is wrong and what to do; empty when it can. The card on file is checked when buying."""
    product = subscription.product
    edition = subscription.edition
    if addon.product_id != subscription.product_id or not addon.is_active:
        return f"{addon.name} is not an add-on of {product.name}."
    if subscription.status == Subscription.Status.CANCELED:
        return f"{product.name} has ended; start it again before adding {addon.name}."
    if not addon_edition_meets(addon, edition):
        return f"{addon.name} needs {product.name} {addon.min_edition.name} or above; you are on {edition.name}."
    if addon_edition_includes(addon, edition):
        return f"{edition} already includes {addon.name}: there is nothing to buy."
    if subscription.status == Subscription.Status.SUSPENDED:
        return f"{product.name} is suspended: pay what it owes first, then add {addon.name}."
    overdue = (
        Invoice.objects.filter(
            organization_id=subscription.organization_id,
            status=Invoice.Status.OPEN,
            collection_method="invoice",
            due_at__lt=timezone.now(),
        )
        .order_by("due_at")
        .first()
    )
    if overdue is not None and overdue.bill_to_id:
        # The partner's invoice: its number and amount are not the licensee's to see.
        return f"{overdue.bill_to.name} has an overdue invoice for {overdue.subscription.product.name}: it is paid first, then add {addon.name}."
    if overdue is not None:
        return f"Invoice {overdue.number} was due on {day(overdue.due_at)}: pay it first, then add {addon.name}."
    if subscription.cancel_at_period_end and subscription.current_period_end:
        return f"{product.name} ends on {day(subscription.current_period_end)}: keep it first, then add {addon.name}."
    if addon.pricing == AddOn.Pricing.ONE_OFF:
        return ""
    if subscription.status == Subscription.Status.PAST_DUE:
        return f"{product.name} has an unpaid renewal invoice: pay it first, then add {addon.name}."
    if subscription.status != Subscription.Status.ACTIVE or not subscription.interval or not subscription.current_period_end:
        on_trial = subscription.status == Subscription.Status.TRIALING
        return (
            f"{addon.name} is billed with {product.name}'s paid subscription and {product.name} is "
            f"{'on a trial' if on_trial else 'not paid for'}: buy {product.name} first"
            f"{', or try ' + addon.name + ' free' if on_trial and addon.trial_days else ''}."
        )
    if subscription.cancel_at_period_end:
        return f"{product.name} ends on {day(subscription.current_period_end)}: keep it first, then add {addon.name}."
    pending = subscription.pending_edition
    if pending is not None and not addon_edition_meets(addon, pending):
        return (
            f"{product.name} moves to {pending.name} on {day(subscription.current_period_end)}, which does not "
            f"include {addon.name}: keep {edition.name} first."
        )
    live = (
        AddOnSubscription.objects.filter(
            subscription=subscription, addon=addon, status__in=(AddOnSubscription.Status.ACTIVE, AddOnSubscription.Status.SUSPENDED)
        )
        .first()
    )
    if live is not None:
        if live.status == AddOnSubscription.Status.SUSPENDED:
            return f"{addon.name} is suspended until its overdue invoice is paid; pay that invoice instead."
        if live.cancel_at_period_end:
            return f"{addon.name} is being removed on {day(subscription.current_period_end)}: keep it instead of buying it again."
        return f"{subscription.organization.name} already has {addon.name} on {product.name}."
    return ""


def addon_trial_refusal(*, subscription: Subscription, addon: AddOn) -> str:
    """Why `addon` cannot be tried free on `subscription` now (a sentence), empty when it can:
    once per organization and add-on, on a trialing or paid base that meets its edition."""
    product = subscription.product
    if addon.product_id != subscription.product_id or not addon.is_active:
        return f"{addon.name} is not an add-on of {product.name}."
    if addon.pricing == AddOn.Pricing.ONE_OFF or addon.trial_days == 0:
        return f"{addon.name} has no free trial."
    if not addon_edition_meets(addon, subscription.edition):
        return (
            f"{addon.name} needs {product.name} {addon.min_edition.name} or above; "
            f"you are on {subscription.edition.name}."
        )
    if addon_edition_includes(addon, subscription.edition):
        return f"{subscription.edition} already includes {addon.name}: there is nothing to try."
    paid = subscription.status == Subscription.Status.ACTIVE and subscription.interval
    if subscription.status != Subscription.Status.TRIALING and not paid:
        return f"{addon.name} can be tried on a trial or a paid subscription of {product.name}; {product.name} is {subscription.get_status_display().lower()}."
    if AddOnSubscription.objects.filter(subscription=subscription, addon=addon, status__in=AddOnSubscription.LIVE_STATUSES).exists():
        return f"{subscription.organization.name} already has {addon.name} on {product.name}."
    if AddOnSubscription.objects.filter(
        organization_id=subscription.organization_id, addon=addon, trial_started_at__isnull=False
    ).exists():
        return f"{subscription.organization.name} has had its {addon.name} trial already; buy it to keep using it."
    return ""


def addon_price_text(addon: AddOn, interval: str) -> str:
    """The add-on's price in words: "US$1.50 per seat per month", "US$99.00 per month",
    "US$500.00 once"."""
    if addon.pricing == AddOn.Pricing.ONE_OFF:
        return f"{money(addon.one_off_price_minor, addon.currency)} once"
    interval = interval or Subscription.Interval.MONTH
    per = "year" if interval == Subscription.Interval.YEAR else "month"
    seat = " per seat" if addon.pricing == AddOn.Pricing.PER_SEAT else ""
    return f"{money(addon_unit_price(addon, interval), addon.currency)}{seat} per {per}"


@dataclass(frozen=True)
class AddOnOffer:
    """One add-on of a product the organization has, as the billing page offers it."""

    addon: AddOn
    subscription: Subscription
    state: AddOnSubscription | None
    buyable: bool
    refusal: str
    can_try: bool
    trial_refusal: str
    price_text: str


def addon_offers_of(*, organization: Organization) -> list[AddOnOffer]:
    """Every active add-on of each product the organization has a live subscription of (in
    catalog order), with its live add-on subscription if any, whether it can be bought or tried
    now and, when not, why (a sentence), and its price in words on the base's interval."""
    subscriptions = list(subscriptions_of(organization=organization))
    by_product = {subscription.product_id: subscription for subscription in subscriptions}
    addons = AddOn.objects.filter(product_id__in=by_product, is_active=True).select_related("product", "min_edition")
    live = {
        (row.subscription_id, row.addon_id): row
        for row in AddOnSubscription.objects.filter(
            subscription__in=subscriptions, status__in=AddOnSubscription.LIVE_STATUSES
        ).select_related("addon")
    }
    offers = []
    for addon in addons.order_by("product__position", "position", "code"):
        subscription = by_product[addon.product_id]
        refusal = addon_refusal(subscription=subscription, addon=addon)
        trial_refusal = addon_trial_refusal(subscription=subscription, addon=addon) if addon.trial_days else ""
        offers.append(
            AddOnOffer(
                addon=addon,
                subscription=subscription,
                state=live.get((subscription.pk, addon.pk)),
                buyable=not refusal,
                refusal=refusal,
                can_try=bool(addon.trial_days) and not trial_refusal,
                trial_refusal=trial_refusal,
                price_text=addon_price_text(addon, subscription.interval),
            )
        )
    return offers


def addon_subscription_for_user(*, user, public_id) -> AddOnSubscription:
    """An add-on subscription of an organization the user belongs to; NotFound for anyone
    else's (another tenant's too)."""
    found = (
        AddOnSubscription.objects.select_related("organization", "addon", "subscription__product", "subscription__edition")
        .filter(public_id=public_id, organization__in=Membership.objects.filter(user=user).values("organization"))
        .first()
    )
    if found is None:
        raise NotFound("Add-on not found.")
    return found


def live_subscriptions_of(*, organization_ids: list[int]) -> dict[int, list[Subscription]]:
    """The live subscriptions of each organization, by organization id (the sales-leads page's
    active seats: people active beside the seats paid for)."""
    found: dict[int, list[Subscription]] = {organization_id: [] for organization_id in organization_ids}
    for subscription in (
        Subscription.objects.filter(organization_id__in=organization_ids, status__in=Subscription.LIVE_STATUSES)
        .select_related("product")
        .order_by("product__position", "product__code")
    ):
        found[subscription.organization_id].append(subscription)
    return found


@dataclass(frozen=True)
class ActiveSeats:
    """One live subscription's active-seat ratio: people active in its product in the 30 whole
    UTC days ending yesterday (activity.selectors.active_people) against the seats it holds.
    100 seats with 12 active is a risk; 98 of 100, an expansion."""

    subscription: Subscription
    active: int
    seats: int

    @property
    def ratio(self) -> float | None:
        return self.active / self.seats if self.seats else None


def active_seats_of(*, organization_ids: list[int], as_of: date | None = None) -> dict[int, list[ActiveSeats]]:
    """Per organization id, each live subscription's active people against its seat limit, in
    the catalog's product order, over the 30 days ending on `as_of` (yesterday by default). Two
    queries whatever the number of organizations."""
    active = active_people(organization_ids=organization_ids, as_of=as_of)
    return {
        organization_id: [
            ActiveSeats(
                subscription=subscription,
                active=active.get((organization_id, subscription.product_id), 0),
                seats=subscription.seat_limit,
            )
            for subscription in subscriptions
        ]
        for organization_id, subscriptions in live_subscriptions_of(organization_ids=organization_ids).items()
    }
