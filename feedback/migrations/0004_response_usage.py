"""Each answer keeps the respondent's use of the product in the 30 whole UTC days before it
(days active, lifecycle state), snapshotted at submit like tenure. Answers stored before this
migration get the same snapshot computed from the daily activity rollups, which are never
pruned, so they read exactly as if it had been taken when they were given.

The arithmetic below is a frozen copy of activity.people (usage_from_days) as of this
migration: a migration must not change meaning when the app's code changes later.
"""

from datetime import timedelta

from django.db import migrations, models

BATCH = 2000
WINDOW_DAYS = 30


def _usage(days, day):
    w0_start = day - timedelta(days=WINDOW_DAYS)
    w1_start = day - timedelta(days=2 * WINDOW_DAYS)
    before = {active for active in days if active < day}
    w0 = {active for active in before if active >= w0_start}
    in_w1 = any(w1_start <= active < w0_start for active in before)
    earlier = any(active < w1_start for active in before)
    if w0:
        state = "returning" if in_w1 else ("resurrecting" if earlier else "new")
    else:
        state = "dormant" if (in_w1 or earlier) else "none"
    return len(w0), state


def backfill(apps, schema_editor):
    Response = apps.get_model("feedback", "Response")
    ActivityDay = apps.get_model("activity", "ActivityDay")
    last = 0
    while True:
        batch = list(
            Response.objects.filter(pk__gt=last, active_days__isnull=True)
            .order_by("pk")
            .values("pk", "organization_id", "user_id", "product_id", "submitted_at")[:BATCH]
        )
        if not batch:
            return
        last = batch[-1]["pk"]
        people = [row for row in batch if row["user_id"] is not None]
        days = {}
        if people:
            rows = ActivityDay.objects.filter(
                active_events__gt=0,
                organization_id__in={row["organization_id"] for row in people},
                user_id__in={row["user_id"] for row in people},
                day__lt=max(row["submitted_at"] for row in people).date(),
            ).values_list("organization_id", "user_id", "product_id", "day")
            for organization_id, user_id, product_id, day in rows.iterator():
                days.setdefault((organization_id, user_id), []).append((product_id, day))
        updates = []
        for row in people:  # an answer whose author was deleted stays "not known"
            found = days.get((row["organization_id"], row["user_id"]), [])
            active = [day for product_id, day in found if row["product_id"] in (None, product_id)]
            active_days, state = _usage(active, row["submitted_at"].date())
            updates.append(Response(pk=row["pk"], active_days=active_days, usage_state=state))
        Response.objects.bulk_update(updates, ["active_days", "usage_state"])


def forget(apps, schema_editor):
    apps.get_model("feedback", "Response").objects.update(active_days=None, usage_state="")


class Migration(migrations.Migration):
    dependencies = [
        ("feedback", "0003_report_opt_out"),
        ("activity", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="response",
            name="active_days",
            field=models.PositiveSmallIntegerField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="response",
            name="usage_state",
            field=models.CharField(
                blank=True,
                choices=[
                    ("new", "New"),
                    ("returning", "Returning"),
                    ("resurrecting", "Back after a break"),
                    ("dormant", "Dormant"),
                    ("none", "No activity reported"),
                ],
                max_length=16,
                default="",
                db_default="",
            ),
        ),
        migrations.RunPython(backfill, forget),
    ]
