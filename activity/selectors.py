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
from datetime import date, datetime, timedelta
from typing import Any, Literal

from django.conf import settings
from django.db import connection
from django.db.models import Count, Q
from django.utils import timezone

from catalog.models import Product

from .models import ActivityDay, StaffFiguresSnapshot

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
    end of `as_of` (a UTC day). Over all organizations, from the day's stored staff figures when
    they exist; otherwise two aggregate queries over at most 30 days of rollups."""
    as_of = as_of or last_whole_day()
    if organization_id is None:
        stored = (
            StaffFiguresSnapshot.objects.filter(as_of=as_of, period=USAGE_KEY, product_key=ALL_PRODUCTS)
            .values_list("counts", flat=True)
            .first()
        )
        if stored is not None:
            return [
                UsageFigures(product=product, as_of=as_of, dau=dau, wau=wau, mau=mau, average_dau=average_dau)
                for product in Product.objects.filter(is_active=True).order_by("position", "code")
                for dau, wau, mau, average_dau in [stored.get(str(product.pk), [0, 0, 0, 0.0])]
            ]
    return usage_figures_live(as_of=as_of, organization_id=organization_id)


def usage_figures_live(*, as_of: date, organization_id: int | None) -> list[UsageFigures]:
    """usage_figures computed from the rollups (what the staff snapshot stores)."""
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


# ---------------------------------------------------------------------------------------------
# Periods, retention, lifecycle and monthly usage (docs/activity.md#retention, #lifecycle).
#
# All three are read from one small table per scope (a product, or all products; all
# organizations, or one): for each person, the periods (ISO weeks or calendar months, UTC) they
# were active in, reduced in SQL to three counts, so no person-level row ever reaches Python:
#
# - cohort x period: people who started in `cohort` (their first active period in the scope)
#   and were active in `period` (N-day retention);
# - cohort x last: people who started in `cohort` and were last active in `last` (unbounded
#   retention: active in period n or later = last active period at or after n);
# - period x before: people active in `period` whose previous active period was `before` (None
#   for their first): lifecycle (new, returning, resurrecting, dormant) and monthly usage.
#
# Staff figures over all organizations are read from the day's stored snapshot of these tables
# when there is one (activity.figures_snapshot, docs/activity.md#how-the-staff-figures-stay-fast);
# one organization's figures are computed live.

Period = Literal["week", "month"]
Mode = Literal["n_day", "unbounded"]
PERIODS: tuple[Period, ...] = ("week", "month")
MODES: tuple[Mode, ...] = ("n_day", "unbounded")
# The product key of "all products" in a PeriodCounts table set.
ALL_PRODUCTS = 0
# The snapshot row holding the DAU/WAU/MAU figures (by product id) instead of count tables.
USAGE_KEY = "usage"


def min_cohort() -> int:
    return int(getattr(settings, "ACTIVITY_MIN_COHORT", 20))


def period_start(day: date, period: Period) -> date:
    """The first day of the ISO week (Monday) or calendar month holding `day`."""
    return day - timedelta(days=day.weekday()) if period == "week" else day.replace(day=1)


def period_add(start: date, count: int, period: Period) -> date:
    """The start of the period `count` periods after the one starting on `start` (count may be
    negative)."""
    if period == "week":
        return start + timedelta(weeks=count)
    months = start.year * 12 + start.month - 1 + count
    return date(months // 12, months % 12 + 1, 1)


def period_end(start: date, period: Period) -> date:
    """The last day of the period starting on `start`."""
    return period_add(start, 1, period) - timedelta(days=1)


def period_complete(start: date, period: Period, as_of: date) -> bool:
    """A period is complete when its last day is no later than `as_of`; the one still running
    on `as_of` is incomplete (marked so and drawn lighter)."""
    return period_end(start, period) <= as_of


@dataclass(frozen=True)
class PeriodCounts:
    """The three count tables of one scope, keyed by period starts (see the comment above)."""

    cohort_period: dict[tuple[date, date], int]
    cohort_last: dict[tuple[date, date], int]
    period_before: dict[tuple[date, date | None], int]

    def to_json(self) -> dict[str, list[list[str | int | None]]]:
        return {
            "cohort_period": [
                [a.isoformat(), b.isoformat(), n]
                for (a, b), n in sorted(self.cohort_period.items())
            ],
            "cohort_last": [
                [a.isoformat(), b.isoformat(), n] for (a, b), n in sorted(self.cohort_last.items())
            ],
            "period_before": [
                [a.isoformat(), b.isoformat() if b else None, n]
                for (a, b), n in sorted(
                    self.period_before.items(),
                    key=lambda item: (item[0][0], item[0][1] or date.min),
                )
            ],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PeriodCounts:
        return cls(
            cohort_period={
                (date.fromisoformat(a), date.fromisoformat(b)): n
                for a, b, n in data["cohort_period"]
            },
            cohort_last={
                (date.fromisoformat(a), date.fromisoformat(b)): n for a, b, n in data["cohort_last"]
            },
            period_before={
                (date.fromisoformat(a), date.fromisoformat(b) if b else None): n
                for a, b, n in data["period_before"]
            },
        )

    def active(self, start: date) -> int:
        """People active in the period starting on `start`."""
        return sum(n for (period, _), n in self.period_before.items() if period == start)


def _period_sql(period: Period) -> str:
    """SQL for the start of the day's period: ISO week (Monday) or calendar month."""
    if connection.vendor == "postgresql":
        return f"date_trunc('{'week' if period == 'week' else 'month'}', day::timestamp)::date"
    if period == "week":  # SQLite (the dev default): %w is 0 for Sunday
        return "date(day, '-' || ((CAST(strftime('%%w', day) AS INTEGER) + 6) %% 7) || ' days')"
    return "date(day, 'start of month')"


