"""Demo data for add-ons in `make run` (docs/billing.md#add-ons): an organization that can buy
Premium support, the GitHub integration and a training pack with one click, and a question
whose promised reply time Premium support shortens.

| account | organization | what to try |
|---|---|---|
| hana@hooli.example (admin), hugo@hooli.example | Hooli, Tracker Standard paid monthly, on purchase-order terms | Billing → Add-ons: buy Premium support (the open question's reply time moves from 24 to 8 business hours), a training pack (then Training → assign Hugo) |

Hooli pays by purchase order, so a purchase in `make run` needs no card: the add-on is invoiced
to its PO on net terms and granted at once. (A card purchase needs the local Stripe's card
form; dana@acme.example can take that path.)

It lives in the community app because it asks a question, and the community sits above billing.
The organization is made through the signup services; what no service does (a trial turned
into a paid month without a payment, purchase-order terms accepted by staff) is set directly,
as demo data. Idempotent; never in production. Run `demo_data --only-accounts` first.
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
from billing.models import BillingAccount, Subscription
from billing.pricing import period_end_after
from billing.services.billing_account import billing_account_of
from catalog.models import Product
from community.defaults import community_defaults_ensure
from community.exceptions import RateLimited
from community.models import Question
from community.services.posts import question_ask
from provisioning.models import Environment
from provisioning.services import environment_provision

ADMIN, MEMBER = "hana@hooli.example", "hugo@hooli.example"
SEATS = 5
PO_NUMBER = "PO-4471"
QUESTION = (
    "Can a card's due date follow the end of its sprint?",
    "We plan in two-week sprints. When a card moves to the next sprint its due date stays on the "
    "old one, so our overdue report fills up with cards that are not late at all. Is there a way "
    "to make the due date follow the sprint, or to leave sprint cards out of the overdue report?",
    ["sprints", "due-dates"],
)


class Command(BaseCommand):
    help = "Create Hooli, a paid Tracker Standard organization on purchase-order terms that can buy add-ons in one click (never in production)."

    def handle(self, *args, **options):
        if settings.PRODUCTION:
            raise CommandError("addons_demo never runs in production.")
        if not Product.objects.filter(code="tracker").exists():
            self.stderr.write("The catalog is empty: run `python manage.py catalog_sync` first. Nothing created.")
            return
        community_defaults_ensure()
        hooli = self._organization()
        member = self._user(MEMBER, "Hugo Lam")
        Membership.objects.get_or_create(organization=hooli, user=member, defaults={"source": Membership.Source.STAFF})
        self._paid_on_purchase_order(hooli)
        for environment in Environment.objects.filter(organization=hooli).exclude(status=Environment.Status.ACTIVE):
            environment_provision(environment_id=environment.pk)
        self._question(hooli)
        self.stdout.write(
            f"Add-ons demo (password {DEMO_PASSWORD}):\n"
            f"  {ADMIN}        admin of Hooli: Tracker Standard, paid monthly on PO {PO_NUMBER}. Billing → Add-ons:\n"
            "                            buy Premium support (the open question's reply time shortens) or a training pack\n"
            f"  {MEMBER}        member of Hooli: a colleague to assign to a course"
        )

    def _user(self, email: str, name: str) -> User:
        return demo_user_ensure(email, name)

    @transaction.atomic
    def _organization(self) -> Organization:
        admin = self._user(ADMIN, "Hana Ito")
        started = Membership.objects.filter(user=admin, source=Membership.Source.SIGNUP).select_related("organization").first()
        if started is not None:
            return started.organization
        user_signup_record(user=admin, product_code="tracker", edition_code="standard", organization_name="Hooli")
        return organization_create_for_signup(user=admin)

    @transaction.atomic
    def _paid_on_purchase_order(self, organization: Organization) -> None:
        # Demo data: the signup trial turned into a paid month (started 10 days ago), and the
        # purchase-order terms staff would accept (docs/billing.md#purchase-orders).
        subscription = Subscription.objects.select_related("edition").get(
            organization=organization, product__code="tracker"
        )
        if subscription.status == Subscription.Status.TRIALING:
            start = timezone.now() - timedelta(days=10)
            subscription.status = Subscription.Status.ACTIVE
            subscription.trial_ends_at = None
            subscription.interval = Subscription.Interval.MONTH
            subscription.seat_limit = SEATS
            subscription.current_period_start = start
            subscription.current_period_end = period_end_after(start, Subscription.Interval.MONTH)
            subscription.save()
        account = billing_account_of(organization)
        if account.collection_method != BillingAccount.Collection.INVOICE:
            account.collection_method = BillingAccount.Collection.INVOICE
            account.po_number = PO_NUMBER
            account.net_terms_days = 30
            account.legal_name = "Hooli Inc."
            account.billing_email = "accounts@hooli.example"
            account.save()

    def _question(self, organization: Organization) -> None:
        admin = User.objects.get(email=ADMIN)
        title, body, tags = QUESTION
        if Question.objects.filter(author=admin, title=title).exists():
            return
        try:
            question_ask(
                author=admin,
                organization=organization,
                product=Product.objects.get(code="tracker"),
                title=title,
                body=body,
                tags=tags,
            )
        except RateLimited as refusal:
            self.stderr.write(f"Hooli's question was not asked: {refusal}")
