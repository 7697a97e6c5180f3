"""The staff digest puts the month's active people and how many came back beside its NPS, with
the MAU trend and the retention heat map inline, and the NPS by use of the product; read as a
staff member reads it. Figures worked out by hand."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
import time_machine

from feedback import services
from feedback.models import DigestDelivery, DigestRun, Response

from ..conftest import active_on, organization_on
from ..factories import MembershipFactory, UserFactory
from .helpers import responses_insert

NOW = datetime(2026, 12, 2, 8, 0, tzinfo=UTC)  # the digest of November; yesterday is 1 December
NOVEMBER = date(2026, 11, 1)
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def november(catalog, settings):
    settings.FEEDBACK_MIN_GROUP_RESPONSES = 3
    acme, ana = organization_on("standard")
    globex, gil = organization_on("standard")
    bob, cy, dee = UserFactory(), UserFactory(), UserFactory()
    for user in (bob, cy, dee):
        MembershipFactory(organization=acme, user=user)
    MembershipFactory(organization=globex, user=bob)
    # October: ana, bob, cy. November: ana, bob (in two organizations and two products: once), dee.
    active_on(acme, ana, "tracker", date(2026, 10, 5), date(2026, 11, 3))
    active_on(acme, bob, "tracker", date(2026, 10, 31))
    active_on(globex, bob, "wiki", date(2026, 11, 30))
    active_on(acme, bob, "tracker", date(2026, 11, 30))
    active_on(acme, cy, "wiki", date(2026, 10, 12))
    active_on(acme, dee, "tracker", date(2026, 11, 1))
    active_on(acme, ana, "tracker", date(2026, 12, 1))  # December: not this digest's month
    rows = responses_insert(
        acme, [10, 10, 9, 6], month=NOVEMBER
    )  # returning: 3 promoters, 1 detractor
    Response.objects.filter(pk__in=[row.pk for row in rows]).update(
        usage_state="returning", active_days=12
    )
    rows = responses_insert(globex, [0, 8], month=NOVEMBER)  # new: 2 answers, too few
    Response.objects.filter(pk__in=[row.pk for row in rows]).update(
        usage_state="new", active_days=2
    )
    return UserFactory(email="digest-reader@flywheel.example", is_staff=True)


def test_the_digest_shows_active_people_and_retention_beside_the_nps(november):
    with time_machine.travel(NOW, tick=False):
        run = services.digest_claim(month=NOVEMBER)
        message = services.digest_message(
            delivery=DigestDelivery.objects.get(run=run, user=november)
        )

    text = message.body
    # 10, 10, 9, 6, 0, 8: 3 promoters, 2 detractors of 6.
    assert message.subject == "NPS digest for November 2026: +17"
    # October: 3 active, nobody in September to come back. November: ana, bob, dee; of
    # October's 3 (ana, bob, cy), 2 came back: 67 %.
    assert (
        "Active people (MAU) and how many came back, all products:\n"
        "  Oct 2026: 3 active\n"
        "  Nov 2026: 3 active, 67 % of the month before's 3 came back\n"
        "  (Months with nobody active are left out."
    ) in text
    # A digest of November counts up to its last day, whenever it is sent.
    assert "a person once across products, up to 30 Nov 2026.)" in text
    assert (
        "NPS by use of the product when answering:\n  New: too few answers (2)\n  Returning: +50 ±"
    ) in text
    assert "  (Dormant: not active in the 30 days before answering, active earlier.)" in text
    assert (
        "NPS by days active in the 30 days before answering:\n  1-3 days: too few answers (2)\n  10-19 days: +50 ±"
        in text
    )

    html = message.alternatives[0][0]
    for read in (text, html):  # words, never a stored value
        assert "returning" not in read and "resurrecting" not in read and "usage_state" not in read
    assert (
        'Active people, November 2026</div><div style="font-size: 28px; font-weight: 700;">3</div>'
        in html
    )
    assert (
        '<div style="font-size: 28px; font-weight: 700;">67 %</div><div style="color:#5b6474;">2 of 3</div>'
        in html
    )
    assert 'alt="Active people by month: Oct 2026 3; Nov 2026 3 (kept 67 %); "' in html
    # Three charts inside multipart/related, each referenced from the HTML by its Content-ID.
    mime = message.message()
    assert mime.get_content_type() == "multipart/related"
    images = [part for part in mime.walk() if part.get_content_type() == "image/png"]
    assert len(images) == 3
    for image in images:
        assert image.get_payload(decode=True)[:8] == PNG
        assert f'src="cid:{image["Content-ID"].strip("<>")}"' in html

    # Frozen with the run: a retried send rebuilds the same message.
    run = DigestRun.objects.get()
    assert run.summary["usage"]["months"][-1] == {
        "month": "2026-11-01",
        "label": "Nov 2026",
        "active": 3,
        "previous_active": 3,
        "retained": 2,
        "retained_percent": 67,
        "complete": True,
    }
    assert bytes(run.mau_chart_png)[:8] == PNG and bytes(run.retention_chart_png)[:8] == PNG


def test_a_digest_frozen_before_the_usage_charts_still_reads(november):
    """A digest claimed before this change has no usage in its summary and no usage charts: it is
    sent as it was frozen, with its one chart."""
    with time_machine.travel(NOW, tick=False):
        run = services.digest_claim(month=NOVEMBER)
    summary = {
        key: value
        for key, value in run.summary.items()
        if key not in ("usage", "usage_states", "active_days")
    }
    DigestRun.objects.filter(pk=run.pk).update(
        summary=summary, mau_chart_png=b"", retention_chart_png=b""
    )
    message = services.digest_message(delivery=DigestDelivery.objects.get(run=run, user=november))
    assert "Active people" not in message.body and "Active people" not in message.alternatives[0][0]
    assert [part.get_content_type() for part in message.message().walk()].count("image/png") == 1
