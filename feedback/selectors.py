"""Reads of feedback: the reports (aggregated in SQL), follow-ups and surveys.

Every customer-facing read is scoped by organization; staff reads are named as such. Reports
aggregate in PostgreSQL: the month's breakdowns in one GROUPING SETS pass over the month's rows
(index on month), the trend over index-only scans of (month, score), a customer's report over
(organization, month).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date, timedelta

from django.conf import settings
from django.db import connection
from django.db.models import QuerySet
from django.db.models.expressions import RawSQL

from accounts.models import Membership, Organization, User
from activity.people import ACTIVE_DAYS_BANDS, USAGE_STATES
from activity.selectors import (
    MONTH_DAYS,
    MONTH_USAGE_DEFINITIONS,
    MonthUsage,
    Retention,
    last_whole_day,
    monthly_usage,
    retention,
)
from billing.selectors import ActiveSeats, active_seats_of
from catalog.models import Edition, Product

from .exceptions import NotFound
from .models import Category, FollowUp, OrganizationReportRun, Response, Role, Survey
from .reports import (
    Group,
    MonthlyReport,
    MonthPoint,
    OrganizationReport,
    Score,
    months_back,
    question_for,
)

TENURE_BUCKETS = [
    ("0-29", "Less than 30 days", 0, 30),
    ("30-89", "30 to 89 days", 30, 90),
    ("90-364", "90 days to a year", 90, 365),
    ("365+", "A year or more", 365, None),
]
_TENURE_CASE = (
    "CASE WHEN tenure_days < 30 THEN '0-29' WHEN tenure_days < 90 THEN '30-89' "
    "WHEN tenure_days < 365 THEN '90-364' ELSE '365+' END"
)
# The band of days active in the 30 days before answering (activity.people.ACTIVE_DAYS_BANDS);
# NULL (not known) for an answer stored without its usage.
_ACTIVE_DAYS_CASE = (
    "CASE "
    + " ".join(
        f"WHEN active_days BETWEEN {lowest} AND {highest} THEN '{key}'"
        for key, _, lowest, highest in ACTIVE_DAYS_BANDS
    )
    + " END"
)
BREAKDOWNS = ["role", "product", "edition", "tenure", "usage", "active_days", "paying", "category"]
BREAKDOWN_TITLES = {
    "role": "By role",
    "product": "By product",
    "edition": "By edition",
    "tenure": "By tenure of the respondent",
    "usage": "By use of the product when answering",
    "active_days": "By days active in the 30 days before answering",
    "paying": "Paying or not",
    "category": "By category of comment",
}
# What each usage breakdown's groups mean, printed beside them.
BREAKDOWN_DEFINITIONS = {
    "usage": [(label, definition) for _, label, definition in USAGE_STATES],
    "active_days": [
        (
            "Days active",
            "the distinct UTC days the respondent used the product they were asked about (every "
            "product of their organization when none) in the 30 whole days before the day they answered",
        )
    ],
}


def min_group_responses() -> int:
    return settings.FEEDBACK_MIN_GROUP_RESPONSES


def _group(key: str, label: str, score: Score) -> Group:
    return Group(key=key, label=label, score=score, minimum=min_group_responses())


_COUNTS = "count(*), count(*) FILTER (WHERE score >= 9), count(*) FILTER (WHERE score <= 6)"


def _grouping_sets(*, dimensions: list[str], sets: list[tuple[str, ...]], source: str, params: list) -> list[tuple]:
    """Rows of `GROUPING(d)...` flags, the dimensions' values, then the three counts, one row per
    group of each grouping set over `source` (a FROM clause). PostgreSQL does it in one pass
    with GROUPING SETS; SQLite (`make run` without DATABASE_URL) gets the same rows from one
    GROUP BY per set, joined with UNION ALL."""
    if connection.vendor == "postgresql":
        sql = (
            f"SELECT {', '.join(f'GROUPING({d})' for d in dimensions)}, {', '.join(dimensions)}, {_COUNTS} "  # noqa: S608
            f"FROM {source} GROUP BY GROUPING SETS ({', '.join('(' + ', '.join(s) + ')' for s in sets)})"
        )
        run_params = params
    else:
        parts = []
        for grouping_set in sets:
            flags = ", ".join("0" if d in grouping_set else "1" for d in dimensions)
            values = ", ".join(d if d in grouping_set else "NULL" for d in dimensions)
            group_by = f" GROUP BY {', '.join(grouping_set)}" if grouping_set else ""
            parts.append(f"SELECT {flags}, {values}, {_COUNTS} FROM {source}{group_by}")  # noqa: S608
        sql = " UNION ALL ".join(parts)
        run_params = params * len(sets)
    with connection.cursor() as cursor:
        cursor.execute(sql, run_params)  # noqa: S608 - dimensions and sources are constants of this module
        return cursor.fetchall()


def _as_date(value) -> date:
    """A month as the database gives it back: a date (PostgreSQL) or ISO text (SQLite)."""
    return date.fromisoformat(value) if isinstance(value, str) else value


def _trend(*, until: date, months: int) -> list[MonthPoint]:
    """Everyone's score per month over the `months` months up to `until`, empty months included."""
    since = months_back(until, months - 1)
    sql = (
        "SELECT month, count(*), count(*) FILTER (WHERE score >= 9), count(*) FILTER (WHERE score <= 6) "
        "FROM feedback_response WHERE month BETWEEN %s AND %s"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql + " GROUP BY month", [since, until])
        found = {
            _as_date(row[0]): Score(responses=row[1], promoters=row[2], detractors=row[3]) for row in cursor.fetchall()
        }
    points = []
    for offset in range(months - 1, -1, -1):
        month = months_back(until, offset)
        score = found.get(month, Score(0, 0, 0))
        points.append(MonthPoint(month=month, group=_group(month.isoformat(), f"{month:%b %Y}", score)))
    return points


