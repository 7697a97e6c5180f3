"""Demo data for `make run`: about forty NPS answers from Acme's members over the last three
months, so /app/feedback/ (as dana) and /staff/feedback/ show figures (docs/feedback.md).

Every answer goes through feedback.services (survey_decide, then response_submit), so the
asking rules, the product snapshot, the categorizer and the follow-ups are the real ones. A
member answers at most once every FEEDBACK_AFTER_RESPONSE_DAYS (90), so forty answers need
about forty members: dana, sam and demo-user-N@acme.example (password flywheel-demo).

Idempotent: a member who already answered in Acme is skipped; members are created once.
Refuses to run in production. Run `demo_data` first.
"""

import random
from datetime import UTC, datetime, timedelta

from allauth.account.models import EmailAddress
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone

from accounts.management.commands.demo_data import DEMO_PASSWORD, demo_user_create
from accounts.models import Membership, Organization, User
from accounts.services import organization_lock, seats_in_use
from activity.people import person_usage_before
from billing.services.seats import seat_limit_enforce
from catalog.models import Product
from common.exceptions import FlywheelError
from feedback.models import FollowUp, Response, Role, Survey, SurveyState
from feedback.reports import month_of, months_back
from feedback.services import response_submit, survey_decide

STAFF, DANA, SAM = "staff@flywheel.localhost", "dana@acme.example", "sam@acme.example"  # made by demo_data
EXTRA_MEMBERS = 38
PER_MONTH = (13, 15, 12)  # two months ago, last month (the staff report's default), this month

# (score, role, comment, may_contact); cycled over the respondents.
ANSWERS = [
    (10, Role.DEVELOPER, "The keyboard shortcuts and the fast search make triage a breeze.", True),
    (9, Role.PRODUCT_MANAGER, "Roadmap view is exactly what we needed for planning.", False),
    (3, Role.DEVELOPER, "The board is painfully slow once a sprint has more than 200 issues.", True),
    (8, Role.TEAM_LEAD, "", False),
    (10, Role.TEAM_LEAD, "Our whole team moved over in a week. Great onboarding.", False),
    (6, Role.DESIGNER, "Hard to find where attachments went after the last redesign.", False),
    (9, Role.DEVELOPER, "", False),
    (7, Role.OPERATIONS, "Works well, but please add an integration with PagerDuty.", True),
    (2, Role.EXECUTIVE, "We lost comments twice during the outage last month. That is not acceptable.", True),
    (10, Role.DEVELOPER, "The GitHub integration links commits to issues perfectly.", False),
    (8, Role.PRODUCT_MANAGER, "Good overall; the reporting could use custom date ranges.", False),
    (5, Role.DEVELOPER, "Too many clicks to change an issue's status. The workflow editor is confusing.", False),
    (9, Role.OPERATIONS, "Reliable, and support answered within the hour.", False),
    (10, Role.DEVELOPER, "", False),
    (7, Role.DESIGNER, "Nice, but I miss a Figma embed in issue descriptions.", False),
    (4, Role.TEAM_LEAD, "Missing an export to CSV of the time tracking, we need it every month.", True),
    (9, Role.DEVELOPER, "Clean API and good docs.", False),
    (8, Role.OTHER, "", False),
    (10, Role.PRODUCT_MANAGER, "Everyone on the team actually uses it, which says a lot.", True),
    (6, Role.DEVELOPER, "The mobile app crashes when I open an issue with many images.", False),
]
TENURES = (20, 35, 60, 95, 150, 240, 400)  # days in Acme when they answered