def _as_date(value: Any) -> date | None:
    if value is None or isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


def period_counts(
    *,
    period: Period,
    as_of: date,
    organization_id: int | None = None,
    product_id: int | None = None,
    across_products: bool,
    with_all_products: bool = False,
) -> dict[int, PeriodCounts]:
    """The count tables per product id (`across_products=False`: each product on its own, or
    only `product_id`) or for all products at once under ALL_PRODUCTS (a person counts once
    across products), from every active day up to `as_of`, for all organizations or one. One
    query: the person-level rows stay in the database. `with_all_products` adds the
    ALL_PRODUCTS tables to each product's in the same statement, from the per-product distinct
    periods already made (one read of the rollups instead of two: the staff build)."""
    table = ActivityDay._meta.db_table
    where = ["active_events > 0", "day <= %s"]
    params: list[Any] = [connection.ops.adapt_datefield_value(as_of)]
    if organization_id is not None:
        where.append("organization_id = %s")
        params.append(organization_id)
    if product_id is not None:
        where.append("product_id = %s")
        params.append(product_id)
    product = f"{ALL_PRODUCTS}" if across_products else "product_id"
    scoped = (
        "scoped AS (SELECT product_id, user_id, period FROM active UNION ALL "  # noqa: S608 - a constant
        f"SELECT DISTINCT {ALL_PRODUCTS}, user_id, period FROM active), "
        if with_all_products and not across_products
        else "scoped AS (SELECT product_id, user_id, period FROM active), "
    )
    sql = (
        f"WITH active AS (SELECT DISTINCT {product} AS product_id, user_id, {_period_sql(period)} AS period "  # noqa: S608 - the model's table and fixed SQL; values are parameters
        f"FROM {table} WHERE {' AND '.join(where)}), "
        f"{scoped}"
        "marked AS (SELECT product_id, period, "
        "MIN(period) OVER (PARTITION BY product_id, user_id) AS cohort, "
        "MAX(period) OVER (PARTITION BY product_id, user_id) AS last, "
        "LAG(period) OVER (PARTITION BY product_id, user_id ORDER BY period) AS before FROM scoped) "
        "SELECT 'r', product_id, cohort, period, COUNT(*) FROM marked GROUP BY product_id, cohort, period "
        "UNION ALL SELECT 'u', product_id, cohort, last, COUNT(*) FROM marked WHERE period = cohort GROUP BY product_id, cohort, last "
        "UNION ALL SELECT 'l', product_id, period, before, COUNT(*) FROM marked GROUP BY product_id, period, before"
    )
    tables: dict[int, PeriodCounts] = {}
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        for kind, key, first, second, people in cursor.fetchall():
            counts = tables.setdefault(int(key), PeriodCounts({}, {}, {}))
            target = {
                "r": counts.cohort_period,
                "u": counts.cohort_last,
                "l": counts.period_before,
            }[kind]
            target[(_as_date(first), _as_date(second))] = int(people)
    return tables


def _counts(
    *, period: Period, as_of: date, product_id: int | None, organization_id: int | None
) -> PeriodCounts:
    """One scope's count tables: the staff snapshot of `as_of` when it holds them (all
    organizations only), else computed live."""
    key = ALL_PRODUCTS if product_id is None else product_id
    if organization_id is None:
        stored = snapshot_counts(as_of=as_of, period=period, product_key=key)
        if stored is not None:
            return stored
    tables = period_counts(
        period=period,
        as_of=as_of,
        organization_id=organization_id,
        product_id=product_id,
        across_products=product_id is None,
    )
    return tables.get(key, PeriodCounts({}, {}, {}))