def breakdown_labels() -> dict[str, dict[str, str]]:
    products = {str(product.pk): product.name for product in Product.objects.all()}
    editions = {
        str(edition.pk): f"{edition.product.name} {edition.name}"
        for edition in Edition.objects.select_related("product")
    }
    return {
        "role": dict(Role.choices),
        "product": products,
        "edition": editions,
        "tenure": {key: label for key, label, _, _ in TENURE_BUCKETS},
        "usage": {state: label for state, label, _ in USAGE_STATES},
        "active_days": {key: label for key, label, _, _ in ACTIVE_DAYS_BANDS},
        "paying": {"true": "Paying", "false": "Not paying (trial or free)"},
        "category": dict(Category.choices),
    }


def breakdown_key_label(name: str, value: object, labels: dict[str, dict[str, str]]) -> tuple[str, str]:
    """One breakdown row's key and its label in words. `paying` is a boolean that PostgreSQL
    gives back as True/False and SQLite (`make run` without DATABASE_URL) as 1/0: both read
    "Paying" / "Not paying", never "0"."""
    if value is None:
        return "unknown", "Not known"
    if name == "paying":
        key = "true" if value in (True, 1, "1", "true", "t") else "false"
    else:
        key = str(value).lower() if isinstance(value, bool) else str(value)
    return key, labels[name].get(key, key)


def questions_asked(*, product_ids: list[int] | None = None) -> list[str]:
    """The survey's question as each product asked it ("... recommend Tracker ..."), for the
    products given (every product with answers when None)."""
    if product_ids is None:
        product_ids = list(Response.objects.exclude(product_id=None).values_list("product_id", flat=True).distinct())
    names = Product.objects.filter(pk__in=product_ids).order_by("name").values_list("name", flat=True)
    return [question_for(name) for name in names]


