"""Demo data for `make run`: a staff account and a customer organization on a trial, then the
other apps' demo data (`onboarding_demo`, `community_demo`, `feedback_demo`, `inproduct_demo`) in the
same process.

One process, not four: each command paid Django's start-up again (2 to 4 s of CPU), and `make
run` waited for all of them. `--only-accounts` makes the accounts alone; the other commands still
run on their own. Every demo password is the hash of DEMO_PASSWORD made once per process
(`demo_password_hash`): PBKDF2 at Django's 1,000,000 iterations costs about half a second per
hash, and forty-one demo users took most of `make run`'s wait.

Idempotent: running it again changes nothing. Refuses to run when FLYWHEEL_ENV=production.
"""

from functools import cache

from allauth.account.models import EmailAddress
from django.conf import settings
from django.contrib.auth.hashers import make_password
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from accounts.models import Membership, Organization, User
from accounts.services import invite_create, organization_create_for_signup, user_signup_record

DEMO_PASSWORD = "flywheel-demo"  # noqa: S105 - printed for the local demo, never in production
# The other apps' demo commands, run after the accounts they build on.
DEMO_COMMANDS = ("onboarding_demo", "community_demo", "feedback_demo", "inproduct_demo", "addons_demo", "partners_demo", "activity_demo")


@cache
def demo_password_hash() -> str:
    """DEMO_PASSWORD hashed once for this process and given to every demo user: they then share
    a salt, which matters nowhere but here (the password is printed for everyone to read)."""
    return make_password(DEMO_PASSWORD)


def demo_user_create(email: str, **extra: object) -> User:
    """A user whose password is DEMO_PASSWORD, without hashing it again."""
    user = User.objects.create_user(email=email, password=None, **extra)
    user.password = demo_password_hash()
    user.save(update_fields=["password"])
    return user


def demo_user_ensure(email: str, name: str) -> User:
    """The demo user with this email (made with DEMO_PASSWORD and `name` when missing), its
    address verified, so it signs in at once. For the apps' demo commands."""
    user = User.objects.filter(email=email).first()
    if user is None:
        first, _, last = name.partition(" ")
        user = demo_user_create(email, first_name=first, last_name=last)
    EmailAddress.objects.get_or_create(user=user, email=email, defaults={"verified": True, "primary": True})
    return user


class Command(BaseCommand):
    help = "Create demo accounts and an organization on a trial (never in production)."

    def _user(self, email: str, *, staff: bool = False) -> User:
        user = User.objects.filter(email=email).first()
        if user is None:
            user = demo_user_create(email, is_staff=staff, is_superuser=staff)
        EmailAddress.objects.get_or_create(user=user, email=email, defaults={"verified": True, "primary": True})
        return user

    def add_arguments(self, parser):
        parser.add_argument(
            "--only-accounts", action="store_true", help=f"make the accounts only, not {', '.join(DEMO_COMMANDS)}"
        )

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
        if not options["only_accounts"]:
            for command in DEMO_COMMANDS:
                call_command(command, stdout=self.stdout, stderr=self.stderr)
