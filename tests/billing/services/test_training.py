"""Training credits: the balance, assigning colleagues (credits drawn soonest-expiry first across
packs), the refusals (short, twice, not a member, not an admin, no subscription), withdrawing,
and the email the colleague gets."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.core import mail

from accounts.models import Membership
from billing.exceptions import TrainingRefused
from billing.models import Subscription, TrainingAssignment, TrainingPack, TrainingSpend
from billing.selectors import training_usage
from billing.services.training import training_assign, training_balance, training_withdraw
from catalog.models import AddOn, Course
from common.exceptions import NotFound, PermissionDenied
from experiments.models import Event

from ...conftest import organization_on

NOW = datetime(2026, 3, 2, 10, tzinfo=UTC)

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _at_now():
    with time_machine.travel(NOW, tick=False):
        yield


def _pack(organization, *, credits=10, days=365, product="tracker", **fields):
    """A training pack as a paid training add-on invoice grants it (granted now, `days` to use)."""
    return TrainingPack.objects.create(
        organization=organization,
        addon=AddOn.objects.get(product__code=product, code="training"),
        credits=credits,
        granted_at=NOW,
        expires_at=NOW + timedelta(days=days),
        **fields,
    )


def _course(code, product="tracker"):
    return Course.objects.get(product__code=product, code=code)


def _colleagues(organization):
    return [m.user for m in organization.memberships.filter(role=Membership.Role.MEMBER).select_related("user").order_by("pk")]


def _left(*packs):
    return [TrainingPack.objects.get(pk=pack.pk).credits_left for pack in packs]


def test_balance_counts_spendable_packs_and_names_the_next_expiry(catalog):
    organization, _ = organization_on("standard")
    later = _pack(organization, credits=10, days=300)
    sooner = _pack(organization, credits=4, days=40)
    _pack(organization, credits=5, days=10, suspended_at=NOW)  # its PO invoice is overdue
    _pack(organization, credits=6, days=-1)  # past its end, not yet expired by the tick
    _pack(organization, credits=7, days=200, expired_at=NOW)
    other, _ = organization_on("standard")
    _pack(other, credits=9, days=5)

    balance = training_balance(organization=organization)
    assert (balance.credits_left, balance.next_expiry, balance.credits_expiring_next) == (14, sooner.expires_at, 4)
    assert balance.packs == [sooner, later]
    assert balance.text == "14 credits left, 4 of them expire on 11 Apr 2026"
    assert training_balance(organization=organization, product=_course("fundamentals", "wiki").product).text == (
        "No training credits left"
    )


def test_assigning_draws_from_the_soonest_expiring_pack_first_across_packs(catalog):
    organization, admin = organization_on("standard", members=3)
    alice, bob = _colleagues(organization)
    later = _pack(organization, credits=10, days=300)
    sooner = _pack(organization, credits=2, days=40)

    first = training_assign(organization=organization, actor=admin, course=_course("fundamentals"), user=alice)
    assert _left(sooner, later) == [1, 10]
    assert list(first.spends.values_list("pack_id", "credits")) == [(sooner.pk, 1)]

    # 3 credits: the last one of the sooner pack, then 2 of the later one.
    second = training_assign(organization=organization, actor=admin, course=_course("workflow-workshop"), user=bob)
    assert _left(sooner, later) == [0, 8]
    assert list(second.spends.order_by("pk").values_list("pack_id", "credits")) == [(sooner.pk, 1), (later.pk, 2)]
    assert (second.credits, second.assigned_by, second.user) == (3, admin, bob)
    assert training_balance(organization=organization).text == "8 credits left, to use by 27 Dec 2026"
    event = Event.objects.get(name="training_assigned", properties__assignment=str(second.public_id))
    assert event.properties["course"] == "tracker/workflow-workshop" and event.properties["credits"] == 3
    assert event.organization == organization


def test_wiki_credits_do_not_pay_for_tracker_courses(catalog):
    organization, admin = organization_on("standard", members=2)
    (alice,) = _colleagues(organization)
    _pack(organization, credits=10, product="wiki")
    with pytest.raises(TrainingRefused) as refused:
        training_assign(organization=organization, actor=admin, course=_course("fundamentals"), user=alice)
    assert refused.value.message == (
        f"Tracker fundamentals takes 1 credit; {organization.name} has no Tracker training credits left. "
        "Buy a Tracker training pack on the billing page to top up, or choose a shorter course."
    )


def test_short_of_credits_is_refused_naming_the_balance_and_nothing_changes(catalog):
    organization, admin = organization_on("standard", members=2)
    (alice,) = _colleagues(organization)
    pack = _pack(organization, credits=2)
    with pytest.raises(TrainingRefused) as refused:
        training_assign(organization=organization, actor=admin, course=_course("workflow-workshop"), user=alice)
    assert refused.value.message == (
        f"Workflow design workshop takes 3 credits; {organization.name} has 2 credits of Tracker training left. "
        "Buy a Tracker training pack on the billing page to top up, or choose a shorter course."
    )
    assert _left(pack) == [2]
    assert not TrainingAssignment.objects.exists() and not TrainingSpend.objects.exists()
    assert not Event.objects.filter(name="training_assigned").exists()


def test_assigning_the_same_person_twice_is_refused_and_spends_once(catalog):
    organization, admin = organization_on("standard", members=2)
    (alice,) = _colleagues(organization)
    alice.first_name, alice.last_name = "Alice", "Martin"
    alice.save()
    pack = _pack(organization, credits=10)
    training_assign(organization=organization, actor=admin, course=_course("admin-essentials"), user=alice)
    with pytest.raises(TrainingRefused) as refused:
        training_assign(organization=organization, actor=admin, course=_course("admin-essentials"), user=alice)
    assert refused.value.message == "Alice Martin is already assigned to Admin essentials; nothing was spent."
    assert _left(pack) == [8]
    assert TrainingAssignment.objects.count() == 1


def test_only_an_admin_assigns_and_only_members_are_assigned(catalog):
    organization, admin = organization_on("standard", members=2)
    (alice,) = _colleagues(organization)
    other, other_admin = organization_on("standard")
    pack = _pack(organization, credits=10)
    course = _course("fundamentals")

    with pytest.raises(PermissionDenied) as refused:
        training_assign(organization=organization, actor=alice, course=course, user=alice)
    assert refused.value.message == "Only an admin of this organization can assign training."
    # The tenant wall: another organization's admin learns nothing, and its people cannot be assigned.
    with pytest.raises(NotFound):
        training_assign(organization=organization, actor=other_admin, course=course, user=alice)
    with pytest.raises(TrainingRefused) as refused:
        training_assign(organization=organization, actor=admin, course=course, user=other_admin)
    assert refused.value.message == (
        f"{other_admin.email} is not a member of {organization.name}: invite them to the organization first, then assign the course."
    )
    assert _left(pack) == [10] and not TrainingAssignment.objects.exists()
    assert other.training_assignments.count() == 0


def test_a_course_needs_a_subscription_in_good_standing_and_must_still_be_offered(catalog):
    organization, admin = organization_on("standard", members=2)
    (alice,) = _colleagues(organization)
    _pack(organization, credits=10)
    _pack(organization, credits=10, product="wiki")
    with pytest.raises(TrainingRefused) as refused:
        training_assign(organization=organization, actor=admin, course=_course("fundamentals", "wiki"), user=alice)
    assert refused.value.message == (
        f"Wiki fundamentals is a Wiki course and {organization.name} has no Wiki subscription in good standing: "
        "start or renew Wiki first."
    )
    Subscription.objects.filter(organization=organization).update(status=Subscription.Status.SUSPENDED)
    with pytest.raises(TrainingRefused, match="has no Tracker subscription in good standing"):
        training_assign(organization=organization, actor=admin, course=_course("fundamentals"), user=alice)
    Subscription.objects.filter(organization=organization).update(status=Subscription.Status.TRIALING)
    Course.objects.filter(product__code="tracker", code="fundamentals").update(is_active=False)
    with pytest.raises(TrainingRefused) as refused:
        training_assign(organization=organization, actor=admin, course=_course("fundamentals"), user=alice)
    assert refused.value.message == "Tracker fundamentals is no longer offered: choose another Tracker course."
    assert not TrainingAssignment.objects.exists()


def test_the_colleague_is_emailed_the_course_and_the_date_to_take_it_by(catalog, eager_tasks, django_capture_on_commit_callbacks):
    organization, admin = organization_on("standard", members=2)
    (alice,) = _colleagues(organization)
    admin.first_name, admin.last_name = "Dana", "Admin"
    admin.save()
    _pack(organization, credits=10, days=90)
    with django_capture_on_commit_callbacks(execute=True):
        training_assign(organization=organization, actor=admin, course=_course("workflow-workshop"), user=alice)
    (message,) = [m for m in mail.outbox if alice.email in m.to]
    assert message.subject == "[Flywheel] You are assigned to Tracker training: Workflow design workshop"
    assert message.body.startswith(
        "Hello,\n\nDana Admin assigned you to Workflow design workshop, a live session on Tracker (3 hours).\n\n"
        "A live session with a Tracker trainer: design your team's workflow on your own boards.\n\n"
        f"{organization.name} paid for your place with training credits valid until 31 May 2026: please take it before then.\n"
    )
    assert f"an admin of {organization.name} assigned you a course" in message.body


def test_withdrawing_gives_credits_back_to_unexpired_packs_once(catalog):
    organization, admin = organization_on("standard", members=2)
    (alice,) = _colleagues(organization)
    sooner = _pack(organization, credits=1, days=20)
    later = _pack(organization, credits=10, days=300)
    assignment = training_assign(organization=organization, actor=admin, course=_course("workflow-workshop"), user=alice)
    assert _left(sooner, later) == [0, 8]

    # The sooner pack expires meanwhile: its credit is lost, the later pack's two come back.
    TrainingPack.objects.filter(pk=sooner.pk).update(expired_at=NOW)
    withdrawn = training_withdraw(assignment=assignment, actor=admin)
    assert withdrawn.withdrawn_at == NOW
    assert TrainingPack.objects.get(pk=sooner.pk).credits_used == 1
    assert _left(later) == [10]
    event = Event.objects.get(name="training_withdrawn")
    assert (event.properties["credits_returned"], event.properties["credits_lost"]) == (2, 1)

    with pytest.raises(TrainingRefused) as refused:
        training_withdraw(assignment=assignment, actor=admin)
    assert refused.value.message == f"{alice.email} was already withdrawn from Workflow design workshop on 2 Mar 2026."
    assert _left(later) == [10]
    # Withdrawn, the person can be assigned again.
    training_assign(organization=organization, actor=admin, course=_course("workflow-workshop"), user=alice)
    assert _left(later) == [7]


def test_withdrawing_is_for_admins_and_not_after_completion(catalog):
    organization, admin = organization_on("standard", members=2)
    (alice,) = _colleagues(organization)
    pack = _pack(organization, credits=10)
    assignment = training_assign(organization=organization, actor=admin, course=_course("fundamentals"), user=alice)
    with pytest.raises(PermissionDenied):
        training_withdraw(assignment=assignment, actor=alice)
    TrainingAssignment.objects.filter(pk=assignment.pk).update(completed_at=NOW)
    with pytest.raises(TrainingRefused) as refused:
        training_withdraw(assignment=assignment, actor=admin)
    assert refused.value.message == (
        f"{alice.email} completed Tracker fundamentals on 2 Mar 2026: a completed course cannot be withdrawn."
    )
    assert _left(pack) == [9]


def test_staff_see_who_used_what(catalog):
    organization, admin = organization_on("standard", members=3)
    alice, bob = _colleagues(organization)
    _pack(organization, credits=10)
    first = training_assign(organization=organization, actor=admin, course=_course("fundamentals"), user=alice)
    with time_machine.travel(NOW + timedelta(days=3), tick=False):
        second = training_assign(organization=organization, actor=admin, course=_course("admin-essentials"), user=bob)
    assert list(training_usage()) == [second, first]
    assert list(training_usage(since=NOW + timedelta(days=1))) == [second]
    row = training_usage()[0]
    assert (row.organization, row.user, row.course.product.name, row.credits) == (organization, bob, "Tracker", 2)
    assert [spend.credits for spend in row.spends.all()] == [2]