def monthly_report(*, month: date, trend_months: int = 12) -> MonthlyReport:
    """Staff: NPS of `month` (a first of the month) with its margin, last month's, the trend over
    `trend_months` months, and every breakdown of `month`, in one pass over its responses."""
    dimensions = ["role", "product_id", "edition_id", "tenure", "usage", "active_days", "paying", "category"]
    rows = _grouping_sets(
        dimensions=dimensions,
        sets=[(), *((dimension,) for dimension in dimensions)],
        source=(
            "(SELECT role, product_id, edition_id, paying, score, NULLIF(category, '') AS category, "  # noqa: S608
            f"{_TENURE_CASE} AS tenure, NULLIF(usage_state, '') AS usage, {_ACTIVE_DAYS_CASE} AS active_days "
            "FROM feedback_response WHERE month = %s) AS answers"
        ),
        params=[month],
    )
    width = len(dimensions)
    labels = breakdown_labels()
    overall = _group("all", "Everyone", Score(0, 0, 0))
    breakdowns: dict[str, list[Group]] = {name: [] for name in BREAKDOWNS}
    for row in rows:
        grouping, values, counts = row[0:width], row[width : 2 * width], row[2 * width : 2 * width + 3]
        score = Score(responses=counts[0], promoters=counts[1], detractors=counts[2])
        if all(grouping):
            overall = _group("all", "Everyone", score)
            continue
        index = list(grouping).index(0)
        name = BREAKDOWNS[index]
        value = values[index]
        if value is None and name == "category":
            continue  # answers without a comment have no category
        key, label = breakdown_key_label(name, value, labels)
        breakdowns[name].append(_group(key, label, score))
    order = {
        "role": list(Role.values),
        "tenure": [key for key, _, _, _ in TENURE_BUCKETS],
        "usage": [state for state, _, _ in USAGE_STATES],
        "active_days": [key for key, _, _, _ in ACTIVE_DAYS_BANDS],
        "paying": ["true", "false"],
        "category": list(Category.values),
    }
    for name, groups in breakdowns.items():
        if name in order:
            groups.sort(key=lambda group, name=name: order[name].index(group.key) if group.key in order[name] else 99)
        else:
            groups.sort(key=lambda group: (-group.score.responses, group.label))
    trend = _trend(until=month, months=trend_months)
    previous = trend[-2].group if len(trend) >= 2 else _group("previous", "", Score(0, 0, 0))
    product_ids = [int(group.key) for group in breakdowns["product"] if group.key.isdigit()]
    return MonthlyReport(
        month=month,
        overall=overall,
        previous=previous,
        trend=trend,
        breakdowns=breakdowns,
        questions=questions_asked(product_ids=product_ids),
    )


def comments_sample(*, month: date, count: int) -> list[dict]:
    """`count` comments of `month` chosen at random, the same ones every time for that month
    (ordered by a hash of the response id and the month), so a rebuilt digest is identical."""
    responses = Response.objects.filter(month=month).exclude(comment="").select_related("organization")
    fields = ("score", "role", "comment", "category", "organization__name")
    if connection.vendor == "postgresql":
        rows = list(
            responses.annotate(draw=RawSQL("md5(feedback_response.public_id::text || %s)", [month.isoformat()]))  # noqa: S611
            .order_by("draw")
            .values(*fields)[:count]
        )
    else:  # SQLite has no md5(): the same order, computed here (a development database is small)
        everything = list(responses.values("public_id", *fields))
        everything.sort(key=lambda row: hashlib.md5(f"{row['public_id']}{month.isoformat()}".encode()).hexdigest())  # noqa: S324
        rows = everything[:count]
    roles = dict(Role.choices)
    categories = dict(Category.choices)
    return [
        {
            "score": row["score"],
            "role": roles.get(row["role"], row["role"]),
            "comment": row["comment"],
            "category": categories.get(row["category"], ""),
            "organization": row["organization__name"],
        }
        for row in rows
    ]


