"""Demo data for the in-product kit in `make run`: three organizations whose people see, in the
demo product, each kind of kit message a newcomer should meet (docs/in-product.md):

| account | organization | what the kit shows |
|---|---|---|
| gina@globex.example (admin), gus@globex.example | Globex, Tracker Standard trial, 3 days left | the trial-ending prompt |
| ian@initech.example (admin) | Initech, Tracker Free, 10 of 10 seats taken | the seat-limit prompt |
| uma@umbrella.example (admin), otto@umbrella.example | Umbrella, Wiki Free, members for 30 days | the NPS survey |

It also loads the invite-nudge experiment (inproduct/nudges.py), as `invite_nudge_load` does,
so that admins meet the invite nudges in `make run` too.

Each organization is made through the signup services (its trial, its workspace), and the
workspace is provisioned here rather than by the worker, so it opens as soon as `make run`
is up. What the scenario needs that no service does is set directly, as demo data: the
trial's end moved to 3 days from now (again at each run, so the prompt is there whichever day
`make run` starts), the memberships' start moved back past FEEDBACK_MIN_TENURE_DAYS.

Idempotent; never in production. Run `demo_data --only-accounts` (or `demo_data`) first:
it makes the catalog's demo password hash this reuses.
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone

from accounts.management.commands.demo_data import DEMO_PASSWORD, demo_user_ensure
from accounts.models import Membership, Organization, User
from accounts.services import organization_create_for_signup, user_signup_record
from billing.models import Subscription
from catalog.models import Product
from inproduct.nudges import EXPERIMENT_KEY, experiment_ensure
from provisioning.models import Environment
from provisioning.services import environment_provision

TRIAL_DAYS_LEFT = 3
SURVEY_TENURE_DAYS = 30
SEATS = 10  # Tracker Free's seat limit (catalog.toml)


class Command(BaseCommand):
    help = "Create the organizations whose people see a trial-ending prompt, a seat-limit prompt and the survey in the demo product (never in production)."

    def handle(self, *args, **options):
        if settings.PRODUCTION:
            raise CommandError("inproduct_demo never runs in production.")
        if not Product.objects.filter(code="tracker").exists():
            self.stderr.write("The catalog is empty: run `python manage.py catalog_sync` first. Nothing created.")
            return
        globex = self._organization("gina@globex.example", "Gina Park", "Globex", "tracker", "standard")
        self._member(globex, "gus@globex.example", "Gus Meyer")
        self._trial_ends_soon(globex)
        initech = self._organization("ian@initech.example", "Ian Novak", "Initech", "tracker", "free")
        for number in range(1, SEATS):
            self._member(initech, f"initech-user-{number}@initech.example", "")
        umbrella = self._organization("uma@umbrella.example", "Uma Reyes", "Umbrella", "wiki", "free")
        self._member(umbrella, "otto@umbrella.example", "Otto Lind")
        self._tenure(umbrella)
        for organization in (globex, initech, umbrella):
            self._workspaces_ready(organization)
        # The invite nudges' experiment, as staff would load it (manage.py invite_nudge_load).
        experiment_ensure()
        self.stdout.write(
            f"In-product demo (password {DEMO_PASSWORD}): sign in, open the workspace from /app/; it opens in the "
            f"demo product at {settings.DEMO_PRODUCT_URL}/ with the kit:\n"
            f"  gina@globex.example       admin of Globex: Tracker's trial ends in {TRIAL_DAYS_LEFT} days (trial-ending prompt)\n"
            "  gus@globex.example        member of Globex: the same prompt, with \"Ask an admin\"\n"
            f"  ian@initech.example       admin of Initech: all {SEATS} seats of Tracker Free are taken (seat-limit prompt)\n"
            "  uma@umbrella.example      admin of Umbrella: the NPS survey in Wiki (otto@umbrella.example too)\n"
            f"  and the experiment {EXPERIMENT_KEY} (invite nudges for admins): /staff/experiments/{EXPERIMENT_KEY}/"
        )

    def _user(self, email: str, name: str) -> User:
        return demo_user_ensure(email, name)

    @transaction.atomic
    def _organization(self, email: str, name: str, organization_name: str, product: str, edition: str) -> Organization:
        admin = self._user(email, name)
        started = Membership.objects.filter(user=admin, source=Membership.Source.SIGNUP).select_related("organization").first()
        if started is not None:
            return started.organization
        user_signup_record(user=admin, product_code=product, edition_code=edition, organization_name=organization_name)
        return organization_create_for_signup(user=admin)

    @transaction.atomic
    def _member(self, organization: Organization, email: str, name: str) -> None:
        user = self._user(email, name)
        Membership.objects.get_or_create(organization=organization, user=user, defaults={"source": Membership.Source.STAFF})

    def _trial_ends_soon(self, organization: Organization) -> None:
        # Demo data: the trial's end moved to just under TRIAL_DAYS_LEFT days from now, at each run.
        Subscription.objects.filter(
            organization=organization, product__code="tracker", status=Subscription.Status.TRIALING
        ).update(trial_ends_at=timezone.now() + timedelta(days=TRIAL_DAYS_LEFT, hours=-1))

    def _tenure(self, organization: Organization) -> None:
        # Demo data: members since SURVEY_TENURE_DAYS ago, so feedback's tenure rule lets the survey ask.
        since = timezone.now() - timedelta(days=SURVEY_TENURE_DAYS)
        Organization.objects.filter(pk=organization.pk, created_at__gt=since).update(created_at=since)
        Membership.objects.filter(organization=organization, created_at__gt=since).update(created_at=since)

    def _workspaces_ready(self, organization: Organization) -> None:
        for environment in Environment.objects.filter(organization=organization).exclude(status=Environment.Status.ACTIVE):
            environment_provision(environment_id=environment.pk)
