import pytest
from django.core.management import call_command

from community.models import Answer, Question, SupportEngineer


@pytest.mark.django_db
def test_community_demo_is_idempotent(catalog):
    call_command("demo_data")
    call_command("community_demo")
    call_command("community_demo")
    assert Question.objects.count() == 3
    assert Answer.objects.count() == 2
    assert Question.objects.filter(accepted_answer__isnull=False).count() == 1
    assert Question.objects.filter(answer_count=0).count() == 1
    assert SupportEngineer.objects.get(user__email="staff@flywheel.localhost").on_duty