def snapshot_counts(*, as_of: date, period: Period, product_key: int) -> PeriodCounts | None:
    """The stored staff tables of `as_of` for a product (or ALL_PRODUCTS), None when no snapshot
    of that day exists."""
    row = (
        StaffFiguresSnapshot.objects.filter(as_of=as_of, period=period, product_key=product_key)
        .values_list("counts", flat=True)
        .first()
    )
    return PeriodCounts.from_json(row) if row is not None else None


def staff_figures_latest(*, until: date) -> tuple[date, datetime] | None:
    """The newest stored staff figures up to `until`: their as_of and when they were built."""
    row = (
        StaffFiguresSnapshot.objects.filter(as_of__lte=until)
        .order_by("-as_of")
        .values_list("as_of", "built_at")
        .first()
    )
    return (row[0], row[1]) if row else None


def staff_figures_built_at(*, as_of: date) -> datetime | None:
    """When the stored staff figures of `as_of` were built; None when there are none (the page
    then computes them live)."""
    return StaffFiguresSnapshot.objects.filter(as_of=as_of).values_list("built_at", flat=True).first()


@dataclass(frozen=True)
class RetentionCohort:
    """The people who started in a product (their first active day in it) in the period starting
    on `start`; `retained[n]` of them were active in period n after it (n_day) or in period n or
    later (unbounded); None for a period after as_of."""

    start: date
    size: int
    small: bool
    retained: list[int | None]

    def share(self, n: int) -> float | None:
        value = self.retained[n] if n < len(self.retained) else None
        return value / self.size if value is not None and self.size else None


@dataclass(frozen=True)
class Retention:
    product: Product | None
    period: Period
    mode: Mode
    as_of: date
    cohorts: list[RetentionCohort]  # oldest first; the last one is the period holding as_of
    periods: int
    min_cohort: int
    definition: str

    def average(self, n: int) -> float | None:
        """Of all the people in the cohorts that are not small and whose period n is complete,
        the share retained at n (weighted by cohort size: each person counts once)."""
        retained = size = 0
        for cohort in self.cohorts:
            value = cohort.retained[n] if n < len(cohort.retained) else None
            if cohort.small or value is None or not self.cell_complete(cohort, n):
                continue
            retained += value
            size += cohort.size
        return retained / size if size else None

    def cell_complete(self, cohort: RetentionCohort, n: int) -> bool:
        """Whether period n of the cohort has ended by as_of (the cell still filling is drawn
        lighter and left out of the average)."""
        return period_complete(period_add(cohort.start, n, self.period), self.period, self.as_of)

    @property
    def product_name(self) -> str:
        return self.product.name if self.product else "All products"


def _unit(period: Period, count: int = 1) -> str:
    return period if count == 1 else f"{period}s"


def retention_definition(
    *, product_name: str, period: Period, mode: Mode, as_of: date, minimum: int
) -> str:
    where = "any product" if product_name == "All products" else product_name
    started = f"A cohort is the people who started in {where} in the same {period}: the {period} of their first active day in it."
    if mode == "n_day":
        share = (
            f"{_unit(period).capitalize()} n shows the share of the cohort active in the n-th {period} after it "
            f"({period} 0 is the {period} they started: always 100 %)."
        )
    else:
        share = (
            f"{_unit(period).capitalize()} n shows the share of the cohort active in the n-th {period} after it "
            f"or in any later {period} up to {as_of:%-d %b %Y}."
        )
    return (
        f"{started} {share} Cohorts of fewer than {minimum} people are marked small and left out of the average; "
        f"the average counts each person of the other cohorts once, over {_unit(period, 2)} that have ended. "
        f"A {period} still running on {as_of:%-d %b %Y} is drawn lighter; later ones are blank."
    )


def retention(
    *,
    product_id: int | None,
    period: Period = "week",
    mode: Mode = "n_day",
    periods: int = 12,
    as_of: date | None = None,
    organization_id: int | None = None,
) -> Retention:
    """Cohort retention of a product (or all products, a person counted once across them), for
    all organizations or one: the `periods` cohorts ending with the one holding `as_of`, each
    with `periods` cells (n = 0..periods-1)."""
    if period not in PERIODS or mode not in MODES or periods < 1:
        raise ValueError(
            f"period must be one of {PERIODS}, mode one of {MODES}, periods at least 1"
        )
    as_of = as_of or last_whole_day()
    product = Product.objects.get(pk=product_id) if product_id is not None else None
    counts = _counts(
        period=period, as_of=as_of, product_id=product_id, organization_id=organization_id
    )
    current = period_start(as_of, period)
    minimum = min_cohort()
    cohorts = []
    for back in range(periods - 1, -1, -1):
        start = period_add(current, -back, period)
        size = counts.cohort_period.get((start, start), 0)
        retained: list[int | None] = []
        for n in range(periods):
            at = period_add(start, n, period)
            if at > current:
                retained.append(None)
            elif mode == "n_day":
                retained.append(counts.cohort_period.get((start, at), 0))
            else:
                retained.append(
                    sum(
                        people
                        for (cohort, last), people in counts.cohort_last.items()
                        if cohort == start and last >= at
                    )
                )
        cohorts.append(
            RetentionCohort(start=start, size=size, small=size < minimum, retained=retained)
        )
    return Retention(
        product=product,
        period=period,
        mode=mode,
        as_of=as_of,
        cohorts=cohorts,
        periods=periods,
        min_cohort=minimum,
        definition=retention_definition(
            product_name=product.name if product else "All products",
            period=period,
            mode=mode,
            as_of=as_of,
            minimum=minimum,
        ),
    )


