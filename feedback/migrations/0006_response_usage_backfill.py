"""Answers stored before 0004 get their author's use of the product computed from the daily
activity rollups: days active in the 30 whole UTC days before the answer's day, and the
lifecycle state (docs/feedback.md#nps-beside-use-of-the-products).

The rollups are never pruned, but they hold events that arrived after an answer for days before
it, so a backfilled snapshot can count a little more than one taken at the time would have.

Not atomic: each batch of answers is its own short transaction, so the answers table is never
locked for the whole backfill and a stopped migration resumes where it was (it fills only
answers still without a snapshot). Per batch, two reads of the rollups: each person's first
active day (per product), and their active days in the 60 days before the batch's answers.

The arithmetic below is a frozen copy of activity.people as of this migration: a migration must
not change meaning when the app's code changes later.
"""

from datetime import timedelta

from django.db import migrations, transaction
from django.db.models import Min

BATCH = 2000
WINDOW_DAYS = 30


def _usage(days, first_day, day):
    """(active days in W0, state) from the person's active days in the 60 days before `day`
    and their first active day ever (None: never active)."""
    w0_start = day - timedelta(days=WINDOW_DAYS)
    w1_start = day - timedelta(days=2 * WINDOW_DAYS)
    w0 = {active for active in days if w0_start <= active < day}
    in_w1 = any(w1_start <= active < w0_start for active in days)
    earlier = first_day is not None and first_day < w1_start
    if w0:
        state = "returning" if in_w1 else ("resurrecting" if earlier else "new")
    else:
        state = "dormant" if (in_w1 or earlier) else "none"
    return len(w0), state


def _batch(Response, ActivityDay, last):
    """Fill one batch of answers after pk `last`; returns the last pk seen, or None when done."""
    batch = list(
        Response.objects.filter(pk__gt=last, active_days__isnull=True)
        .order_by("pk")
        .values("pk", "organization_id", "user_id", "product_id", "submitted_at")[:BATCH]
    )
    if not batch:
        return None
    people = [row for row in batch if row["user_id"] is not None]  # a deleted author stays "not known"
    if people:
        scope = {
            "active_events__gt": 0,
            "organization_id__in": {row["organization_id"] for row in people},
            "user_id__in": {row["user_id"] for row in people},
        }
        first = {}
        for organization_id, user_id, product_id, first_day in (
            ActivityDay.objects.filter(**scope)
            .values("organization_id", "user_id", "product_id")
            .annotate(first_day=Min("day"))
            .values_list("organization_id", "user_id", "product_id", "first_day")
        ):
            first.setdefault((organization_id, user_id), []).append((product_id, first_day))
        answered = [row["submitted_at"].date() for row in people]
        days = {}
        for organization_id, user_id, product_id, day in ActivityDay.objects.filter(
            **scope, day__gte=min(answered) - timedelta(days=2 * WINDOW_DAYS), day__lt=max(answered)
        ).values_list("organization_id", "user_id", "product_id", "day").iterator():
            days.setdefault((organization_id, user_id), []).append((product_id, day))
        updates = []
        for row in people:
            key = (row["organization_id"], row["user_id"])
            product_id = row["product_id"]
            active = [day for product, day in days.get(key, []) if product_id in (None, product)]
            firsts = [first_day for product, first_day in first.get(key, []) if product_id in (None, product)]
            active_days, state = _usage(active, min(firsts, default=None), row["submitted_at"].date())
            updates.append(Response(pk=row["pk"], active_days=active_days, usage_state=state))
        Response.objects.bulk_update(updates, ["active_days", "usage_state"])
    return batch[-1]["pk"]


def backfill(apps, schema_editor):
    Response = apps.get_model("feedback", "Response")
    ActivityDay = apps.get_model("activity", "ActivityDay")
    last = 0
    while last is not None:
        with transaction.atomic():
            last = _batch(Response, ActivityDay, last)


def forget(apps, schema_editor):
    apps.get_model("feedback", "Response").objects.update(active_days=None, usage_state="")


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("feedback", "0005_digest_usage_charts"),
        ("activity", "0001_initial"),
    ]

    operations = [migrations.RunPython(backfill, forget)]
