import pytest
from django.core.management import call_command

from accounts.models import Membership
from feedback.models import Response, Survey


@pytest.mark.django_db
def test_feedback_demo_is_idempotent(catalog):
    call_command("demo_data")
    call_command("feedback_demo")
    call_command("feedback_demo")
    assert Response.objects.count() == 40
    assert Survey.objects.count() == 40
    assert Response.objects.values("user").distinct().count() == 40
    assert Response.objects.values("month").distinct().count() == 3
    assert Membership.objects.filter(user__email__startswith="demo-user-").count() == 38
