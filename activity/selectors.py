"""The usage figures, read from the daily rollups only (docs/activity.md#figures).

Every window is made of whole UTC days ending on `as_of` (by default yesterday, the last whole
day), so a figure does not move while the day is still being written:

- DAU: people active on `as_of`;
- WAU: people active on at least one of the 7 days ending on `as_of`;
- MAU: people active on at least one of the 30 days ending on `as_of`;
- stickiness: the average DAU over those 30 days divided by MAU (1.0: everyone who came this
  month came every day).

A person counts once per product however many organizations they are active in; within one
organization's figures, only that organization's activity counts.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, timedelta

from django.db.models import Count, Q
from django.utils import timezone

from catalog.models import Product

from .models import ActivityDay

WEEK_DAYS = 7
MONTH_DAYS = 30


@dataclass(frozen=True)
class UsageFigures:
    product: Product
    as_of: date
    dau: int
    wau: int
    mau: int
    # The average of the 30 days' DAU, for stickiness.
    average_dau: float

    @property
    def stickiness(self) -> float | None:
        return self.average_dau / self.mau if self.mau else None


def last_whole_day() -> date:
    return timezone.now().date() - timedelta(days=1)


def usage_figures(*, as_of: date | None = None, organization_id: int | None = None) -> list[UsageFigures]:
    """DAU, WAU, MAU and stickiness per active product (all organizations, or one), as of the
    end of `as_of` (a UTC day). Two aggregate queries over at most 30 days of rollups."""
    as_of = as_of or last_whole_day()
    month_start = as_of - timedelta(days=MONTH_DAYS - 1)
    rows = ActivityDay.objects.filter(active_events__gt=0, day__gte=month_start, day__lte=as_of)
    if organization_id is not None:
        rows = rows.filter(organization_id=organization_id)
    windows = {
        row["product"]: row
        for row in rows.values("product").annotate(
            mau=Count("user", distinct=True),
            wau=Count("user", distinct=True, filter=Q(day__gte=as_of - timedelta(days=WEEK_DAYS - 1))),
            dau=Count("user", distinct=True, filter=Q(day=as_of)),
        )
    }
    daily: dict[int, int] = defaultdict(int)
    for row in rows.values("product", "day").annotate(people=Count("user", distinct=True)):
        daily[row["product"]] += row["people"]
    return [
        UsageFigures(
            product=product,
            as_of=as_of,
            dau=windows.get(product.pk, {}).get("dau", 0),
            wau=windows.get(product.pk, {}).get("wau", 0),
            mau=windows.get(product.pk, {}).get("mau", 0),
            average_dau=daily[product.pk] / MONTH_DAYS,
        )
        for product in Product.objects.filter(is_active=True).order_by("position", "code")
    ]


def active_people(*, organization_ids: list[int], as_of: date | None = None) -> dict[tuple[int, int], int]:
    """People active in the 30 days ending on `as_of` (yesterday by default), per (organization
    id, product id): each organization's MAU per product, the numerator of its active-seat
    ratio (active people / paid seats). One query."""
    as_of = as_of or last_whole_day()
    rows = (
        ActivityDay.objects.filter(
            organization_id__in=organization_ids,
            active_events__gt=0,
            day__gte=as_of - timedelta(days=MONTH_DAYS - 1),
            day__lte=as_of,
        )
        .values("organization", "product")
        .annotate(people=Count("user", distinct=True))
    )
    return {(row["organization"], row["product"]): row["people"] for row in rows}
