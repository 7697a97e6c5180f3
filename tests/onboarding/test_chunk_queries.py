"""A chunk of sends costs a fixed number of statements, whatever its size."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from onboarding.models import Send
from onboarding.services import enrolment_create, onboarding_tick, sends_deliver

from ..conftest import organization_on
from .factories import fourteen_day_sequence


def _deliver_chunk(size: int, mailoutbox) -> int:
    for _ in range(size):
        organization, admin = organization_on("standard")
        enrolment_create(user=admin, organization=organization)
    send_ids = onboarding_tick().send_ids
    assert len(send_ids) == size
    with CaptureQueriesContext(connection) as queries:
        assert sends_deliver(send_ids=send_ids) == {"sent": size}
    assert Send.objects.filter(pk__in=send_ids, status=Send.Status.SENT).count() == size
    return len(queries)


@pytest.mark.django_db
def test_a_chunk_reads_no_field_row_by_row(catalog, settings, mailoutbox):
    # A field that sending uses but the chunk's read left out would cost a query per send.
    settings.ONBOARDING_DEFAULT_SEQUENCE = "chunk-queries"
    settings.ONBOARDING_EXPERIMENT_KEY = "no-such-experiment"
    settings.ONBOARDING_QUIET_HOURS_START = settings.ONBOARDING_QUIET_HOURS_END = 0
    fourteen_day_sequence("chunk-queries")
    assert _deliver_chunk(2, mailoutbox) == _deliver_chunk(6, mailoutbox)
    assert len(mailoutbox) == 8
