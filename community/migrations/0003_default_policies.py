"""The default business calendar and one escalation policy per support tier of the catalog
(community, standard, premium, enterprise). Staff edit them in the admin afterwards."""

import datetime
from decimal import Decimal

from django.db import migrations

CALENDAR = "Support business hours"
POLICIES = [
    # tier, name, rank, hours, counting, reminder hours
    ("community", "Free (community)", 0, Decimal("48"), "business", Decimal("8")),
    ("standard", "Standard", 1, Decimal("24"), "business", Decimal("4")),
    ("premium", "Premium", 2, Decimal("8"), "business", Decimal("2")),
    ("enterprise", "Enterprise", 3, Decimal("4"), "calendar", Decimal("1")),
]


def forward(apps, schema_editor):
    BusinessCalendar = apps.get_model("community", "BusinessCalendar")
    EscalationPolicy = apps.get_model("community", "EscalationPolicy")
    calendar, _ = BusinessCalendar.objects.get_or_create(
        name=CALENDAR,
        defaults={
            "time_zone": "UTC",
            "working_days": [1, 2, 3, 4, 5],
            "day_starts_at": datetime.time(9, 0),
            "day_ends_at": datetime.time(17, 0),
        },
    )
    for tier, name, rank, hours, counting, reminder in POLICIES:
        EscalationPolicy.objects.get_or_create(
            support_tier=tier,
            defaults={
                "name": name,
                "rank": rank,
                "hours_to_escalation": hours,
                "counting": counting,
                "calendar": calendar,
                "reminder_hours": reminder,
            },
        )


def backward(apps, schema_editor):
    BusinessCalendar = apps.get_model("community", "BusinessCalendar")
    EscalationPolicy = apps.get_model("community", "EscalationPolicy")
    Question = apps.get_model("community", "Question")
    unused = EscalationPolicy.objects.filter(support_tier__in=[p[0] for p in POLICIES]).exclude(
        pk__in=Question.objects.values("policy")
    )
    unused.delete()
    BusinessCalendar.objects.filter(name=CALENDAR, policies__isnull=True).delete()


class Migration(migrations.Migration):
    dependencies = [("community", "0002_search")]
    operations = [migrations.RunPython(forward, backward)]
