"""Demo data for `make run`: a three-step welcome sequence and the running experiment that
chooses it (docs/onboarding.md, docs/experiments.md).

Idempotent: the sequence and the experiment are created when missing and then left as they are
(staff may have edited them in the admin). Refuses to run in production. Run `demo_data` first.
"""

from datetime import timedelta

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from accounts.models import User
from experiments.models import Experiment
from experiments.services import definitions_load
from onboarding.models import Sequence, Step

DEMO_EMAILS = ("staff@flywheel.localhost", "dana@acme.example", "sam@acme.example")  # made by demo_data
SEQUENCE_KEY = "trial-welcome"
FOOTER_HTML = '<p style="color:#666">The Flywheel team</p>'

STEPS = [
    {
        "name": "Welcome",
        "delay": timedelta(hours=0),
        "skip_condition": Step.SkipCondition.NONE,
        "subject": "Welcome to {{ product }}, {{ first_name }}",
        "text_body": (
            "Hi {{ first_name }},\n\n"
            "Your {{ product }} {{ edition }} trial for {{ organization_name }} is ready"
            "{% if trial_ends_at %} and runs until {{ trial_ends_at|date:'j F' }}{% endif %}.\n\n"
            "Start here: {{ app_url }}\n\n"
            "The Flywheel team"
        ),
        "html_body": (
            "<p>Hi {{ first_name }},</p>"
            "<p>Your {{ product }} {{ edition }} trial for {{ organization_name }} is ready"
            "{% if trial_ends_at %} and runs until {{ trial_ends_at|date:'j F' }}{% endif %}.</p>"
            '<p><a href="{{ app_url }}">Open your workspace</a></p>' + FOOTER_HTML
        ),
    },
    {
        "name": "Invite your team",
        "delay": timedelta(days=2),
        "skip_condition": Step.SkipCondition.INVITED_COLLEAGUE,
        "subject": "{{ product }} works better with your team",
        "text_body": (
            "Hi {{ first_name }},\n\n"
            "Teams that invite a colleague in their first week get far more out of {{ product }}. "
            "It takes a minute: {{ invite_url }}\n\n"
            "The Flywheel team"
        ),
        "html_body": (
            "<p>Hi {{ first_name }},</p>"
            "<p>Teams that invite a colleague in their first week get far more out of {{ product }}. "
            "It takes a minute.</p>"
            '<p><a href="{{ invite_url }}">Invite your team</a></p>' + FOOTER_HTML
        ),
    },
    {
        "name": "Before your trial ends",
        "delay": timedelta(days=5),
        "skip_condition": Step.SkipCondition.PAID,
        "subject": "Your {{ product }} trial: what's next",
        "text_body": (
            "Hi {{ first_name }},\n\n"
            "Your trial{% if trial_ends_at %} ends on {{ trial_ends_at|date:'j F' }}{% else %} ends soon{% endif %}. "
            "Keep everything {{ organization_name }} set up by choosing a plan: {{ billing_url }}\n\n"
            "The Flywheel team"
        ),
        "html_body": (
            "<p>Hi {{ first_name }},</p>"
            "<p>Your trial{% if trial_ends_at %} ends on {{ trial_ends_at|date:'j F' }}{% else %} ends soon{% endif %}. "
            "Keep everything {{ organization_name }} set up by choosing a plan.</p>"
            '<p><a href="{{ billing_url }}">Choose a plan</a></p>' + FOOTER_HTML
        ),
    },
]


class Command(BaseCommand):
    help = "Create a demo welcome sequence and the onboarding experiment (never in production)."

    def handle(self, *args, **options):
        if settings.PRODUCTION:
            raise CommandError("onboarding_demo never runs in production.")
        if User.objects.filter(email__in=DEMO_EMAILS).count() < len(DEMO_EMAILS):
            self.stderr.write("The demo accounts are missing: run `python manage.py demo_data` first. Nothing created.")
            return
        experiment_key = settings.ONBOARDING_EXPERIMENT_KEY
        with transaction.atomic():
            sequence, created = Sequence.objects.get_or_create(
                key=SEQUENCE_KEY,
                defaults={
                    "name": "Trial welcome (demo)",
                    "description": "Welcome, invite your team, before the trial ends.",
                },
            )
            if created:
                for position, fields in enumerate(STEPS):
                    step = Step(sequence=sequence, position=position, delay_from=Step.DelayFrom.ENROLMENT, **fields)
                    step.full_clean()  # the templates must compile, as the admin checks
                    step.save()
            if not Experiment.objects.filter(key=experiment_key).exists():
                # The experiments app's own loader (as `experiments_load` uses it): the control
                # variant names the sequence by key, the holdout gets no email at all.
                definitions_load(
                    data={
                        "experiments": [
                            {
                                "key": experiment_key,
                                "name": "Onboarding: welcome sequence vs no email",
                                "description": "Demo: does the welcome sequence turn more trials into customers?",
                                "status": Experiment.Status.RUNNING,
                                "hash_attribute": Experiment.HashAttribute.USER,
                                "activation_events": ["invite_sent", "environment_active"],
                                "variations": [
                                    {"key": "control", "name": "Welcome sequence", "weight": 0.8, "value": SEQUENCE_KEY},
                                    {"key": "holdout", "name": "No email", "weight": 0.2, "holdout": True},
                                ],
                            }
                        ]
                    }
                )
        steps = sequence.steps.count()
        self.stdout.write(
            f"Onboarding demo: sequence {SEQUENCE_KEY} ({steps} steps) chosen by experiment {experiment_key} "
            "(control: the sequence, holdout: no email). /admin/onboarding/, /staff/experiments/"
        )
