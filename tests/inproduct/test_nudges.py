"""The invite nudge (inproduct/nudges.py): only admins, a stable variation per person, the
moment (days active, first success), the channel (in the product, or one email through the
marketing cap), and accepted invites counted for the exposed inviter in the analysis."""

from datetime import timedelta
from io import StringIO

import pytest
from django.conf import settings
from django.core import mail
from django.core.management import call_command
from django.utils import timezone

from accounts.services import invite_accept, invite_create
from billing.models import PromptDismissal
from catalog.models import Product
from experiments.analysis import experiment_analyse
from experiments.models import Event, Experiment, Exposure
from inproduct.messages import message_due
from inproduct.models import InviteNudgeEmail, KitSession, OfferClosed
from inproduct.nudges import EXPERIMENT_KEY
from inproduct.services import message_event_record, success_record
from onboarding.models import MarketingSend
from onboarding.services.suppression import marketing_email_claim

from ..conftest import organization_on
from ..factories import UserFactory
from .helpers import admin_membership, caller_for, member_of, nudge_experiment

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin(organization, no_survey):
    """The organization's admin, who has already closed the products to try, so the nudge's
    turn comes whenever nothing else is due."""
    organization, admin = organization
    for code in ("wiki", "servicedesk"):
        OfferClosed.objects.create(user=admin, organization=organization, offer=f"try:{code}", action="dismissed")
    return admin_membership(organization, admin)


def sessions_on_days(membership, days: int) -> None:
    """Kit sessions of the person on `days` distinct past days."""
    product = Product.objects.get(code="tracker")
    for day in range(1, days + 1):
        KitSession.objects.create(
            organization=membership.organization, user=membership.user, product=product, origin="http://x",
            started_at=timezone.now() - timedelta(days=day), last_seen_at=timezone.now() - timedelta(days=day),
        )


def test_a_member_is_never_nudged_nor_exposed(organization, no_survey):
    organization, _ = organization
    nudge_experiment("in-product-3-days", days=1)
    member = member_of(organization)
    assert message_due(caller=caller_for(member)) is None
    assert not Exposure.objects.exists()


def test_the_variation_is_stable_per_admin_and_exposed_once(admin):
    nudge_experiment()  # as shipped: four arms
    first = message_due(caller=caller_for(admin))
    exposure = Exposure.objects.get(experiment__key=EXPERIMENT_KEY, user=admin.user)
    for _ in range(3):
        again = message_due(caller=caller_for(admin))
        assert (again is None) == (first is None)
    assert Exposure.objects.filter(experiment__key=EXPERIMENT_KEY).count() == 1
    assert Event.objects.filter(name="experiment_exposed", user=admin.user).count() == 1
    # Staff move every weight to one arm: the exposed admin keeps theirs.
    Experiment.objects.get(key=EXPERIMENT_KEY).variations.update(weight=0)
    Experiment.objects.get(key=EXPERIMENT_KEY).variations.filter(key="holdout").update(weight=1)
    message_due(caller=caller_for(admin))
    assert Exposure.objects.get(pk=exposure.pk).variation_key == exposure.variation_key


def test_the_holdout_is_exposed_and_never_nudged(admin):
    nudge_experiment("holdout")
    sessions_on_days(admin, 10)
    assert message_due(caller=caller_for(admin)) is None
    assert Exposure.objects.get(user=admin.user).variation_key == "holdout"


def test_without_the_experiment_nobody_is_nudged(admin):
    sessions_on_days(admin, 10)
    assert message_due(caller=caller_for(admin)) is None
    Experiment.objects.filter(key=EXPERIMENT_KEY).delete()
    nudge_experiment("in-product-3-days")
    Experiment.objects.filter(key=EXPERIMENT_KEY).update(status=Experiment.Status.DRAFT)
    assert message_due(caller=caller_for(admin)) is None


def test_days_active_moment(admin):
    nudge_experiment("in-product-3-days")
    sessions_on_days(admin, 1)
    assert message_due(caller=caller_for(admin)) is None  # today and yesterday: 2 days
    assert Exposure.objects.filter(user=admin.user).count() == 1  # exposed at the nudge's first turn
    sessions_on_days(admin, 2)
    assert message_due(caller=caller_for(admin)).id == "nudge:invite"


def test_first_success_moment(admin):
    nudge_experiment("in-product-first-success")
    sessions_on_days(admin, 10)
    caller = caller_for(admin)
    assert message_due(caller=caller) is None
    assert success_record(caller=caller, name="first_success") is True
    assert success_record(caller=caller, name="first_success") is False  # counted, recorded once
    assert Event.objects.filter(name="kit_success", user=admin.user).count() == 1
    message = message_due(caller=caller_for(admin))
    assert message.id == "nudge:invite"
    assert message.title == "Nice work! Bring your team in"


