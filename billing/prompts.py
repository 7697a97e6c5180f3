"""In-product prompts: what the product should tell a user about their organization's billing now.

Rules (docs/api.md#prompt-kinds), each per product unless it concerns the whole organization:

| kind | when | threshold (the stage) | who |
|---|---|---|---|
| trial_ends | a trial ends within 7, 3 or 1 days (TRIAL_REMINDER_DAYS): the smallest reached | the days | everyone |
| seat_limit_reached | seats in use >= the seat limit of a live subscription | the seat limit | everyone |
| seat_limit_near | seats in use >= SEAT_LIMIT_NEAR_SHARE (80 %) of the limit, below it, and more seats can be had | the seat limit | admins |
| payment_failed | the latest payment of an open invoice failed, or the subscription is past due | the invoice number, or `past_due` | admins |
| card_expiring | the card on file expires within 30 days (or has), and something is paid or trialing | the card: YYYY-MM-last4 | admins |
| suspended | the subscription is suspended | `suspended` | everyone, not dismissible |

A dismissal is kept per (user, organization, kind, product, threshold): a dismissed "7 days"
prompt comes back as "3 days", a dismissed seat-limit prompt comes back at the next limit.

The copy of each kind is the GrowthBook feature `prompt-copy-<kind>` (underscores as hyphens),
evaluated with the user's attributes, so it can be targeted and A/B tested; its value is an
object {title, body, cta_label} whose `{placeholders}` are filled from the prompt. Without the
feature, or with a value that does not fit, the default copy below is used.
"""

from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import OuterRef, Subquery
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from accounts.models import Membership, Organization, User
from accounts.selectors import membership_is_admin
from accounts.services import seats_in_use
from catalog.models import Edition
from common.exceptions import NotFound, ValidationError
from common.money import money
from experiments import events
from experiments.flags import flag_evaluate
from experiments.services import event_record

from .declines import decline_reason
from .models import BillingAccount, Invoice, Payment, PromptDismissal, Subscription
from .pricing import unit_price

logger = logging.getLogger(__name__)

TRIAL_ENDS = "trial_ends"
SEAT_LIMIT_REACHED = "seat_limit_reached"
SEAT_LIMIT_NEAR = "seat_limit_near"
PAYMENT_FAILED = "payment_failed"
CARD_EXPIRING = "card_expiring"
SUSPENDED = "suspended"
KINDS = (SUSPENDED, PAYMENT_FAILED, TRIAL_ENDS, SEAT_LIMIT_REACHED, SEAT_LIMIT_NEAR, CARD_EXPIRING)
ADMIN_ONLY = frozenset({PAYMENT_FAILED, CARD_EXPIRING, SEAT_LIMIT_NEAR})
NOT_DISMISSIBLE = frozenset({SUSPENDED})
CARD_EXPIRY_WARNING = timedelta(days=30)
SEVERITY_ORDER = {"critical": 0, "warning": 1, "info": 2}

_PROMPT_ID_RE = re.compile(r"^([a-z_]{1,32})\.([A-Za-z0-9_-]{0,64})\.([A-Za-z0-9_-]{1,64})$")

