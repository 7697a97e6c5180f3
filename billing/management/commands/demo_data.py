"""Demo data for `make run`: a staff account and a customer organization on a trial.

Idempotent: running it again changes nothing. Refuses to run when FLYWHEEL_ENV=production.
"""

from allauth.account.models import EmailAddress
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from accounts.models import Membership, Organization, User
from accounts.services import invite_create, organization_create_for_signup, user_signup_record

DEMO_PASSWORD = "flywheel-demo"  # noqa: S105 - printed for the local demo, never in production


class Command(BaseCommand):
    help = "Create demo accounts and an organization on a trial (never in production)."

    def _user(self, email: str, *, staff: bool = False) -> User:
        user = User.objects.filter(email=email).first()
        if user is None:
            user = User.objects.create_user(email=email, password=DEMO_PASSWORD, is_staff=staff, is_superuser=staff)
        EmailAddress.objects.get_or_create(user=user, email=email, defaults={"verified": True, "primary": True})
        return user

    def handle(self, *args, **options):
        if settings.PRODUCTION:
            raise CommandError("demo_data never runs in production.")
        with transaction.atomic():
            self._user("staff@flywheel.localhost", staff=True)
            owner = self._user("dana@acme.example")
            if not Membership.objects.filter(user=owner).exists():
                user_signup_record(user=owner, product_code="tracker", edition_code="standard", organization_name="Acme")
                organization = organization_create_for_signup(user=owner)
            else:
                organization = Organization.objects.get(memberships__user=owner, memberships__role="admin")
            colleague = self._user("sam@acme.example")
            Membership.objects.get_or_create(organization=organization, user=colleague, defaults={"source": "staff"})
            if not organization.invites.exists():
                invite_create(organization=organization, actor=owner, email="alex@acme.example")
        self.stdout.write(
            f"Demo accounts (password for each: {DEMO_PASSWORD}):\n"
            "  staff@flywheel.localhost  staff: /admin/ and /staff/funnel/\n"
            "  dana@acme.example         admin of Acme (Tracker Standard trial)\n"
            "  sam@acme.example          member of Acme"
        )