def test_a_dismissed_nudge_is_snoozed_for_30_days(admin):
    nudge_experiment("in-product-3-days", days=1)
    caller = caller_for(admin)
    assert message_due(caller=caller).id == "nudge:invite"
    message_event_record(caller=caller, message_id="nudge:invite", action="dismissed")
    MarketingSend.objects.all().delete()  # the cap's window is not what is under test
    assert message_due(caller=caller_for(admin)) is None
    OfferClosed.objects.filter(offer="nudge:invite").update(closed_at=timezone.now() - timedelta(days=31))
    assert message_due(caller=caller_for(admin)).id == "nudge:invite"
    event = Event.objects.get(name="kit_message_dismissed")
    assert event.properties["experiment"] == EXPERIMENT_KEY
    assert event.properties["variation"] == "in-product-3-days"


def test_the_email_channel_sends_one_email_through_the_marketing_cap(admin, eager_tasks, django_capture_on_commit_callbacks):
    nudge_experiment("email-3-days", days=1)
    user = admin.user
    assert marketing_email_claim(email=user.email, source="onboarding").allowed  # an onboarding email today
    with django_capture_on_commit_callbacks(execute=True):
        assert message_due(caller=caller_for(admin)) is None
    assert mail.outbox == [] and not InviteNudgeEmail.objects.exists()  # over the cap: not now
    MarketingSend.objects.all().delete()  # the window has passed
    with django_capture_on_commit_callbacks(execute=True):
        assert message_due(caller=caller_for(admin)) is None  # the email instead of a kit message
        assert message_due(caller=caller_for(admin)) is None
    [email] = mail.outbox
    assert email.to == [user.email]
    assert email.subject == "[Flywheel] Invite your colleagues to Tracker"
    assert email.extra_headers["List-Unsubscribe"].startswith(f"<{settings.SITE_URL}/")
    assert (
        f"Invite colleagues to {admin.organization.name}: they get an email and join in one click" in email.body
    )
    members = f"{settings.SITE_URL}/app/members/?organization={admin.organization.public_id}#invite-form"
    assert f"Invite colleagues:\n{members}" in email.body
    assert "You receive this because you are an admin of" in email.body
    assert email.body.rstrip().endswith(f"Unsubscribe: {email.extra_headers['List-Unsubscribe'][1:-1]}")
    assert email.from_email == settings.ONBOARDING_FROM_EMAIL
    assert MarketingSend.objects.get(email=user.email).source == "kit:invite_nudge"
    assert InviteNudgeEmail.objects.get(user=user).variation_key == "email-3-days"
    assert Event.objects.filter(name="kit_invite_nudge_emailed", user=user).count() == 1


def test_invites_sent_and_accepted_count_for_the_exposed_admin_in_the_analysis(admin):
    nudge_experiment("in-product-3-days", days=1)
    assert message_due(caller=caller_for(admin)).id == "nudge:invite"
    invite = invite_create(organization=admin.organization, actor=admin.user, email="colleague@example.org")
    invite_accept(invite=invite, user=UserFactory(email="colleague@example.org"))
    analysis = experiment_analyse(experiment=Experiment.objects.get(key=EXPERIMENT_KEY))
    labels = {metric.label: metric for metric in analysis.metrics}
    for label in ("Activation: Invited a colleague", "Activation: A colleague they invited joined"):
        treatment = next(variant for variant in labels[label].variants if variant.variation_key == "in-product-3-days")
        assert (treatment.units, treatment.total) == (1, 1.0)


def test_the_experiment_is_loaded_once_by_its_command(db):
    out = StringIO()
    call_command("invite_nudge_load", stdout=out)
    experiment = Experiment.objects.get(key=EXPERIMENT_KEY)
    assert experiment.status == Experiment.Status.RUNNING
    assert experiment.activation_events == ["invite_sent", "invitee_joined"]
    assert list(experiment.variations.values_list("key", flat=True).order_by("position")) == [
        "holdout", "in-product-3-days", "in-product-first-success", "email-3-days",
    ]
    experiment.variations.filter(key="holdout").update(weight=0.5)
    call_command("invite_nudge_load", stdout=out)
    assert experiment.variations.get(key="holdout").weight == 0.5  # staff's change is kept
    assert "kept as it is" in out.getvalue()


def test_no_nudge_and_no_exposure_without_a_free_seat(catalog, no_survey):
    organization, admin_user = organization_on("free", members=10)
    admin = admin_membership(organization, admin_user)
    for code in ("wiki", "servicedesk"):
        OfferClosed.objects.create(user=admin_user, organization=organization, offer=f"try:{code}", action="dismissed")
    PromptDismissal.objects.create(
        user=admin_user, organization=organization, kind="seat_limit_reached", product_code="tracker", threshold="10"
    )
    nudge_experiment("in-product-3-days", days=1)
    assert message_due(caller=caller_for(admin)) is None
    assert not Exposure.objects.exists()


def test_reporting_a_nudge_never_exposes_anyone(admin):
    nudge_experiment("in-product-3-days", days=1)
    message_event_record(caller=caller_for(admin), message_id="nudge:invite", action="shown")
    assert not Exposure.objects.exists()
    assert Event.objects.get(name="kit_message_shown").properties["variation"] == ""
