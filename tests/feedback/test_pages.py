"""Pages: an organization admin's report (and the tenant wall around it), the staff report,
category corrections by staff, and closing a follow-up, telling the respondent."""

from __future__ import annotations

import pytest
from django.utils import timezone

from accounts.models import Membership
from experiments.models import Event
from feedback import events, services
from feedback.models import FollowUp, Response
from feedback.reports import month_of

from ..conftest import organization_on
from ..factories import MembershipFactory, UserFactory
from .helpers import answer, member, responses_insert


@pytest.fixture
def two_tenants(catalog, settings):
    settings.FEEDBACK_MIN_GROUP_RESPONSES = 3
    ours, our_admin = organization_on("standard")
    theirs, their_admin = organization_on("standard")
    month = month_of(timezone.now())
    responses_insert(ours, [10, 9, 9, 2], month=month, comment="Our own remark about boards", category="usability")
    responses_insert(theirs, [0, 1, 2], month=month, comment="Their private complaint", category="reliability")
    return ours, our_admin, theirs, their_admin


def test_an_admin_reads_their_organizations_report(client, two_tenants):
    ours, our_admin, _, _ = two_tenants
    client.force_login(our_admin)
    page = client.get("/app/feedback/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "Our own remark about boards" in html
    assert "+50" in html  # ours: 3 promoters, 1 detractor of 4
    assert "-14" in html  # everyone: 3 promoters, 4 detractors of 7
    assert "Their private complaint" not in html


def test_members_and_strangers_never_see_a_report(client, two_tenants):
    ours, our_admin, theirs, their_admin = two_tenants
    plain_member = member(ours)
    client.force_login(plain_member.user)
    assert client.get("/app/feedback/").status_code == 404
    # An admin elsewhere who is a plain member here: working in this organization, 404; in their
    # own, only their own organization's answers.
    MembershipFactory(organization=ours, user=their_admin, role=Membership.Role.MEMBER)
    client.force_login(their_admin)
    own = client.get("/app/feedback/")
    assert own.status_code == 200
    assert "Their private complaint" in own.content.decode()
    assert "Our own remark" not in own.content.decode()
    assert client.post(f"/app/switch/{ours.public_id}/").status_code in (302, 303)
    assert client.get("/app/feedback/").status_code == 404
    client.logout()
    assert client.get("/app/feedback/").status_code == 302  # to the login page


def test_staff_report_shows_breakdowns_and_suppresses_small_groups(client, two_tenants):
    staff = UserFactory(is_staff=True)
    client.force_login(staff)
    month = month_of(timezone.now())
    page = client.get(f"/staff/feedback/?month={month:%Y-%m}")
    assert page.status_code == 200
    html = page.content.decode()
    assert "By role" in html and "By edition" in html and "By tenure of the respondent" in html
    assert "too few answers" in html
    assert "Their private complaint" in html and "Our own remark about boards" in html
    assert client.get("/staff/feedback/?month=soon").status_code == 400
    # A month out of range is a sentence too, never a 500 (year 1 has no month before it).
    for far in ("0001-12", "0001-01", "9999-12"):
        refused = client.get(f"/staff/feedback/?month={far}")
        assert refused.status_code == 400
        assert f"'month' must be between 2000-01 and {month:%Y-%m}, got '{far}'." in refused.content.decode().replace("&#x27;", "'")
    client.force_login(UserFactory())
    assert client.get("/staff/feedback/").status_code == 403  # not staff: "staff only"
    assert client.get("/staff/feedback/follow-ups/").status_code == 403


def test_staff_correct_a_category(client, two_tenants):
    ours, *_ = two_tenants
    response = Response.objects.filter(organization=ours).first()
    staff = UserFactory(is_staff=True)
    client.force_login(staff)
    saved = client.post(f"/staff/feedback/responses/{response.public_id}/category", {"category": "functionality"})
    assert saved.status_code == 302
    response.refresh_from_db()
    assert (response.category, response.suggested_category) == ("functionality", "usability")
    assert response.category_corrected_by == staff
    assert Event.objects.filter(name=events.FEEDBACK_CATEGORY_CORRECTED, user=staff).count() == 1
    # Not staff: no change.
    customer = UserFactory()
    with pytest.raises(services.PermissionDenied):
        services.response_categorize(response=response, category="other", actor=customer)
    client.force_login(customer)
    client.post(f"/staff/feedback/responses/{response.public_id}/category", {"category": "other"})
    response.refresh_from_db()
    assert response.category == "functionality"


def test_staff_close_a_follow_up_and_tell_the_respondent(client, trial_organization, monkeypatch):
    organization, _ = trial_organization
    sent = []
    monkeypatch.setattr(services, "mail_queue", sent.append)
    agreed = answer(member(organization), score=2, comment="Reports are too slow to be useful", may_contact=True)
    declined = answer(member(organization), score=1, comment="Hard to find anything")
    staff = UserFactory(is_staff=True)
    client.force_login(staff)
    listing = client.get("/staff/feedback/follow-ups/").content.decode()
    assert "Reports are too slow" in listing and "Hard to find anything" in listing

    refused = client.post(
        f"/staff/feedback/follow-ups/{declined.follow_up.public_id}/",
        {"action_taken": "Filed a usability ticket", "tell_respondent": "on"},
    )
    assert refused.status_code == 400
    assert "did not agree to be contacted" in refused.content.decode()
    assert FollowUp.objects.get(pk=declined.follow_up.pk).status == FollowUp.Status.OPEN
    assert sent == []

    closed = client.post(
        f"/staff/feedback/follow-ups/{agreed.follow_up.public_id}/",
        {"action_taken": "We added an index; reports now load in a second.", "tell_respondent": "on"},
    )
    assert closed.status_code == 302
    follow_up = FollowUp.objects.get(pk=agreed.follow_up.pk)
    assert follow_up.status == FollowUp.Status.DONE and follow_up.resolved_by == staff
    assert follow_up.respondent_told_at is not None
    [message] = sent
    assert message.to == [agreed.user.email]
    assert "We added an index" in message.body and "Reports are too slow" in message.body
    # Closing it again updates the note but never writes to the respondent twice.
    services.follow_up_resolve(follow_up=follow_up, actor=staff, action_taken="Also cached.", tell_respondent=True)
    assert len(sent) == 1


def test_the_admin_lists_responses_for_staff(client, two_tenants):
    superuser = UserFactory(is_staff=True, is_superuser=True)
    client.force_login(superuser)
    assert client.get("/admin/feedback/response/").status_code == 200
    response = Response.objects.exclude(comment="").first()
    change = client.get(f"/admin/feedback/response/{response.pk}/change/")
    assert change.status_code == 200
    saved = client.post(f"/admin/feedback/response/{response.pk}/change/", {"category": "other"})
    assert saved.status_code == 302
    response.refresh_from_db()
    assert response.category == "other" and response.category_corrected_by == superuser
    assert client.get("/admin/feedback/followup/").status_code == 200
