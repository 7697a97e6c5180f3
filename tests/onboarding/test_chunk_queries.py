"""A chunk of sends costs a fixed number of statements, whatever its size."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from onboarding.models import Send
from onboarding.services.enrolments import enrolment_create
from onboarding.services.sending import sends_deliver
from onboarding.services.tick import onboarding_tick

from ..conftest import organization_on
from .factories import everyone_enrolled_in


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
    everyone_enrolled_in("chunk-queries", settings)
    assert _deliver_chunk(2, mailoutbox) == _deliver_chunk(6, mailoutbox)
    assert len(mailoutbox) == 8