def organization_report(
    *, organization: Organization, until: date, months: int = 12, comments: int = 50
) -> OrganizationReport:
    """One customer's report over the `months` months up to `until`: its NPS against everyone's
    over the same months, its trend, by role, and its latest comments. An author is named only
    when they agreed to be contacted."""
    since = months_back(until, months - 1)
    rows = _grouping_sets(
        dimensions=["month", "role", "usage"],
        sets=[(), ("month",), ("role",), ("usage",)],
        source=(
            "(SELECT month, role, NULLIF(usage_state, '') AS usage, score FROM feedback_response "
            "WHERE organization_id = %s AND month BETWEEN %s AND %s) AS own"
        ),
        params=[organization.pk, since, until],
    )
    own_total = Score(0, 0, 0)
    by_month: dict[date, Score] = {}
    by_role: list[Group] = []
    by_usage: list[Group] = []
    roles = dict(Role.choices)
    labels = breakdown_labels()
    for month_grouped, role_grouped, usage_grouped, month, role, usage, total, promoters, detractors in rows:
        score = Score(responses=total, promoters=promoters, detractors=detractors)
        if month_grouped and role_grouped and usage_grouped:
            own_total = score
        elif not month_grouped:
            by_month[_as_date(month)] = score
        elif not role_grouped:
            by_role.append(_group(role, roles.get(role, role), score))
        else:
            by_usage.append(_group(*breakdown_key_label("usage", usage, labels), score))
    by_role.sort(key=lambda group: Role.values.index(group.key) if group.key in Role.values else 99)
    usage_order = [state for state, _, _ in USAGE_STATES]
    by_usage.sort(key=lambda group: usage_order.index(group.key) if group.key in usage_order else 99)
    everyone = _trend(until=until, months=months)
    overall_score = Score(0, 0, 0)
    for point in everyone:
        overall_score = overall_score + point.group.score
    trend = []
    for point in everyone:
        score = by_month.get(point.month, Score(0, 0, 0))
        trend.append(MonthPoint(month=point.month, group=_group(point.group.key, point.group.label, score)))
    latest = (
        Response.objects.filter(organization=organization, month__gte=since, month__lte=until)
        .exclude(comment="")
        .select_related("user")
        .order_by("-submitted_at")[:comments]
    )
    categories = dict(Category.choices)
    comment_rows = [
        {
            "score": response.score,
            "role": roles.get(response.role, response.role),
            "comment": response.comment,
            "category": categories.get(response.category, ""),
            "submitted_at": response.submitted_at,
            "author": (
                (response.user.get_full_name() or response.user.email)
                if response.may_contact and response.user is not None
                else ""
            ),
        }
        for response in latest
    ]
    own_products = list(
        Response.objects.filter(organization=organization, month__gte=since, month__lte=until)
        .exclude(product_id=None)
        .values_list("product_id", flat=True)
        .distinct()
    )
    return OrganizationReport(
        questions=questions_asked(product_ids=own_products),
        since=since,
        until=until,
        organization=_group("organization", organization.name, own_total),
        overall=_group("overall", "All Flywheel customers", overall_score),
        trend=trend,
        by_role=by_role,
        by_usage=by_usage,
        comments=comment_rows,
    )


@dataclass(frozen=True)
class UsageBesideNps:
    """Use of the products beside the NPS of a month: MAU and monthly retention of each month
    up to it (the same months as the NPS trend), and the monthly retention heat map, counted up
    to `as_of` (the last whole UTC day), for all organizations or one, all products (a person
    counted once across them)."""

    as_of: date
    months: list[MonthUsage]
    retention: Retention
    definitions: dict[str, str]

    @property
    def month(self) -> MonthUsage:
        return self.months[-1]


def usage_beside_nps(
    *, month: date, months: int = 12, organization_id: int | None = None, as_of: date | None = None
) -> UsageBesideNps:
    """MAU, monthly retention and the retention heat map beside the NPS of `month` (a first of
    the month), counted up to `as_of` (yesterday by default: the pages; the emails of a month
    that is over pass its last day, see `month_over`). A month that is over counts the same
    whenever it is read. The staff figures (all organizations) come from the day's snapshot
    when it is built (activity.selectors); one organization's are computed live."""
    as_of = as_of or last_whole_day()
    return UsageBesideNps(
        as_of=as_of,
        months=monthly_usage(until=month, months=months, organization_id=organization_id, as_of=as_of),
        retention=retention(
            product_id=None, period="month", mode="n_day", periods=12, as_of=as_of, organization_id=organization_id
        ),
        definitions=MONTH_USAGE_DEFINITIONS,
    )