# The copy used when GrowthBook has none: (kind, audience) -> title, body, call to action.
DEFAULT_COPY: dict[tuple[str, str], dict[str, str]] = {
    (TRIAL_ENDS, "admin"): {
        "title": "Your {product} trial ends {when}",
        "body": "Choose an edition and add a card to keep {organization} working in {product}.",
        "cta_label": "Choose a plan",
    },
    (TRIAL_ENDS, "member"): {
        "title": "The {product} trial ends {when}",
        "body": "Ask an admin of {organization} to choose a plan to keep using {product}.",
        "cta_label": "",
    },
    (SEAT_LIMIT_REACHED, "admin"): {
        "title": "All {seat_limit} seats of {product} {edition} are taken",
        "body": "{organization} uses {seats_used} seats (members and pending invites). Add seats at "
        "{seat_price} each (prorated for the rest of this period; you see the total before paying) or "
        "move to a bigger edition so more colleagues can join.",
        "cta_label": "Add seats",
    },
    # A Free edition or a trial cannot add seats: a bigger edition is what gives more.
    (SEAT_LIMIT_REACHED, "admin:upgrade"): {
        "title": "All {seat_limit} seats of {product} {edition} are taken",
        "body": "{organization} uses {seats_used} seats (members and pending invites). Move to "
        "{product} {bigger_edition} (up to {bigger_seat_limit} users, {bigger_price} per seat a month) "
        "so more colleagues can join, or free a seat.",
        "cta_label": "Move to {bigger_edition}",
    },
    (SEAT_LIMIT_REACHED, "admin:none"): {
        "title": "All {seat_limit} seats of {product} {edition} are taken",
        "body": "{organization} uses {seats_used} seats (members and pending invites). Free a seat by "
        "removing a member or withdrawing an invite so more colleagues can join.",
        "cta_label": "",
    },
    (SEAT_LIMIT_REACHED, "member"): {
        "title": "{organization} has no free seats in {product}",
        "body": "Ask an admin of {organization} for more seats before you invite more colleagues.",
        "cta_label": "",
    },
    # A partner manages the product (Subscription.billed_to): the partner adds seats, asked from
    # Flywheel's ask page (the partners app's); members and admins alike are told whom to ask.
    (SEAT_LIMIT_REACHED, "admin:managed"): {
        "title": "All {seat_limit} seats of {product} {edition} are taken",
        "body": "{organization} uses {seats_used} seats (members and pending invites). {product} is managed by "
        "{partner}: ask {partner} for more seats, or free a seat.",
        "cta_label": "Ask {partner}",
    },
    (SEAT_LIMIT_REACHED, "member:managed"): {
        "title": "{organization} has no free seats in {product}",
        "body": "{product} is managed by {partner}: ask {partner} (or an admin of {organization}) for more "
        "seats before you invite more colleagues.",
        "cta_label": "",
    },
    (SEAT_LIMIT_NEAR, "admin:managed"): {
        "title": "{seats_free} of {seat_limit} seats of {product} {edition} left",
        "body": "{organization} uses {seats_used} of its {seat_limit} seats (members and pending invites). "
        "{product} is managed by {partner}: ask {partner} for more seats so colleagues can keep joining.",
        "cta_label": "Ask {partner}",
    },
    (TRIAL_ENDS, "admin:managed"): {
        "title": "Your {product} trial ends {when}",
        "body": "{product} is managed by {partner}: ask {partner} to buy it to keep {organization} working in {product}.",
        "cta_label": "Ask {partner}",
    },
    (TRIAL_ENDS, "member:managed"): {
        "title": "The {product} trial ends {when}",
        "body": "{product} is managed by {partner}: an admin of {organization} can ask {partner} to buy it.",
        "cta_label": "",
    },
    (SUSPENDED, "admin:managed"): {
        "title": "{product} is suspended",
        "body": "{product} is suspended for {organization} because {partner}, who manages it, has an overdue "
        "invoice for it. Ask {partner} to pay it to restore access.",
        "cta_label": "Ask {partner}",
    },
    (SUSPENDED, "member:managed"): {
        "title": "{product} is suspended",
        "body": "{product} is suspended for {organization}: {partner}, who manages it, has an overdue invoice "
        "for it. Ask an admin of {organization} to ask {partner}.",
        "cta_label": "",
    },
    (SEAT_LIMIT_NEAR, "admin"): {
        "title": "{seats_free} of {seat_limit} seats of {product} {edition} left",
        "body": "{organization} uses {seats_used} of its {seat_limit} seats (members and pending invites). "
        "Add seats at {seat_price} each (prorated for the rest of this period; you see the total before "
        "paying) so colleagues can keep joining.",
        "cta_label": "Add seats",
    },
    (SEAT_LIMIT_NEAR, "admin:upgrade"): {
        "title": "{seats_free} of {seat_limit} seats of {product} {edition} left",
        "body": "{organization} uses {seats_used} of its {seat_limit} seats (members and pending invites). "
        "{product} {bigger_edition} has room for {bigger_seat_limit} users at {bigger_price} per seat a month.",
        "cta_label": "Move to {bigger_edition}",
    },
    (PAYMENT_FAILED, "admin"): {
        "title": "A payment for {product} failed",
        "body": "{reason} Update the card or pay invoice {invoice} to keep {product} running.",
        "cta_label": "Update payment",
    },
    (CARD_EXPIRING, "admin"): {
        "title": "Your {card} card ending {card_last4} expires {card_expires}",
        "body": "Add a new card so {organization}'s subscriptions renew without interruption.",
        "cta_label": "Update card",
    },
    (SUSPENDED, "admin"): {
        "title": "{product} is suspended",
        "body": "{product} is suspended for {organization} because a payment is overdue. Pay the open "
        "invoice to restore access.",
        "cta_label": "Pay now",
    },
    (SUSPENDED, "member"): {
        "title": "{product} is suspended",
        "body": "{product} is suspended for {organization}. Ask an admin to pay the open invoice.",
        "cta_label": "",
    },
}


