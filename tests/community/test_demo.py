import pytest
from django.core.management import call_command

from community.models import Answer, Question, SupportEngineer


@pytest.mark.django_db
def test_community_demo_is_idempotent(catalog):
    call_command("demo_data")
    call_command("community_demo")
    call_command("community_demo")
    demo = Question.objects.exclude(author__email="hana@hooli.example")  # Hooli's is addons_demo's
    assert demo.count() == 3
    assert Answer.objects.count() == 2
    assert demo.filter(accepted_answer__isnull=False).count() == 1
    assert demo.filter(answer_count=0).count() == 1
    assert SupportEngineer.objects.get(user__email="staff@flywheel.localhost").on_duty
