"""Demo data for `make run`: the support desk set up, and three questions in the community
forum asked and answered by Acme's demo members (docs/community.md).

Idempotent: a question is recognised by its author and title, an answer by its author and
question; nothing is posted twice. Every post goes through community.services, so the rate
limits, the clock and the reputation are those of real posts. Refuses to run in production.
Run `demo_data` first.
"""

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from accounts.models import Organization, User
from catalog.models import Product
from community.defaults import community_defaults_ensure
from community.exceptions import RateLimited
from community.models import Answer, Question, SupportEngineer
from community.services.escalations import support_engineer_set
from community.services.posts import answer_post, question_ask
from community.services.votes import answer_accept

STAFF, DANA, SAM = "staff@flywheel.localhost", "dana@acme.example", "sam@acme.example"  # made by demo_data

# (asker, title, body, tags, answers as (author, body), whether the asker accepts the first answer)
QUESTIONS = [
    (
        DANA,
        "How do I move an issue to another project without losing its history?",
        "We split our *Platform* project in two and need to move about forty open issues to the new "
        "one. Is there a way to move them in bulk so that comments, attachments and the activity "
        "history come along? Copying them by hand would lose the links from our pull requests.",
        ["issues", "projects", "bulk-edit"],
        [
            (
                SAM,
                "Select the issues in the list view (shift-click to select a range), then **Bulk edit → "
                "Move to project**. Comments, attachments and history move with each issue, and the old "
                "issue keys keep redirecting to the new ones, so links from pull requests still work.\n\n"
                "One catch: custom fields that do not exist in the target project are dropped, so add "
                "them there first.",
            )
        ],
        True,
    ),
    (
        SAM,
        "Can a saved filter be shared with the whole team?",
        "I built a filter for *open bugs assigned to the mobile squad, sorted by priority* and would "
        "like everyone on the team to see it in their sidebar. Right now it only shows up for me. "
        "Is there a sharing setting I am missing?",
        ["filters", "sharing"],
        [
            (
                DANA,
                "Open the filter, click the **⋯** menu and choose **Share**. You can share it with the "
                "whole organization or with specific people; shared filters appear under *Team filters* "
                "in everyone's sidebar. Only the owner (or an admin) can change it afterwards.",
            )
        ],
        False,
    ),
    (
        SAM,
        "Webhook deliveries fail with 401 after rotating our signing secret",
        "Since we rotated the webhook signing secret yesterday, every delivery to our endpoint is "
        "rejected with `401 Unauthorized`. We updated the secret in our receiver and restarted it. "
        "Does Tracker keep signing with the old secret for a while, or is something cached on your side?",
        ["webhooks", "api", "security"],
        [],
        False,
    ),
]


class Command(BaseCommand):
    help = "Create demo community questions and answers and a support engineer (never in production)."

    def handle(self, *args, **options):
        if settings.PRODUCTION:
            raise CommandError("community_demo never runs in production.")
        users = {user.email: user for user in User.objects.filter(email__in=[STAFF, DANA, SAM])}
        organization = Organization.objects.filter(memberships__user__email=DANA, memberships__role="admin").first()
        product = Product.objects.filter(code="tracker").first()
        if len(users) < 3 or organization is None or product is None:
            self.stderr.write(
                "The demo accounts are missing: run `python manage.py catalog_sync` and "
                "`python manage.py demo_data` first. Nothing created."
            )
            return
        created = community_defaults_ensure()
        engineer = SupportEngineer.objects.filter(user=users[STAFF]).first()
        if engineer is None or not engineer.on_duty:
            # Keep what staff set (cap, lead) if the row exists; the only engineer is the lead.
            support_engineer_set(
                user=users[STAFF],
                on_duty=True,
                cap=engineer.cap if engineer else 10,
                is_lead=engineer.is_lead if engineer else True,
            )
        posted = 0
        try:
            for asker, title, body, tags, answers, accept in QUESTIONS:
                posted += self._question(users, organization, product, asker, title, body, tags, answers, accept)
        except RateLimited as refusal:
            # Dana and Sam are new accounts (5 posts an hour); a fresh database needs 5 posts
            # in all, so this only happens when they posted by hand within the hour.
            raise CommandError(
                f"The community refused a demo post: {refusal.message} Run community_demo again in an hour."
            ) from refusal
        self.stdout.write(
            f"Community demo: {created} default calendar/policies created, {posted} posts made; "
            f"{STAFF} is a support engineer on duty. /community/, /staff/community/queue/"
        )

    @transaction.atomic
    def _question(self, users, organization, product, asker, title, body, tags, answers, accept) -> int:
        posted = 0
        question = Question.objects.filter(author=users[asker], title=title).first()
        if question is None:
            question = question_ask(
                author=users[asker], organization=organization, product=product, title=title, body=body, tags=tags
            )
            posted += 1
        first = None
        for author, text in answers:
            answer = Answer.objects.filter(question=question, author=users[author], is_deleted=False).first()
            if answer is None:
                answer = answer_post(question_id=question.pk, author=users[author], body=text)
                posted += 1
            first = first or answer
        if accept and first is not None and question.accepted_answer_id is None:
            answer_accept(user=users[asker], answer_id=first.pk)
        return posted