@dataclass(frozen=True)
class Prompt:
    kind: str
    product: str
    threshold: str
    severity: str
    title: str
    body: str
    cta_label: str
    cta_url: str
    dismissible: bool
    copy_source: str = "default"
    experiment_key: str = ""
    variation_id: int | None = None

    @property
    def id(self) -> str:
        return prompt_id(self.kind, self.product, self.threshold)


@dataclass
class _Candidate:
    kind: str
    product: str
    threshold: str
    severity: str
    cta_path: str
    context: dict[str, Any] = field(default_factory=dict)
    # Which default copy of the kind fits ("" for the kind's own, "upgrade", "none").
    variant: str = ""


def prompt_id(kind: str, product: str, threshold: str) -> str:
    """`<kind>.<product>.<threshold>`; the product is empty for organization-wide prompts."""
    return f"{kind}.{product}.{threshold}"


def prompt_id_parse(value: str) -> tuple[str, str, str]:
    """(kind, product, threshold) of a prompt id; NotFound for anything that is not one."""
    match = _PROMPT_ID_RE.match(value or "")
    if match is None or match.group(1) not in KINDS:
        raise NotFound("Prompt not found.")
    return match.group(1), match.group(2), match.group(3)


def flag_key(kind: str) -> str:
    return f"prompt-copy-{kind.replace('_', '-')}"


def member_get(*, organization_id: int, user_public_id: object) -> Membership:
    """The user's membership of the organization; NotFound for anyone who is not a member (the
    tenant wall: an organization's key never learns about another organization's users)."""
    membership = (
        Membership.objects.select_related("user", "organization")
        .filter(organization_id=organization_id, user__public_id=user_public_id)
        .first()
    )
    if membership is None:
        raise NotFound("User not found.")
    return membership


def _site(path: str, *, organization: Organization) -> str:
    """The page at `path`, naming the organization the prompt is about (`?organization=`, which
    accounts' middleware honours), so that an admin of two organizations lands in this one."""
    if not path:
        return ""
    parts = urlsplit(path)
    query = "&".join(part for part in (parts.query, urlencode({"organization": str(organization.public_id)})) if part)
    return f"{settings.SITE_URL}{urlunsplit(('', '', parts.path, query, parts.fragment))}"


def _when(remaining: timedelta) -> str:
    if remaining <= timedelta(0):
        return "today"
    days = math.ceil(remaining.total_seconds() / 86400)
    return "in 1 day" if days == 1 else f"in {days} days"


