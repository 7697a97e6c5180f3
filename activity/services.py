"""Recording product activity, exactly once, and pruning the raw events (docs/activity.md).

`activity_record` checks each row of a batch on its own: a bad row is answered with its index,
its id and a sentence, and never stops the good rows. The good rows are inserted with
`ON CONFLICT DO NOTHING ... RETURNING`, and the day rollups are raised from the rows that
statement returned, in the same transaction: an event sent twice (a retried batch, two
requests at once, a repeated id inside one batch) is stored once and counted once. Two
requests carrying the same event serialize on its unique key: the second waits for the first
to commit and then finds it.

`staff_figures_build` stores the staff figures of a day (docs/activity.md#how-the-staff-figures-stay-fast);
an event that arrives for a day before today may change a stored day, so `activity_record`
asks for a rebuild, debounced: one rebuild per ACTIVITY_FIGURES_REBUILD_DELAY seconds however
many late batches arrive.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import UUID

from django.conf import settings
from django.core.cache import cache
from django.db import connection, transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from accounts.models import Membership
from catalog.models import Product

from .models import ActivityDay, ActivityEvent, StaffFiguresSnapshot
from .selectors import (
    ALL_PRODUCTS,
    PERIODS,
    USAGE_KEY,
    PeriodCounts,
    last_whole_day,
    period_counts,
    staff_figures_latest,
    usage_figures_live,
)

NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_.:-]{0,63}$")
MAX_EVENT_ID = 128
# An event may be stamped a little ahead of our clock (the product's clock drifts), not more.
FUTURE_TOLERANCE = timedelta(minutes=5)
# Rows per INSERT statement (SQLite allows 32,766 parameters; 7 per row).
CHUNK = 500


@dataclass
class RowError:
    index: int
    id: str
    error: str


@dataclass
class ActivityReport:
    """What became of a batch: stored (new), already stored (duplicates), refused (errors)."""

    accepted: int = 0
    duplicates: int = 0
    errors: list[RowError] = field(default_factory=list)
    # The positions in the batch of the events stored now (not those already there): what a
    # caller counts once more, such as the kit's success moments.
    stored: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class _Row:
    index: int
    event_id: str
    user_id: int
    product_id: int
    name: str
    occurred_at: datetime
    counts: bool


def retention_days() -> int:
    return int(getattr(settings, "ACTIVITY_RAW_RETENTION_DAYS", 90))


def batch_max() -> int:
    return int(getattr(settings, "ACTIVITY_BATCH_MAX", 1000))


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _check(
    index: int,
    raw: Any,
    *,
    members: dict[str, int],
    products: dict[str, Product],
    now: datetime,
    oldest: datetime,
) -> _Row | RowError:
    """One row, or why it is refused (the first problem found, in the row's own terms)."""
    if not isinstance(raw, dict):
        return RowError(index, "", "Each event is an object with id, user, product, name and occurred_at.")
    event_id = _text(raw.get("id")).strip()
    if not event_id or len(event_id) > MAX_EVENT_ID:
        return RowError(index, event_id[:MAX_EVENT_ID], f"id is missing or longer than {MAX_EVENT_ID} characters: give each event an id of your own, unique per product, so a retried batch counts once.")
    unknown = sorted(set(raw) - {"id", "user", "product", "name", "occurred_at"})
    if unknown:
        return RowError(index, event_id, f"Unknown field{'s' if len(unknown) > 1 else ''}: {', '.join(unknown)}.")
    user = _text(raw.get("user"))
    try:
        user_key = str(UUID(user))
    except ValueError:
        return RowError(index, event_id, f"user must be a user's id (a UUID), got {user[:64]!r}.")
    user_id = members.get(user_key)
    if user_id is None:
        return RowError(index, event_id, "user is not a member of this organization.")
    product = products.get(_text(raw.get("product")))
    if product is None:
        return RowError(index, event_id, f"product {_text(raw.get('product'))[:64]!r} is not one of Flywheel's products ({', '.join(sorted(products))}).")
    name = _text(raw.get("name"))
    if not NAME_PATTERN.fullmatch(name):
        return RowError(index, event_id, "name must be 1 to 64 characters: lowercase letters, digits and _ . : -, starting with a letter.")
    stamp = _text(raw.get("occurred_at"))
    try:
        occurred_at = parse_datetime(stamp)
    except ValueError:
        occurred_at = None
    if occurred_at is None or occurred_at.tzinfo is None:
        return RowError(index, event_id, f"occurred_at must be an ISO 8601 time with its offset, such as 2026-12-06T14:05:00Z; got {stamp[:40]!r}.")
    if occurred_at > now + FUTURE_TOLERANCE:
        return RowError(index, event_id, "occurred_at is in the future: check the product's clock.")
    if occurred_at < oldest:
        return RowError(index, event_id, f"occurred_at is more than {retention_days()} days ago: such events are no longer accepted.")
    return _Row(
        index=index,
        event_id=event_id,
        user_id=user_id,
        product_id=product.pk,
        name=name,
        occurred_at=occurred_at,
        counts=name in (product.activity_events or []),
    )


def activity_record(*, organization_id: int, rows: list[Any], now: datetime | None = None) -> ActivityReport:
    """Store a batch of a product's activity events for the organization, each exactly once,
    and raise the day rollups by the events that were new."""
    now = now or timezone.now()
    report = ActivityReport()
    user_ids = {_text(raw.get("user")) for raw in rows if isinstance(raw, dict)}
    valid_ids = []
    for value in user_ids:
        try:
            valid_ids.append(UUID(value))
        except ValueError:
            continue
    members = {
        str(public_id): pk
        for public_id, pk in Membership.objects.filter(
            organization_id=organization_id, user__public_id__in=valid_ids
        ).values_list("user__public_id", "user_id")
    }
    products = {product.code: product for product in Product.objects.filter(is_active=True)}
    oldest = now - timedelta(days=retention_days())
    good: dict[tuple[int, str], _Row] = {}
    for index, raw in enumerate(rows):
        checked = _check(index, raw, members=members, products=products, now=now, oldest=oldest)
        if isinstance(checked, RowError):
            report.errors.append(checked)
        elif (checked.product_id, checked.event_id) in good:
            report.duplicates += 1  # the same id twice in one batch: the first one counts
        else:
            good[(checked.product_id, checked.event_id)] = checked
    if not good:
        return report
    with transaction.atomic():
        inserted = _insert(organization_id, list(good.values()), now)
        report.accepted = len(inserted)
        report.duplicates += len(good) - len(inserted)
        new_rows = [good[key] for key in inserted]
        report.stored = sorted(row.index for row in new_rows)
        _roll_up(organization_id, new_rows)
        if any(row.occurred_at.astimezone(UTC).date() < now.astimezone(UTC).date() for row in new_rows):
            staff_figures_rebuild_soon()
    return report


def _insert(organization_id: int, rows: list[_Row], now: datetime) -> list[tuple[int, str]]:
    """INSERT ... ON CONFLICT DO NOTHING; the (product, event id) of each row actually inserted."""
    table = ActivityEvent._meta.db_table
    adapt = connection.ops.adapt_datetimefield_value
    received = adapt(now)
    inserted: list[tuple[int, str]] = []
    with connection.cursor() as cursor:
        for start in range(0, len(rows), CHUNK):
            chunk = rows[start : start + CHUNK]
            values = ", ".join(["(%s, %s, %s, %s, %s, %s, %s)"] * len(chunk))
            params: list[Any] = []
            for row in chunk:
                params += [organization_id, row.user_id, row.product_id, row.event_id, row.name, adapt(row.occurred_at), received]
            cursor.execute(
                f"INSERT INTO {table} (organization_id, user_id, product_id, event_id, name, occurred_at, received_at) "  # noqa: S608 - the model's table and placeholders; values are parameters
                f"VALUES {values} ON CONFLICT (organization_id, product_id, event_id) DO NOTHING "
                "RETURNING product_id, event_id",
                params,
            )
            inserted += [(int(product_id), str(event_id)) for product_id, event_id in cursor.fetchall()]
    return inserted


def _roll_up(organization_id: int, rows: list[_Row]) -> None:
    """Raise each (person, product, UTC day)'s counts by the new events (an upsert that adds)."""
    if not rows:
        return
    events: Counter[tuple[int, int, Any]] = Counter()
    active: Counter[tuple[int, int, Any]] = Counter()
    for row in rows:
        key = (row.user_id, row.product_id, row.occurred_at.astimezone(UTC).date())
        events[key] += 1
        active[key] += int(row.counts)
    table = ActivityDay._meta.db_table
    adapt = connection.ops.adapt_datefield_value
    keys = sorted(events)  # one order for every writer: no deadlock between two batches
    with connection.cursor() as cursor:
        for start in range(0, len(keys), CHUNK):
            chunk = keys[start : start + CHUNK]
            values = ", ".join(["(%s, %s, %s, %s, %s, %s)"] * len(chunk))
            params: list[Any] = []
            for user_id, product_id, day in chunk:
                params += [organization_id, user_id, product_id, adapt(day), events[(user_id, product_id, day)], active[(user_id, product_id, day)]]
            cursor.execute(
                f"INSERT INTO {table} (organization_id, user_id, product_id, day, events, active_events) VALUES {values} "  # noqa: S608 - as above
                "ON CONFLICT (organization_id, user_id, product_id, day) DO UPDATE SET "
                f"events = {table}.events + excluded.events, active_events = {table}.active_events + excluded.active_events",
                params,
            )


def activity_prune(*, now: datetime | None = None, batch: int = 10_000) -> int:
    """Delete raw events older than ACTIVITY_RAW_RETENTION_DAYS, a batch at a time; the day
    rollups stay. Returns how many were deleted."""
    cutoff = (now or timezone.now()) - timedelta(days=retention_days())
    deleted = 0
    while True:
        ids = list(ActivityEvent.objects.filter(occurred_at__lt=cutoff).order_by("occurred_at").values_list("pk", flat=True)[:batch])
        if not ids:
            return deleted
        deleted += ActivityEvent.objects.filter(pk__in=ids).delete()[0]


# The debounce: while this key lives, a rebuild is already on its way.
REBUILD_PENDING_KEY = "activity:staff-figures:rebuild-pending"
# The advisory lock key that runs builds one at a time ("fwstaff" in ASCII).
STAFF_FIGURES_LOCK = 0x66777374616666
# Figures of days older than this are not kept (the page reads yesterday's).
SNAPSHOT_KEEP_DAYS = 7


def rebuild_delay() -> int:
    return int(getattr(settings, "ACTIVITY_FIGURES_REBUILD_DELAY", 600))


def staff_figures_rebuild_soon(*, now: bool = False) -> None:
    """Once the current transaction commits, have the staff figures rebuilt in
    ACTIVITY_FIGURES_REBUILD_DELAY seconds (at once with `now`: the page found yesterday's
    missing), unless a rebuild is already pending: the first late batch schedules it, the
    others find the key and add nothing. The rebuild deletes the key before it reads, so a
    batch committed after that read schedules the next one, and a batch that found the key had
    committed before the read: no late event is left out."""
    from .tasks import staff_figures_rebuild

    def schedule() -> None:
        delay = 0 if now else rebuild_delay()
        if cache.add(REBUILD_PENDING_KEY, "1", timeout=rebuild_delay() + 300):
            staff_figures_rebuild.apply_async(countdown=delay, queue=settings.CELERY_TASK_DEFAULT_QUEUE)

    transaction.on_commit(schedule, robust=True)


def staff_figures_day() -> tuple[date, datetime | None]:
    """The day the staff figures over all organizations count up to, and when they were built:
    yesterday once its figures are stored; until then (just after midnight, while the beat
    builds them) the newest stored day, with a build asked for at once, since computing them in
    a request would read every rollup. With nothing stored at all (a new installation, still
    small) yesterday, computed live (built_at None). Every staff page showing them asks here."""
    yesterday = last_whole_day()
    stored = staff_figures_latest(until=yesterday)
    if stored is None or stored[0] != yesterday:
        staff_figures_rebuild_soon(now=True)
    return stored if stored is not None else (yesterday, None)


def staff_figures_build(*, as_of: date | None = None, now: datetime | None = None) -> int:
    """Compute and store the staff figures over all organizations as of `as_of` (yesterday by
    default): for weeks and months, the count tables of each product and of all products, and
    the DAU/WAU/MAU figures; replacing the day's rows in one transaction, so a reader sees the
    old set or the new one. Snapshots older than SNAPSHOT_KEEP_DAYS are deleted. Returns the
    number of rows stored."""
    as_of = as_of or last_whole_day()
    built_at = now or timezone.now()
    rows: list[StaffFiguresSnapshot] = []
    with transaction.atomic():
        if connection.vendor == "postgresql":
            # One build at a time (the nightly beat, a page asking, a late event's rebuild): a
            # second waits here, then reads after the first committed and replaces its rows,
            # instead of colliding with rows its own DELETE could not see.
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [STAFF_FIGURES_LOCK])
            # The build sorts every person's active periods: give it memory for that instead
            # of temporary files, and skip JIT compilation (seconds for a statement run once).
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL work_mem = '256MB'")
                cursor.execute("SET LOCAL jit = off")
        for period in PERIODS:
            tables = period_counts(period=period, as_of=as_of, across_products=False, with_all_products=True)
            # A row for every product, active or not: a reader finding none computes live.
            for product_id in [ALL_PRODUCTS, *Product.objects.values_list("pk", flat=True)]:
                tables.setdefault(product_id, PeriodCounts({}, {}, {}))
            for product_key, counts in tables.items():
                rows.append(
                    StaffFiguresSnapshot(as_of=as_of, period=period, product_key=product_key, counts=counts.to_json(), built_at=built_at)
                )
        figures = usage_figures_live(as_of=as_of, organization_id=None)
        rows.append(
            StaffFiguresSnapshot(
                as_of=as_of,
                period=USAGE_KEY,
                product_key=ALL_PRODUCTS,
                counts={str(row.product.pk): [row.dau, row.wau, row.mau, row.average_dau] for row in figures},
                built_at=built_at,
            )
        )
        StaffFiguresSnapshot.objects.filter(as_of=as_of).delete()
        StaffFiguresSnapshot.objects.bulk_create(rows)
        StaffFiguresSnapshot.objects.filter(as_of__lt=as_of - timedelta(days=SNAPSHOT_KEEP_DAYS)).delete()
    return len(rows)
