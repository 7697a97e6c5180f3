"""The monthly staff digest: sent once per month under overlapping ticks (threads here and
tasks in the real worker), with the right numbers, ten random comments and an inline chart; and
each customer's report to its own admins."""

from __future__ import annotations

import threading

import pytest
from django.conf import settings as django_settings
from django.db import connection
from django.test import Client
from django.utils import timezone

from accounts.models import Membership
from feedback import services, tasks
from feedback.models import DigestDelivery, DigestRun, OrganizationReportRun
from feedback.reports import month_of, months_back

from ..conftest import body_text, mails_to, organization_on, wait_for
from ..factories import MembershipFactory, UserFactory
from .helpers import responses_insert


def _in_threads(count, work):
    barrier = threading.Barrier(count)
    errors = []

    def run():
        try:
            barrier.wait(5)
            work()
        except Exception as error:  # noqa: BLE001 - asserted below
            errors.append(repr(error))
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return errors


def _finished(worker, task_id):
    return f"[{task_id}] succeeded" in worker.log()


@pytest.mark.django_db(transaction=True)
def test_the_digest_goes_out_once_per_month_with_numbers_and_chart(catalog, celery_worker):
    # The worker's settings are the defaults (groups under 10 answers are not scored), and either
    # it or a thread here wins the claim: the data below reads the same either way.
    month = months_back(month_of(timezone.now()), 1)  # the month the tick reports on: the last one
    staff = [UserFactory(email=f"staff{index}-{month:%Y%m}@flywheel.example", is_staff=True) for index in range(2)]
    UserFactory(email="not-staff-digest@flywheel.example")
    organization, admin = organization_on("standard")
    other, other_admin = organization_on("standard")
    # This month: 12 promoters, 4 passives, 4 detractors (NPS +40); 12 of them commented.
    responses_insert(organization, [10] * 10, month=month, role="developer",
                     comment="Everything loads quickly", category="reliability")
    responses_insert(organization, [9] * 2, month=month, role="designer",
                     comment="Would love a timeline view", category="functionality")
    responses_insert(other, [8] * 4 + [3] * 4, month=month, role="developer")
    # Last month: NPS -20 from 10 answers.
    responses_insert(organization, [10, 10, 8, 8, 8, 8, 5, 4, 2, 0], month=months_back(month, 1))

    worker_ticks = [
        tasks.reports_send_monthly.apply_async(queue=django_settings.CELERY_TASK_DEFAULT_QUEUE).id for _ in range(2)
    ]
    assert _in_threads(3, services.reports_send_monthly) == []
    for task_id in worker_ticks:
        wait_for(lambda task_id=task_id: _finished(celery_worker, task_id), what=f"tick {task_id}")
    for user in staff:
        wait_for(lambda user=user: mails_to(user.email), what=f"the digest to {user.email}")
    wait_for(lambda: mails_to(admin.email) and mails_to(other_admin.email), what="the customer reports")
    wait_for(lambda: not DigestDelivery.objects.filter(sent_at__isnull=True).exists(), what="every copy sent")

    assert DigestRun.objects.count() == 1
    assert DigestDelivery.objects.count() == 2  # staff only
    assert OrganizationReportRun.objects.filter(month=month).count() == 2
    # Later ticks of the same month send nothing more.
    assert services.reports_send_monthly() == {"month": month.isoformat(), "digest": False, "organization_reports": 0}
    assert not mails_to("not-staff-digest@flywheel.example")

    for user in staff:
        [message] = mails_to(user.email)
        assert message["Subject"] == f"NPS digest for {month:%B %Y}: +40"
        text = body_text(message)
        # Months by name (the digest is about last month), the change with its margin.
        assert f"{month:%B %Y}: +40 ±35 from 20 answers" in text
        assert f"{months_back(month, 1):%B %Y}: -20 from 10 answers" in text
        assert "Change: +60 points ±58, a real change (larger than its margin of error)" in text
        assert "This month" not in text and "Last month" not in text
        assert "Groups with fewer than 10 answers are not scored." in text
        assert "Reliability: 10 comments, NPS 100" in text
        assert "Functionality: 2 comments\n" in text  # too few to score
        assert text.count('"Everything loads quickly"') + text.count('"Would love a timeline view"') == 10
        # The charts (NPS trend, active people, retention): PNGs inside multipart/related, each
        # referenced by its Content-ID from the HTML (tests/feedback/test_digest_usage.py reads the usage ones).
        assert message.get_content_type() == "multipart/related"
        images = [part for part in message.walk() if part.get_content_type() == "image/png"]
        assert [image.get_filename() for image in images] == [
            f"nps-trend-{month:%Y-%m}.png", f"active-people-{month:%Y-%m}.png", f"retention-{month:%Y-%m}.png"
        ]
        html = message.get_body(preferencelist=("html",)).get_content()
        for image in images:
            assert image.get_content()[:8] == b"\x89PNG\r\n\x1a\n"
            assert f'src="cid:{image["Content-ID"].strip("<>")}"' in html
    run = DigestRun.objects.get()
    assert run.summary["overall"]["nps"] == 40.0 and run.summary["previous"]["nps"] == -20.0
    assert len(run.summary["comments"]) == 10

    # Each customer's admins get their own report, once, and nothing of the other's.
    [report] = mails_to(admin.email)
    text = body_text(report)
    # Over the twelve months up to this one: 22 answers here (14 promoters, 4 detractors), 30 in all.
    assert "Your users: NPS +45 ±" in text and "from 22 answers" in text
    assert "All customers: NPS +20 ±" in text
    assert "Everything loads quickly" in text
    [other_report] = mails_to(other_admin.email)
    other_text = body_text(other_report)
    assert "Your users: too few answers (8)" in other_text
    assert "Everything loads quickly" not in other_text and "timeline" not in other_text