def _card_expiry_end(year: int, month: int) -> datetime:
    """A card works through the last day of its expiry month."""
    return datetime(year + month // 12, month % 12 + 1, 1, tzinfo=UTC)


def _trial_thresholds() -> list[int]:
    return sorted(int(days) for days in getattr(settings, "TRIAL_REMINDER_DAYS", [7, 3, 1]))



def _nearly_full_at(seat_limit: int) -> int:
    """Seats in use from which the limit is "nearly reached": SEAT_LIMIT_NEAR_SHARE of it (80 %),
    and at least one seat short of it."""
    share = float(getattr(settings, "SEAT_LIMIT_NEAR_SHARE", 0.8))
    return min(seat_limit - 1, max(1, math.ceil(seat_limit * share)))


def _more_seats(subscription: Subscription, *, checkout_path: str, billing_path: str) -> tuple[str, str, dict[str, Any]]:
    """How an admin gets more seats of `subscription`: (copy variant, page, copy context).

    A paid subscription below its edition's limit adds seats ("", the add-seats page, with the
    seat's price per billing period); a Free edition, a trial or a paid one at its edition's
    limit moves to the next bigger edition ("upgrade", the checkout or the billing page); with
    none bigger there is nothing to offer ("none", no page)."""
    code = subscription.product.code
    paid = subscription.status == Subscription.Status.ACTIVE and subscription.interval
    if paid and subscription.seat_limit < subscription.edition.seat_limit:
        price = unit_price(subscription.edition, subscription.interval)
        period = "a month" if subscription.interval == Subscription.Interval.MONTH else "a year"
        return "", reverse("add_seats", args=[subscription.public_id]), {
            "seat_price": f"{money(price, subscription.edition.currency)} {period}"
        }
    bigger = (
        Edition.objects.filter(
            product=subscription.product, is_active=True, monthly_price_minor__gt=0, seat_limit__gt=subscription.seat_limit
        )
        .order_by("rank")
        .first()
    )
    if bigger is None:
        return "none", "", {}
    # A paid edition moves up on the billing page (a prorated, priced change).
    path = f"{billing_path}#billing-{code}" if paid else f"{checkout_path}?edition={bigger.code}"
    return "upgrade", path, {
        "bigger_edition": bigger.name,
        "bigger_seat_limit": bigger.seat_limit,
        "bigger_price": money(bigger.monthly_price_minor, bigger.currency),
    }


def _ask_path(subscription: Subscription, kind: str) -> str:
    """Flywheel's page to ask the partner that manages `subscription` (the partners app's, by
    URL name); the billing page when there is none."""
    try:
        return reverse("partners:ask") + "?" + urlencode({"product": subscription.product.code, "kind": kind})
    except NoReverseMatch:
        return f"{reverse('billing')}#billing-{subscription.product.code}"


def _managed_candidates(
    subscription: Subscription, *, context: dict[str, Any], seats_used: int, is_admin: bool, now: datetime, found: list
) -> None:
    """The prompts of a subscription a partner manages: the same moments (suspended, trial
    ending, seats full or nearly), each saying to ask the partner, with the ask page as the
    admins' call to action (copy variant "managed")."""
    code = subscription.product.code
    context = {**context, "partner": subscription.billed_to.name}
    if subscription.status == Subscription.Status.SUSPENDED:
        found.append(_Candidate(SUSPENDED, code, "suspended", "critical", _ask_path(subscription, "other"), context, "managed"))
        return
    if subscription.status == Subscription.Status.TRIALING and subscription.trial_ends_at is not None:
        remaining = subscription.trial_ends_at - now
        reached = [days for days in _trial_thresholds() if remaining <= timedelta(days=days)]
        if reached:
            days = reached[0]
            severity = "critical" if days <= 1 else "warning" if days <= 3 else "info"
            found.append(
                _Candidate(
                    TRIAL_ENDS, code, str(days), severity, _ask_path(subscription, "product"),
                    {**context, "days": days, "when": _when(remaining), "trial_ends_at": subscription.trial_ends_at},
                    "managed",
                )
            )
    if seats_used >= subscription.seat_limit:
        found.append(
            _Candidate(SEAT_LIMIT_REACHED, code, str(subscription.seat_limit), "warning", _ask_path(subscription, "seats"), context, "managed")
        )
    elif is_admin and seats_used >= _nearly_full_at(subscription.seat_limit):
        found.append(
            _Candidate(
                SEAT_LIMIT_NEAR, code, str(subscription.seat_limit), "info", _ask_path(subscription, "seats"),
                {**context, "seats_free": subscription.seat_limit - seats_used}, "managed",
            )
        )


def _candidates(organization: Organization, is_admin: bool) -> list[_Candidate]:
    now = timezone.now()
    subscriptions = list(
        Subscription.objects.filter(
            organization=organization, status__in=Subscription.LIVE_STATUSES
        )
        .select_related("product", "edition", "billed_to")
        .order_by("product__position", "product__code")
    )
    if not subscriptions:
        return []
    found: list[_Candidate] = []
    seats_used = seats_in_use(organization=organization)
    base = {"organization": organization.name}
    billing_path = reverse("billing")

    for subscription in subscriptions:
        code = subscription.product.code
        context = {
            **base,
            "product": subscription.product.name,
            "edition": subscription.edition.name,
            "seat_limit": subscription.seat_limit,
            "seats_used": seats_used,
        }
        checkout_path = reverse("checkout", args=[subscription.public_id])
        if subscription.billed_to_id:
            _managed_candidates(subscription, context=context, seats_used=seats_used, is_admin=is_admin, now=now, found=found)
            continue
        if subscription.status == Subscription.Status.SUSPENDED:
            found.append(
                _Candidate(SUSPENDED, code, "suspended", "critical", billing_path, context)
            )
            continue
        if (
            subscription.status == Subscription.Status.TRIALING
            and subscription.trial_ends_at is not None
        ):
            remaining = subscription.trial_ends_at - now
            reached = [days for days in _trial_thresholds() if remaining <= timedelta(days=days)]
            if reached:
                days = reached[0]
                severity = "critical" if days <= 1 else "warning" if days <= 3 else "info"
                found.append(
                    _Candidate(
                        TRIAL_ENDS,
                        code,
                        str(days),
                        severity,
                        checkout_path,
                        {
                            **context,
                            "days": days,
                            "when": _when(remaining),
                            "trial_ends_at": subscription.trial_ends_at,
                        },
                    )
                )
        if seats_used >= subscription.seat_limit:
            variant, path, extra = _more_seats(subscription, checkout_path=checkout_path, billing_path=billing_path)
            found.append(
                _Candidate(
                    SEAT_LIMIT_REACHED, code, str(subscription.seat_limit), "warning", path, {**context, **extra}, variant
                )
            )
        elif is_admin and seats_used >= _nearly_full_at(subscription.seat_limit):
            variant, path, extra = _more_seats(subscription, checkout_path=checkout_path, billing_path=billing_path)
            if path:  # nothing to offer before the limit: the limit's own prompt says what to free
                found.append(
                    _Candidate(
                        SEAT_LIMIT_NEAR,
                        code,
                        str(subscription.seat_limit),
                        "info",
                        path,
                        {**context, **extra, "seats_free": subscription.seat_limit - seats_used},
                        variant,
                    )
                )

    if not is_admin:
        return found

    by_id = {subscription.pk: subscription for subscription in subscriptions}
    latest_payment = Payment.objects.filter(invoice=OuterRef("pk")).order_by("-created_at", "-pk")
    open_invoices = (
        Invoice.objects.filter(
            # A partner's invoice (billed to it) and its payments are the partner's to deal with.
            organization=organization, status=Invoice.Status.OPEN, subscription_id__in=by_id, bill_to__isnull=True
        )
        .annotate(
            latest_status=Subquery(latest_payment.values("status")[:1]),
            latest_code=Subquery(latest_payment.values("failure_code")[:1]),
        )
        .order_by("issued_at")
    )
    failed_products: set[int] = set()
    for invoice in open_invoices:
        if invoice.latest_status != Payment.Status.FAILED:
            continue
        subscription = by_id[invoice.subscription_id]
        if (
            subscription.status == Subscription.Status.SUSPENDED
            or subscription.pk in failed_products
        ):
            continue
        failed_products.add(subscription.pk)
        reason = decline_reason(invoice.latest_code or "")
        found.append(
            _Candidate(
                PAYMENT_FAILED,
                subscription.product.code,
                invoice.number,
                "critical",
                billing_path,
                {
                    **base,
                    "product": subscription.product.name,
                    "edition": subscription.edition.name,
                    "invoice": invoice.number,
                    "reason": reason,
                },
            )
        )
    for subscription in subscriptions:
        if (
            subscription.status == Subscription.Status.PAST_DUE
            and subscription.pk not in failed_products
            and not subscription.billed_to_id
        ):
            found.append(
                _Candidate(
                    PAYMENT_FAILED,
                    subscription.product.code,
                    "past_due",
                    "critical",
                    billing_path,
                    {
                        **base,
                        "product": subscription.product.name,
                        "edition": subscription.edition.name,
                        "invoice": "",
                        "reason": "The renewal payment did not go through.",
                    },
                )
            )

    account = BillingAccount.objects.filter(organization=organization).first()
    needs_card = any(not subscription.edition.is_free and not subscription.billed_to_id for subscription in subscriptions)
    if (
        account is not None
        and account.has_card
        and needs_card
        and account.card_exp_year
        and account.card_exp_month
    ):
        ends = _card_expiry_end(account.card_exp_year, account.card_exp_month)
        if ends - now <= CARD_EXPIRY_WARNING:
            found.append(
                _Candidate(
                    CARD_EXPIRING,
                    "",
                    f"{account.card_exp_year:04d}-{account.card_exp_month:02d}-{account.card_last4 or 'card'}",
                    "critical" if ends <= now else "warning",
                    billing_path,
                    {
                        **base,
                        "card": (account.card_brand or "card").capitalize(),
                        "card_last4": account.card_last4,
                        "card_expires": (
                            "now"
                            if ends <= now
                            else f"at the end of {ends - timedelta(days=1):%B %Y}"
                        ),
                    },
                )
            )
    return found


def _attributes(
    *, user: User, membership: Membership, kind: str, product: str, threshold: str
) -> dict[str, Any]:
    return {
        "id": str(user.public_id),
        "organization": str(membership.organization.public_id),
        "role": membership.role,
        "kind": kind,
        "product": product,
        "threshold": threshold,
    }


def _copy(
    candidate: _Candidate, *, user: User, membership: Membership
) -> tuple[dict[str, str], Any]:
    """The prompt's title, body and call to action, from GrowthBook when it has usable copy."""
    audience = "admin" if membership_is_admin(membership) else "member"
    default = (
        (candidate.variant and DEFAULT_COPY.get((candidate.kind, f"{audience}:{candidate.variant}")))
        or DEFAULT_COPY.get((candidate.kind, audience))
        or DEFAULT_COPY[(candidate.kind, "admin")]
    )
    flag = flag_evaluate(
        flag_key(candidate.kind),
        attributes=_attributes(
            user=user,
            membership=membership,
            kind=candidate.kind,
            product=candidate.product,
            threshold=candidate.threshold,
        ),
    )
    context = candidate.context
    if (
        isinstance(flag.value, dict)
        and isinstance(flag.value.get("title"), str)
        and isinstance(flag.value.get("body"), str)
    ):
        try:
            copy = {
                "title": flag.value["title"].format_map(context),
                "body": flag.value["body"].format_map(context),
                "cta_label": str(flag.value.get("cta_label", default["cta_label"])).format_map(
                    context
                ),
            }
            return copy, flag
        except (KeyError, ValueError, IndexError, AttributeError) as error:
            logger.warning(
                "GrowthBook copy of %s does not fit, default copy used: %r",
                flag_key(candidate.kind),
                error,
            )
    copy = {key: value.format_map(context) for key, value in default.items()}
    return copy, None


def prompts_for(*, membership: Membership, product_code: str | None = None) -> list[Prompt]:
    """What to prompt this member about now, most severe first, without what they dismissed.

    With `product_code`, only that product's prompts and the organization-wide ones.
    """
    organization, user = membership.organization, membership.user
    is_admin = membership_is_admin(membership)
    candidates = [
        candidate
        for candidate in _candidates(organization, is_admin)
        if product_code is None or candidate.product in ("", product_code)
    ]
    if not candidates:
        return []
    dismissed = set(
        PromptDismissal.objects.filter(user=user, organization=organization).values_list(
            "kind", "product_code", "threshold"
        )
    )
    prompts = []
    for candidate in candidates:
        if (candidate.kind, candidate.product, candidate.threshold) in dismissed:
            continue
        copy, flag = _copy(candidate, user=user, membership=membership)
        prompts.append(
            Prompt(
                kind=candidate.kind,
                product=candidate.product,
                threshold=candidate.threshold,
                severity=candidate.severity,
                title=copy["title"],
                body=copy["body"],
                cta_label=copy["cta_label"] if is_admin and candidate.cta_path else "",
                cta_url=_site(candidate.cta_path, organization=membership.organization) if is_admin else "",
                dismissible=candidate.kind not in NOT_DISMISSIBLE,
                copy_source="growthbook" if flag is not None else "default",
                experiment_key=flag.experiment_key if flag is not None else "",
                variation_id=flag.variation_id if flag is not None else None,
            )
        )
    prompts.sort(
        key=lambda prompt: (
            SEVERITY_ORDER[prompt.severity],
            KINDS.index(prompt.kind),
            prompt.product,
        )
    )
    return prompts


ACTIONS = {
    "shown": events.PROMPT_SHOWN,
    "clicked": events.PROMPT_CLICKED,
    "dismissed": events.PROMPT_DISMISSED,
}


def _event(*, membership: Membership, action: str, kind: str, product: str, threshold: str) -> None:
    flag = flag_evaluate(
        flag_key(kind),
        attributes=_attributes(
            user=membership.user,
            membership=membership,
            kind=kind,
            product=product,
            threshold=threshold,
        ),
    )
    properties: dict[str, Any] = {
        "prompt_id": prompt_id(kind, product, threshold),
        "kind": kind,
        "product": product,
        "threshold": threshold,
        "role": membership.role,
        "copy_source": "growthbook" if isinstance(flag.value, dict) else "default",
    }
    if flag.experiment_key:
        properties["experiment"] = flag.experiment_key
        properties["variation"] = flag.variation_id
    event_record(
        name=ACTIONS[action],
        user=membership.user,
        organization=membership.organization,
        properties=properties,
    )


@transaction.atomic
def prompt_event_record(*, membership: Membership, prompt: str, action: str) -> None:
    """Record that the product showed the member a prompt, or that they clicked its call to action."""
    if action not in ("shown", "clicked"):
        raise ValidationError(f"Unknown prompt action {action!r}.")
    kind, product, threshold = prompt_id_parse(prompt)
    _event(membership=membership, action=action, kind=kind, product=product, threshold=threshold)


def prompt_dismiss(*, membership: Membership, prompt: str) -> PromptDismissal:
    """Dismiss a prompt for this member at its current stage. Dismissing twice records once.

    A suspended product cannot be dismissed: ValidationError.
    """
    kind, product, threshold = prompt_id_parse(prompt)
    if kind in NOT_DISMISSIBLE:
        raise ValidationError(
            "This prompt cannot be dismissed: it stays until the product is restored."
        )
    try:
        with transaction.atomic():
            dismissal = PromptDismissal.objects.create(
                user=membership.user,
                organization=membership.organization,
                kind=kind,
                product_code=product,
                threshold=threshold,
            )
            _event(
                membership=membership,
                action="dismissed",
                kind=kind,
                product=product,
                threshold=threshold,
            )
            return dismissal
    except IntegrityError:
        return PromptDismissal.objects.get(
            user=membership.user,
            organization=membership.organization,
            kind=kind,
            product_code=product,
            threshold=threshold,
        )