def month_over(month: date) -> date:
    """The last whole UTC day of `month` (a first of the month), or yesterday while it runs:
    what a monthly email about it counts up to, so a report of November draws no December."""
    return min(last_whole_day(), months_back(month, -1) - timedelta(days=1))


@dataclass(frozen=True)
class OrganizationUsage:
    """How much one customer's people use its products, for its admins' report: per live
    subscription, the people active in the 30 whole UTC days ending `as_of` against its seats,
    and the MAU, monthly retention and retention heat map of its own people up to `month`."""

    as_of: date
    days: int
    active_seats: list[ActiveSeats]
    trend: UsageBesideNps


def organization_usage(*, organization: Organization, month: date, as_of: date | None = None) -> OrganizationUsage:
    """One organization's active people and active-seat ratio per product (as of yesterday, the
    last whole UTC day: what they have now) and its usage trend up to `month` counted up to
    `as_of` (yesterday by default), from its own activity only."""
    return OrganizationUsage(
        as_of=last_whole_day(),
        days=MONTH_DAYS,
        active_seats=active_seats_of(organization_ids=[organization.pk])[organization.pk],
        trend=usage_beside_nps(month=month, organization_id=organization.pk, as_of=as_of),
    )


def organizations_to_report(*, month: date) -> QuerySet[Organization]:
    """Organizations with responses in `month` whose report of that month is not claimed yet."""
    return (
        Organization.objects.filter(pk__in=Response.objects.filter(month=month).values("organization_id"))
        .exclude(pk__in=OrganizationReportRun.objects.filter(month=month).values("organization_id"))
        .order_by("pk")
    )


def admins_of(*, organization: Organization) -> QuerySet[User]:
    return User.objects.filter(
        memberships__organization=organization, memberships__role=Membership.Role.ADMIN, is_active=True
    ).order_by("pk")


def staff_recipients() -> QuerySet[User]:
    return User.objects.filter(is_staff=True, is_active=True).exclude(email="").order_by("pk")


def survey_get_for_member(*, membership: Membership, survey_public_id: object) -> Survey:
    """The member's own survey in their organization; NotFound for anyone else's."""
    survey = Survey.objects.filter(
        public_id=survey_public_id, organization_id=membership.organization_id, user_id=membership.user_id
    ).first()
    if survey is None:
        raise NotFound("Survey not found.")
    return survey


def follow_ups_for_staff(*, status: str | None = FollowUp.Status.OPEN) -> QuerySet[FollowUp]:
    follow_ups = FollowUp.objects.select_related("response__organization", "response__user").order_by("created_at")
    return follow_ups.filter(status=status) if status else follow_ups


def get_follow_up_for_staff(*, user: User, follow_up_public_id: object) -> FollowUp:
    """A follow-up, for staff only; NotFound for everyone else (no hint that it exists)."""
    if not user.is_staff:
        raise NotFound("Follow-up not found.")
    follow_up = (
        FollowUp.objects.select_related("response__organization", "response__user", "resolved_by")
        .filter(public_id=follow_up_public_id)
        .first()
    )
    if follow_up is None:
        raise NotFound("Follow-up not found.")
    return follow_up


def member_get(*, organization_id: int, user_public_id: object) -> Membership:
    """The user's membership of the API key's organization; NotFound for anyone else (an
    organization's key never learns about another organization's users)."""
    membership = (
        Membership.objects.select_related("user", "organization")
        .filter(organization_id=organization_id, user__public_id=user_public_id, user__is_active=True)
        .first()
    )
    if membership is None:
        raise NotFound("User not found.")
    return membership