def test_organization_report_names_authors_only_with_consent(catalog, settings, monkeypatch, mailoutbox):
    """What the admins read; the queued mail is sent here at once instead of by the worker."""
    settings.FEEDBACK_MIN_GROUP_RESPONSES = 1
    monkeypatch.setattr(services, "mail_queue", lambda message: message.send())
    month = months_back(month_of(timezone.now()), 1)
    organization, admin = organization_on("standard")
    second_admin = MembershipFactory(organization=organization, role=Membership.Role.ADMIN).user
    MembershipFactory(organization=organization)  # a member: no report
    named = UserFactory(email="named-author@customer.example", first_name="Nadia", last_name="Named")
    hidden = UserFactory(email="hidden-author@customer.example", first_name="Hugo", last_name="Hidden")
    [agreed] = responses_insert(organization, [3], month=month, comment="Agreed to be named", category="other",
                                user=named)
    agreed.may_contact = True
    agreed.save(update_fields=["may_contact"])
    responses_insert(organization, [4], month=month, comment="Did not agree", category="other", user=hidden)

    assert services.organization_report_send(organization_id=organization.pk, month=month).recipients == 2
    assert services.organization_report_send(organization_id=organization.pk, month=month) is None
    assert sorted(address for message in mailoutbox for address in message.to) == sorted(
        [admin.email, second_admin.email]
    )
    text = mailoutbox[0].body
    assert "Nadia Named" in text and "Agreed to be named" in text
    assert "Did not agree" in text and "Hugo" not in text and "hidden-author" not in text
    html = mailoutbox[0].alternatives[0][0]
    assert "Nadia Named" in html and "Hugo" not in html


def test_an_admin_stops_the_monthly_report_with_one_click(client, catalog, settings, monkeypatch, mailoutbox):
    monkeypatch.setattr(services, "mail_queue", lambda message: message.send())
    month = months_back(month_of(timezone.now()), 1)
    organization, admin = organization_on("standard")
    second_admin = MembershipFactory(organization=organization, role=Membership.Role.ADMIN).user
    assert services.organization_report_send(organization_id=organization.pk, month=month).recipients == 2
    message = next(message for message in mailoutbox if message.to == [admin.email])
    link = message.extra_headers["List-Unsubscribe"].strip("<>")
    assert message.extra_headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert f"Stop these monthly reports: {link}" in message.body and link in message.alternatives[0][0]
    path = link.removeprefix(settings.SITE_URL)

    assert client.get(path).status_code == 200  # asks; a link scanner's GET changes nothing
    assert client.get(path[:-3] + "xyz/").status_code == 404
    mail_client = Client(enforce_csrf_checks=True)
    assert mail_client.post(path).status_code == 200  # a mail client's one-click POST: no session, no CSRF token
    assert mail_client.post(path).status_code == 200  # again: nothing more to do

    mailoutbox.clear()
    later = months_back(month_of(timezone.now()), 0)
    assert services.organization_report_send(organization_id=organization.pk, month=later).recipients == 1
    assert [message.to for message in mailoutbox] == [[second_admin.email]]
