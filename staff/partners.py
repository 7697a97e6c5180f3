"""The staff partners page's figures (/staff/partners/): partners by tier, customers per
partner, revenue through partners against direct, month by month, and applications waiting.

Revenue is what customers paid: invoices marked paid, by the month they were paid (site time
zone), at their totals (partner invoices after the partner's discount), before refunds and
credit notes; "through partners" is an invoice billed to another organization than the
licensee (Invoice.bill_to set), "direct" every other. One table and chart per currency: amounts
in different currencies are never added."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from html import escape

from django.conf import settings
from django.db.models import Count, Q, Sum
from django.db.models.functions import TruncMonth
from django.utils import timezone

from billing.models import Invoice
from common.money import money
from partners.models import Partner, PartnerApplication, PartnerLink
from partners.selectors import tier_discount_bp, tier_name

MONTHS = 12
PARTNER_COLOUR = "#3446c4"
DIRECT_COLOUR = "#9aa3b2"
INK, MUTED, LINE = "#1d2330", "#5b6474", "#e3e7ee"


@dataclass
class TierRow:
    code: str
    name: str
    discount: str
    active: int
    suspended: int


@dataclass
class PartnerRow:
    partner: Partner
    tier: str
    customers: int
    pending: int


@dataclass
class MonthRow:
    month: datetime
    through_partners: int
    direct: int

    @property
    def total(self) -> int:
        return self.through_partners + self.direct

    @property
    def share(self) -> str:
        """Through partners as a share of the month's total, "–" for a month without revenue."""
        return f"{round(100 * self.through_partners / self.total)} %" if self.total else "–"


@dataclass
class CurrencyRevenue:
    currency: str
    months: list[MonthRow]
    svg: str

    @property
    def through_partners(self) -> int:
        return sum(row.through_partners for row in self.months)

    @property
    def direct(self) -> int:
        return sum(row.direct for row in self.months)

    @property
    def share(self) -> str:
        total = self.through_partners + self.direct
        return f"{round(100 * self.through_partners / total)} %" if total else "–"


def month_starts(now: datetime, count: int = MONTHS) -> list[datetime]:
    """The first instants of the last `count` months, the current one last (site time zone)."""
    local = timezone.localtime(now)
    year, month = local.year, local.month
    starts = []
    for _ in range(count):
        starts.append(local.replace(year=year, month=month, day=1, hour=0, minute=0, second=0, microsecond=0))
        month -= 1
        if month == 0:
            year, month = year - 1, 12
    return list(reversed(starts))


def tiers_overview() -> list[TierRow]:
    counts = {
        (row["tier"], row["status"]): row["count"]
        for row in Partner.objects.values("tier", "status").annotate(count=Count("pk"))
    }
    codes = list(settings.PARTNER_TIERS) + sorted({tier for tier, _ in counts} - set(settings.PARTNER_TIERS))
    return [
        TierRow(
            code=code,
            name=tier_name(code),
            discount=f"{tier_discount_bp(code) / 100:g} %",
            active=counts.get((code, Partner.Status.ACTIVE), 0),
            suspended=counts.get((code, Partner.Status.SUSPENDED), 0),
        )
        for code in codes
    ]


def partners_overview() -> list[PartnerRow]:
    """Every partner with its customers (active links) and links waiting for an answer, most
    customers first."""
    partners = (
        Partner.objects.select_related("organization")
        .annotate(
            customers=Count("links", filter=Q(links__status=PartnerLink.Status.ACTIVE)),
            pending=Count("links", filter=Q(links__status__in=PartnerLink.PENDING_STATUSES)),
        )
        .order_by("-customers", "organization__name")
    )
    return [PartnerRow(partner=p, tier=tier_name(p.tier), customers=p.customers, pending=p.pending) for p in partners]


