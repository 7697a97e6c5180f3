"""What a partner sees of its customers (reads only): for each customer it has an active link
with, the customer's name, its subscriptions (product, edition, status, seats used of the limit,
interval, renewal date, cancellation), renewals due, invoices billed to the partner, quotes and
requests. Never a member's name or address, nor community or survey content: counts only.

Every function takes a partner and an active link (partners.selectors.link_for_partner), never
a bare customer id."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db.models import Count, Q, QuerySet

from accounts.models import Organization
from accounts.services import seats_in_use
from billing.models import Invoice, Subscription
from billing.selectors import invoices_billed_to

from .models import AuditEntry, Partner, PartnerLink, PartnerRequest, Quote

RENEWALS_WITHIN_DAYS = 90


@dataclass
class SubscriptionRow:
    """One subscription as the partner reads it."""

    subscription: Subscription
    seats_used: int
    billed_to_partner: bool
    renews_soon: bool

    @property
    def product(self):
        return self.subscription.product

    @property
    def edition(self):
        return self.subscription.edition


@dataclass
class CustomerRow:
    """One linked customer on the partner's dashboard."""

    link: PartnerLink
    customer: Organization
    seats_used: int
    subscriptions: list[SubscriptionRow] = field(default_factory=list)
    open_requests: int = 0

    @property
    def renewals(self) -> list[SubscriptionRow]:
        return [row for row in self.subscriptions if row.renews_soon]


def live_subscriptions(customer: Organization) -> list[Subscription]:
    return list(
        Subscription.objects.select_related("product", "edition", "pending_edition")
        .filter(organization=customer, status__in=Subscription.LIVE_STATUSES)
        .order_by("product__name", "pk")
    )


def _renews_soon(subscription: Subscription, now: datetime) -> bool:
    end = subscription.current_period_end
    return bool(
        subscription.interval
        and end is not None
        and now <= end <= now + timedelta(days=RENEWALS_WITHIN_DAYS)
        and not subscription.cancel_at_period_end
        and subscription.status == Subscription.Status.ACTIVE
    )


def subscription_rows(*, partner: Partner, customer: Organization, now: datetime) -> list[SubscriptionRow]:
    seats = seats_in_use(organization=customer)
    return [
        SubscriptionRow(
            subscription=subscription,
            seats_used=seats,
            billed_to_partner=subscription.billed_to_id == partner.organization_id,
            renews_soon=_renews_soon(subscription, now),
        )
        for subscription in live_subscriptions(customer)
    ]


def active_links(*, partner: Partner) -> QuerySet[PartnerLink]:
    return (
        PartnerLink.objects.select_related("customer")
        .filter(partner=partner, status=PartnerLink.Status.ACTIVE)
        .order_by("customer__name", "pk")
    )


def partner_portfolio(*, partner: Partner, now: datetime) -> list[CustomerRow]:
    """The partner's linked customers, by name, each with its subscriptions and open requests."""
    links = list(active_links(partner=partner))
    open_requests = dict(
        PartnerRequest.objects.filter(partner=partner, status=PartnerRequest.Status.OPEN, link__in=links)
        .values_list("customer_id")
        .annotate(count=Count("pk"))
        .values_list("customer_id", "count")
    )
    return [
        CustomerRow(
            link=link,
            customer=link.customer,
            seats_used=seats_in_use(organization=link.customer),
            subscriptions=subscription_rows(partner=partner, customer=link.customer, now=now),
            open_requests=open_requests.get(link.customer_id, 0),
        )
        for link in links
    ]


def pending_links(*, partner: Partner) -> tuple[list[PartnerLink], list[PartnerLink]]:
    """The partner's invites waiting for a customer, and customers' requests waiting for it."""
    pending = list(
        PartnerLink.objects.select_related("customer")
        .filter(partner=partner, status__in=PartnerLink.PENDING_STATUSES)
        .order_by("-created_at")
    )
    return (
        [link for link in pending if link.status == PartnerLink.Status.INVITED],
        [link for link in pending if link.status == PartnerLink.Status.REQUESTED],
    )


def invites_emailed(*, partner: Partner, limit: int = 20) -> list[AuditEntry]:
    """Invitations emailed to people who had no organization yet (waiting for their signup)."""
    from .services.links import INVITE_EMAILED

    claimed = set(
        PartnerLink.objects.filter(partner=partner).exclude(invited_email="").values_list("invited_email", flat=True)
    )
    entries = AuditEntry.objects.filter(partner=partner, action=INVITE_EMAILED).order_by("-created_at")[: limit * 2]
    return [entry for entry in entries if entry.detail.get("email") not in claimed][:limit]


def invoices_for_partner(*, partner: Partner, customer: Organization, limit: int = 50) -> list[Invoice]:
    """The customer's invoices billed to the partner, newest first (billing's selector)."""
    return list(invoices_billed_to(payer=partner.organization, organization=customer)[:limit])


def quotes_for_partner(*, partner: Partner, customer: Organization, limit: int = 50) -> list[Quote]:
    return list(Quote.objects.filter(partner=partner, organization=customer).order_by("-created_at")[:limit])


def requests_of(*, partner: Partner, status: str | None = None, customer: Organization | None = None) -> QuerySet[PartnerRequest]:
    """The partner's requests from customers it is still linked to, newest first."""
    requests = PartnerRequest.objects.select_related("customer", "product").filter(
        partner=partner, link__status=PartnerLink.Status.ACTIVE
    )
    if status:
        requests = requests.filter(status=status)
    if customer is not None:
        requests = requests.filter(customer=customer)
    return requests.order_by("-created_at", "-pk")


def request_for_partner(*, partner: Partner, request_id) -> PartnerRequest | None:
    """One of the partner's requests through a link that is still active, or None."""
    return requests_of(partner=partner).filter(public_id=request_id).first()


def activity_for_partner(*, partner: Partner, customer: Organization, limit: int = 20) -> list[AuditEntry]:
    return list(AuditEntry.objects.filter(partner=partner, customer=customer).order_by("-created_at", "-pk")[:limit])


def request_counts(*, partner: Partner) -> dict[str, int]:
    counts = requests_of(partner=partner).aggregate(
        open=Count("pk", filter=Q(status=PartnerRequest.Status.OPEN)),
        done=Count("pk", filter=Q(status=PartnerRequest.Status.DONE)),
        declined=Count("pk", filter=Q(status=PartnerRequest.Status.DECLINED)),
    )
    return counts