@dataclass(frozen=True)
class LifecyclePoint:
    """People in a period: new (first active day ever in it), returning (active in it and the
    period before), resurrecting (active in it, not the period before, active earlier), dormant
    (active the period before, not in it; drawn as a negative bar)."""

    start: date
    new: int
    returning: int
    resurrecting: int
    dormant: int
    complete: bool

    @property
    def active(self) -> int:
        return self.new + self.returning + self.resurrecting


LIFECYCLE_DEFINITIONS = {
    "new": "Active in the {period} and their first active day ever ({where}) was in it.",
    "returning": "Active in the {period} and in the {period} before.",
    "resurrecting": "Active in the {period}, not in the {period} before, but active some time earlier.",
    "dormant": "Active in the {period} before and not in this one (drawn below the line).",
}


def _lifecycle_points(
    counts: PeriodCounts, *, period: Period, starts: list[date], as_of: date
) -> list[LifecyclePoint]:
    points = []
    for start in starts:
        previous = period_add(start, -1, period)
        new = counts.period_before.get((start, None), 0)
        returning = counts.period_before.get((start, previous), 0)
        resurrecting = counts.active(start) - new - returning
        points.append(
            LifecyclePoint(
                start=start,
                new=new,
                returning=returning,
                resurrecting=resurrecting,
                dormant=counts.active(previous) - returning,
                complete=period_complete(start, period, as_of),
            )
        )
    return points


def lifecycle(
    *,
    product_id: int | None,
    period: Period = "week",
    periods: int = 12,
    as_of: date | None = None,
    organization_id: int | None = None,
) -> list[LifecyclePoint]:
    """New, returning, resurrecting and dormant people in each of the `periods` periods ending
    with the one holding `as_of`, oldest first, for a product (or all products) and all
    organizations or one."""
    if period not in PERIODS or periods < 1:
        raise ValueError(f"period must be one of {PERIODS}, periods at least 1")
    as_of = as_of or last_whole_day()
    counts = _counts(
        period=period, as_of=as_of, product_id=product_id, organization_id=organization_id
    )
    current = period_start(as_of, period)
    starts = [period_add(current, -back, period) for back in range(periods - 1, -1, -1)]
    return _lifecycle_points(counts, period=period, starts=starts, as_of=as_of)


@dataclass(frozen=True)
class MonthUsage:
    """A calendar month: people active in it (its MAU; through as_of while it runs), people
    active the month before, and how many of those came back this month."""

    month: date
    active: int
    previous_active: int
    retained: int
    complete: bool

    @property
    def retained_share(self) -> float | None:
        return self.retained / self.previous_active if self.previous_active else None


MONTH_USAGE_DEFINITIONS = {
    "mau": "People active on at least one day of the calendar month (UTC), up to the last whole day while the month runs.",
    "retention": "Of the people active in the month before, the share active in this month.",
}


def monthly_usage(
    *,
    until: date,
    months: int = 12,
    product_id: int | None = None,
    organization_id: int | None = None,
    as_of: date | None = None,
) -> list[MonthUsage]:
    """Each of the `months` calendar months ending with the one starting on `until`, oldest
    first: its MAU and monthly retention, for a product (or all products, a person counted once
    across them) and all organizations or one. A month still running on `as_of` (default
    yesterday) counts through as_of and is marked incomplete; a later one is all zeros."""
    as_of = as_of or last_whole_day()
    until = until.replace(day=1)
    counts = _counts(
        period="month", as_of=as_of, product_id=product_id, organization_id=organization_id
    )
    result = []
    for back in range(months - 1, -1, -1):
        month = period_add(until, -back, "month")
        previous = period_add(month, -1, "month")
        result.append(
            MonthUsage(
                month=month,
                active=counts.active(month),
                previous_active=counts.active(previous),
                retained=counts.period_before.get((month, previous), 0),
                complete=period_complete(month, "month", as_of),
            )
        )
    return result
