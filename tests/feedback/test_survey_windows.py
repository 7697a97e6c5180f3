"""One response per ask window: an earlier survey left open takes no answer once the member
was asked again."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from feedback import services
from feedback.exceptions import SurveyClosed
from feedback.models import Response, Survey

from .helpers import member


def test_an_earlier_open_survey_takes_no_answer_once_the_member_was_asked_again(trial_organization, settings):
    settings.FEEDBACK_AFTER_RESPONSE_DAYS = 90
    settings.FEEDBACK_UNANSWERED_DAYS = 7
    organization = trial_organization[0]
    membership = member(organization)
    start = timezone.now()
    first = services.survey_decide(membership=membership, product_code="tracker")
    assert first.ask  # day 0: shown, left unanswered
    with time_machine.travel(start + timedelta(days=8), tick=False):
        second = services.survey_decide(membership=membership, product_code="tracker")
        assert second.ask  # day 8: asked again (the unanswered window is over)
        services.response_submit(membership=membership, survey_public_id=second.survey.public_id, score=10, role="developer")
    with time_machine.travel(start + timedelta(days=9), tick=False):
        # day 9: the product still holds the first survey id (or replays it) and submits it
        with pytest.raises(SurveyClosed, match="replaced by a newer one"):
            services.response_submit(membership=membership, survey_public_id=first.survey.public_id, score=0, role="developer")
        assert services.survey_dismiss(membership=membership, survey_public_id=first.survey.public_id).status == Survey.Status.REPLACED
    assert Response.objects.filter(user=membership.user).count() == 1
    assert Survey.objects.get(pk=first.survey.pk).status == Survey.Status.REPLACED