class Command(BaseCommand):
    help = "Create demo NPS answers from Acme's members over the last three months (never in production)."

    def handle(self, *args, **options):
        if settings.PRODUCTION:
            raise CommandError("feedback_demo never runs in production.")
        users = {user.email: user for user in User.objects.filter(email__in=[STAFF, DANA, SAM])}
        organization = Organization.objects.filter(memberships__user__email=DANA, memberships__role="admin").first()
        if len(users) < 3 or organization is None or not Product.objects.filter(code="tracker").exists():
            self.stderr.write(
                "The demo accounts are missing: run `python manage.py catalog_sync` and "
                "`python manage.py demo_data` first. Nothing created."
            )
            return
        respondents = [users[DANA], users[SAM], *self._extra_members(organization)]
        # The answers keep their authors' use of Tracker in the 30 days before them, so the
        # people's activity is sent first (idempotent: demo_data runs it again later).
        call_command("activity_demo", stdout=self.stdout, stderr=self.stderr)
        plan = self._plan(len(respondents))
        answered = set(Response.objects.filter(organization=organization).values_list("user_id", flat=True))
        pending = [(user, item) for user, item in zip(respondents, plan, strict=False) if user.pk not in answered]
        if pending:
            # Demo data: Acme must be older than its members' tenure; its creation date is moved back.
            founded = min(moment - timedelta(days=tenure) for _, (moment, tenure, _) in pending) - timedelta(days=30)
            Organization.objects.filter(pk=organization.pk, created_at__gt=founded).update(created_at=founded)
            organization.refresh_from_db(fields=["created_at"])
        made, refused = 0, {}
        for user, (submitted_at, tenure, (score, role, comment, may_contact)) in pending:
            reason = self._answer(organization, user, submitted_at, tenure, score, role, comment, may_contact)
            if reason:
                refused[reason] = refused.get(reason, 0) + 1
            else:
                made += 1
        total = Response.objects.filter(organization=organization).count()
        self.stdout.write(
            f"Feedback demo: {made} NPS answers added, {total} in Acme; "
            f"{len(respondents) - 2} extra members demo-user-N@acme.example (password {DEMO_PASSWORD}). "
            "/app/feedback/ (as dana), /staff/feedback/"
        )
        if refused:
            self.stderr.write(f"Not asked (feedback rules): {refused}")

    @transaction.atomic
    def _extra_members(self, organization: Organization) -> list[User]:
        """demo-user-N@acme.example, members of Acme, within its seat limit (as demo_data adds sam)."""
        organization = organization_lock(organization)
        members = []
        for number in range(1, EXTRA_MEMBERS + 1):
            email = f"demo-user-{number}@acme.example"
            user = User.objects.filter(email=email).first()
            if user is None:
                user = demo_user_create(email)
            EmailAddress.objects.get_or_create(user=user, email=email, defaults={"verified": True, "primary": True})
            if not Membership.objects.filter(organization=organization, user=user).exists():
                try:
                    seat_limit_enforce(organization, seats_in_use(organization=organization), 1)
                except FlywheelError as refusal:
                    self.stderr.write(f"Stopped adding demo members: {refusal.message}")
                    break
                Membership.objects.create(organization=organization, user=user, source=Membership.Source.STAFF)
            members.append(user)
        return members

    def _plan(self, count: int) -> list:
        """(submitted_at, tenure days, answer) per respondent: PER_MONTH answers in each of the
        last three UTC months, at random but reproducible moments up to now."""
        rng = random.Random(2026)  # noqa: S311 - demo data, not security
        now = timezone.now()
        this_month = month_of(now)
        moments = []
        for back, wanted in zip((2, 1, 0), PER_MONTH, strict=True):
            first = months_back(this_month, back)
            start = datetime(first.year, first.month, 1, tzinfo=UTC)
            nxt = months_back(this_month, back - 1)
            end = min(datetime(nxt.year, nxt.month, 1, tzinfo=UTC), now)
            span = max((end - start).total_seconds() - 3600, 60)
            moments += sorted(start + timedelta(seconds=rng.uniform(0, span)) for _ in range(wanted))
        answers = [ANSWERS[index % len(ANSWERS)] for index in range(len(moments))]
        rng.shuffle(answers)
        tenures = [rng.choice(TENURES) for _ in moments]
        return list(zip(moments, tenures, answers, strict=True))[:count]

    @transaction.atomic
    def _answer(self, organization, user, submitted_at, tenure, score, role, comment, may_contact) -> str:
        """Ask and answer through the services, then date it back; returns why it was not asked."""
        joined = submitted_at - timedelta(days=tenure)
        # Demo data: the member must have joined long enough ago to be asked at all
        # (FEEDBACK_MIN_TENURE_DAYS), so their join date is moved back first.
        Membership.objects.filter(organization=organization, user=user, created_at__gt=joined).update(created_at=joined)
        membership = Membership.objects.select_related("organization", "user").get(organization=organization, user=user)
        decision = survey_decide(membership=membership, product_code="tracker")
        if not decision.ask:
            return decision.reason
        response, _ = response_submit(
            membership=membership,
            survey_public_id=decision.survey.public_id,
            score=score,
            role=role,
            comment=comment,
            may_contact=may_contact,
        )
        # Demo data: the services stamp timezone.now(); the answer is moved to its demo moment
        # afterwards with plain updates (no time machine), with the snapshot's day counts to
        # match. The analytics events keep their real time.
        Survey.objects.filter(pk=response.survey_id).update(
            asked_at=submitted_at - timedelta(minutes=3), closed_at=submitted_at
        )
        usage = person_usage_before(
            user_id=user.pk, organization_id=organization.pk, product_id=response.product_id, day=submitted_at.date()
        )
        Response.objects.filter(pk=response.pk).update(
            submitted_at=submitted_at,
            month=month_of(submitted_at),
            tenure_days=tenure,
            organization_age_days=max((submitted_at - organization.created_at).days, 0),
            active_days=usage.active_days,
            usage_state=usage.state,
        )
        SurveyState.objects.filter(user=user).update(
            last_asked_at=submitted_at - timedelta(minutes=3), last_responded_at=submitted_at
        )
        FollowUp.objects.filter(response=response).update(created_at=submitted_at)
        return ""