def revenue_by_month(*, now: datetime) -> list[CurrencyRevenue]:
    """Paid invoices of the last 12 months (this one so far), through partners and direct, per currency."""
    starts = month_starts(now)
    rows = (
        Invoice.objects.filter(status=Invoice.Status.PAID, paid_at__gte=starts[0], paid_at__lte=now)
        .annotate(month=TruncMonth("paid_at"))
        .values("month", "currency")
        .annotate(
            through_partners=Sum("total_minor", filter=Q(bill_to__isnull=False)),
            direct=Sum("total_minor", filter=Q(bill_to__isnull=True)),
        )
    )
    found: dict[str, dict[tuple[int, int], tuple[int, int]]] = {}
    for row in rows:
        month = timezone.localtime(row["month"]) if timezone.is_aware(row["month"]) else row["month"]
        found.setdefault(row["currency"], {})[(month.year, month.month)] = (row["through_partners"] or 0, row["direct"] or 0)
    revenue = []
    for currency in sorted(found):
        months = [
            MonthRow(start, *found[currency].get((start.year, start.month), (0, 0)))
            for start in starts
        ]
        revenue.append(CurrencyRevenue(currency=currency, months=months, svg=revenue_svg(months, currency)))
    return revenue


def pending_applications() -> list[PartnerApplication]:
    return list(
        PartnerApplication.objects.select_related("organization")
        .filter(status=PartnerApplication.Status.PENDING)
        .order_by("created_at")
    )


def _ceiling(value: int) -> int:
    if value <= 0:
        return 100
    power = 1
    while True:
        for factor in (1, 2, 5):
            if factor * power >= value:
                return factor * power
        power *= 10


def _short(minor: int) -> str:
    whole = minor / 100
    if whole >= 1_000_000:
        return f"{whole / 1_000_000:g}M"
    if whole >= 1_000:
        return f"{whole / 1_000:g}k"
    return f"{whole:g}"


def revenue_svg(months: list[MonthRow], currency: str) -> str:
    """Two bars a month: through partners (brand blue) beside direct (grey), on one axis."""
    width, height = max(360, 60 + 52 * len(months)), 230
    left, right, top, bottom = 52, width - 10, 16, height - 36
    step = (right - left) / max(len(months), 1)
    ceiling = _ceiling(max((max(row.through_partners, row.direct) for row in months), default=0))

    def y(value: float) -> float:
        return bottom - value / ceiling * (bottom - top)

    described = "; ".join(
        f"{row.month:%b %Y}: through partners {money(row.through_partners, currency)}, direct {money(row.direct, currency)}"
        for row in months
    )
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="revenue-chart" viewBox="0 0 {width} {height}" width="100%" '
        f'style="min-width:{width / 16:.1f}rem;height:auto" role="img" '
        f'aria-label="{escape(f"Paid revenue by month, in {currency}: {described}")}">'
    ]
    for tick in (0, ceiling / 2, ceiling):
        parts.append(
            f'<line x1="{left}" y1="{y(tick):.1f}" x2="{right}" y2="{y(tick):.1f}" stroke="{LINE}" stroke-width="1"/>'
            f'<text x="{left - 6}" y="{y(tick) + 4:.1f}" font-size="11" text-anchor="end" fill="{MUTED}">{_short(int(tick))}</text>'
        )
    bar = min(18.0, step * 0.34)
    for index, row in enumerate(months):
        x = left + step * (index + 0.5)
        for offset, value, colour in ((-bar, row.through_partners, PARTNER_COLOUR), (0, row.direct, DIRECT_COLOUR)):
            if value:
                parts.append(
                    f'<rect x="{x + offset:.1f}" y="{y(value):.1f}" width="{bar:.1f}" height="{bottom - y(value):.1f}" fill="{colour}"/>'
                )
        parts.append(
            f'<text x="{x:.1f}" y="{bottom + 15}" font-size="11" text-anchor="middle" fill="{MUTED}">{row.month:%b}</text>'
        )
        if index == 0 or row.month.month == 1:
            parts.append(
                f'<text x="{x:.1f}" y="{bottom + 29}" font-size="10" text-anchor="middle" fill="{MUTED}">{row.month:%Y}</text>'
            )
    parts.append("</svg>")
    return "".join(parts)
