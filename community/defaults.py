"""The default business calendar and escalation policies (also created by migration 0003).

`python manage.py community_defaults` creates whatever is missing and never overwrites what
staff changed in the admin.
"""

from __future__ import annotations

import datetime
from decimal import Decimal

from django.db import transaction

from .models import BusinessCalendar, EscalationPolicy

CALENDAR = "Support business hours"
POLICIES = [
    # support tier, name, rank, hours to escalation, counting, reminder hours after assignment
    ("community", "Free (community)", 0, Decimal("48"), "business", Decimal("8")),
    ("standard", "Standard", 1, Decimal("24"), "business", Decimal("4")),
    ("premium", "Premium", 2, Decimal("8"), "business", Decimal("2")),
    ("enterprise", "Enterprise", 3, Decimal("4"), "calendar", Decimal("1")),
]


@transaction.atomic
def community_defaults_ensure() -> int:
    """Create the default calendar and any missing tier policy. Returns how many were created."""
    calendar, created = BusinessCalendar.objects.get_or_create(
        name=CALENDAR,
        defaults={
            "time_zone": "UTC",
            "working_days": [1, 2, 3, 4, 5],
            "day_starts_at": datetime.time(9, 0),
            "day_ends_at": datetime.time(17, 0),
        },
    )
    made = int(created)
    for tier, name, rank, hours, counting, reminder in POLICIES:
        _, created = EscalationPolicy.objects.get_or_create(
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
        made += int(created)
    return made
