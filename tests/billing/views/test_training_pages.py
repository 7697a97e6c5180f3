"""The training pages over HTTP: an admin's balance, packs, courses and assignments (assign a
colleague, withdraw), a member's own courses, refusals as sentences (400, nothing changed), the
tenant wall, and the staff's page of who used what."""

from datetime import timedelta

import pytest
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from billing.models import Invoice, TrainingAssignment, TrainingPack
from billing.services.grants import training_pack_grant
from catalog.models import AddOn

from ...conftest import organization_on
from ...factories import MembershipFactory, UserFactory
from ..factories import InvoiceFactory
from ..helpers import visible_text


def _pack(organization, *, product: str = "tracker") -> TrainingPack:
    """A training pack bought with a paid add-on invoice (what paying for one grants)."""
    addon = AddOn.objects.get(product__code=product, code="training")
    with transaction.atomic():
        invoice = InvoiceFactory(
            subscription=organization.subscriptions.get(product__code=product),
            kind=Invoice.Kind.ADDON,
            addon=addon,
            total_minor=addon.one_off_price_minor,
            paid=True,
        )
        return training_pack_grant(invoice=invoice)


@pytest.fixture
def team(catalog):
    """Tracker Standard (trial) with an admin, a colleague and a 10-credit pack."""
    organization, admin = organization_on("standard")
    colleague = MembershipFactory(organization=organization, user=UserFactory(first_name="Rosa", last_name="Diaz")).user
    pack = _pack(organization)
    return organization, admin, colleague, pack


def _assign(client, colleague, course="fundamentals", product="tracker"):
    return client.post(
        reverse("training_assign"), {"product": product, "course": course, "user": str(colleague.public_id)}
    )


def test_admin_sees_the_balance_packs_and_courses(client, team):
    organization, admin, colleague, pack = team
    client.force_login(admin)
    page = client.get(reverse("training"))
    assert page.status_code == 200
    text = visible_text(page.content.decode())
    assert "10 credits left" in text
    assert f"To use by {pack.expires_at:%-d %b %Y}, in 365 days." in text
    assert f"Tracker training pack ( {pack.invoice.number} ) {pack.granted_at:%-d %b %Y} 10 0 10 {pack.expires_at:%-d %b %Y} (in 365 days)" in text
    assert "Tracker fundamentals 1 credit Self-paced course · 1 hour 30 minutes" in text
    assert "Workflow design workshop 3 credits Live session · 3 hours" in text
    assert "Rosa Diaz" in text and "Nobody is assigned to a course yet." in text
    assert "Buy a training pack Tracker training pack: 10 credits for USD 500.00 once, valid 365 days." in text


def test_assigning_a_colleague_spends_credits_and_withdrawing_gives_them_back(client, team):
    organization, admin, colleague, pack = team
    client.force_login(admin)
    response = _assign(client, colleague, course="workflow-workshop")
    assert response.status_code == 302
    page = visible_text(client.get(response["Location"]).content.decode())
    assert "Rosa Diaz is assigned to Workflow design workshop: 3 credits used." in page
    assert "7 credits left" in page
    assignment = TrainingAssignment.objects.get()

    client.force_login(colleague)
    mine = client.get(reverse("training"))
    text = visible_text(mine.content.decode())
    assert "Your courses" in text and "Workflow design workshop" in text
    assert "credits left" not in text and "training_assign" not in mine.content.decode()
    assert 'action="/billing/training/assign/"' not in mine.content.decode()
    assert _assign(client, colleague).status_code == 404  # members cannot assign

    client.force_login(admin)
    withdrawn = client.post(reverse("training_withdraw", args=[assignment.public_id]), follow=True)
    text = visible_text(withdrawn.content.decode())
    assert "Rosa Diaz is no longer assigned to Workflow design workshop." in text and "10 credits left" in text


def test_bad_choices_are_refused_with_a_sentence_and_change_nothing(client, team):
    organization, admin, colleague, pack = team
    client.force_login(admin)
    unknown_course = _assign(client, colleague, course="no-such-course")
    assert unknown_course.status_code == 400
    assert "Choose a course from the list." in visible_text(unknown_course.content.decode())
    stranger = UserFactory()
    unknown_person = _assign(client, stranger)
    assert unknown_person.status_code == 400
    assert "Choose a colleague from your organization&#x27;s members." in unknown_person.content.decode() or (
        "Choose a colleague from your organization's members." in visible_text(unknown_person.content.decode())
    )
    garbage = client.post(reverse("training_assign"), {"product": "tracker", "course": "fundamentals", "user": "x" * 500})
    assert garbage.status_code == 400
    assert not TrainingAssignment.objects.exists()

    for course in ("workflow-workshop", "admin-essentials", "fundamentals"):
        assert _assign(client, colleague, course=course).status_code == 302
    third = MembershipFactory(organization=organization).user
    _assign(client, third, course="workflow-workshop")  # 6 + 3 = 9 of 10
    short = _assign(client, admin, course="workflow-workshop")
    assert short.status_code == 400
    text = visible_text(short.content.decode())
    assert "takes 3 credits" in text and "1 credit" in text
    assert TrainingAssignment.objects.filter(user=admin).count() == 0


def test_another_organization_sees_none_of_it(client, team):
    organization, admin, colleague, pack = team
    client.force_login(admin)
    client.get(_assign(client, colleague)["Location"])  # its message read here
    assignment = TrainingAssignment.objects.get()
    other_organization, other_admin = organization_on("standard")
    client.force_login(other_admin)
    assert client.post(reverse("training_withdraw", args=[assignment.public_id])).status_code == 404
    html = client.get(reverse("training")).content.decode()
    page = visible_text(html)
    assert "Rosa Diaz" not in page and "0 credits left" in page and "No training credits yet." in page
    assert "Buy a training pack to assign colleagues" in page and f'action="{reverse("training_assign")}"' not in html
    assert _assign(client, colleague).status_code == 400  # not one of their members
    assignment.refresh_from_db()
    assert assignment.withdrawn_at is None


def test_staff_see_who_used_what_and_packs_expiring_soon(client, team):
    organization, admin, colleague, pack = team
    client.force_login(admin)
    _assign(client, colleague, course="admin-essentials")
    assert client.get(reverse("staff_training")).status_code == 403

    TrainingPack.objects.filter(pk=pack.pk).update(expires_at=timezone.now() + timedelta(days=12))
    staff = UserFactory(is_staff=True)
    client.force_login(staff)
    page = client.get(reverse("staff_training"))
    assert page.status_code == 200
    text = visible_text(page.content.decode())
    assert f"{organization.name} {colleague.email} Tracker: Admin essentials 2 Assigned" in text
    assert f"{organization.name} Tracker training pack 8 of 10" in text and "(in 12 days)" in text
    home = visible_text(client.get(reverse("staff_home")).content.decode())
    assert "Training usage" in home
