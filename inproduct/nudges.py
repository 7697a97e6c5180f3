"""The invite nudge: "invite your colleagues", an A/B test of its copy, its moment and its
channel, as the GrowthBook experiment `invite-nudge` (docs/in-product.md, "The invite-nudge
experiment").

Only admins can invite (accounts.services.invite_create), so only admins are nudged, and only
admins are exposed: a member never enters the experiment. An admin is exposed the first time
the nudge's turn comes in a kit session (nothing of higher priority was due), whatever their
variation then does, so every arm's exposure happens at the same point and the holdout is a
fair baseline. Each variation's value says:

    {"channel": "in_product" | "email",
     "moment": "days_active" | "first_success", "days": 3,
     "title": "...", "body": "...", "cta_label": "..."}      ({product} and {organization} filled in)

- moment `days_active`: once the admin had kit sessions on `days` distinct (UTC) days;
  `first_success`: once any product reported a success for them (`element.track(name)`);
- channel `in_product`: the kit shows it (a marketing message: it takes a slot of the shared
  frequency cap); `email`: one email instead, through the same cap, once per person ever.

What it is judged on: the experiment's activation events `invite_sent` and `invitee_joined`
(recorded for the inviter when an invite they sent is accepted), per exposed admin, in the
experiments app's existing analysis.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db import IntegrityError, transaction
from django.db.models.functions import TruncDate
from django.template.loader import render_to_string
from django.urls import reverse

from accounts.mail import email_subject, mail_queue
from accounts.models import Organization
from experiments.models import Experiment, Exposure
from experiments.services import definitions_load, event_record, experiment_assign
from onboarding.services.suppression import marketing_email_claim, unsubscribe_url

from . import events
from .caller import KitCaller
from .models import InviteNudgeEmail, KitSession, ProductSuccess

logger = logging.getLogger(__name__)

EXPERIMENT_KEY = "invite-nudge"
OFFER = "nudge:invite"
IN_PRODUCT = "in_product"
EMAIL = "email"
DAYS_ACTIVE = "days_active"
FIRST_SUCCESS = "first_success"
# A closed nudge (dismissed or followed) comes back after this long.
SNOOZE = timedelta(days=30)

DEFAULT_COPY = {
    "title": "Invite your colleagues to {product}",
    "body": "{product} works better with your team. Invite colleagues to {organization}: they get "
    "an email and join in one click, on a free seat of your plan.",
    "cta_label": "Invite colleagues",
}

# What `manage.py invite_nudge_load` loads (experiments.services.definitions_load): a holdout and
# three treatments. Staff change weights, copy and status in the admin afterwards.
DEFINITION: dict[str, Any] = {
    "key": EXPERIMENT_KEY,
    "name": "Invite nudge: copy, moment and channel",
    "description": "Does nudging admins to invite colleagues (in the product, or by email; after a few "
    "active days, or after a first success) make more of them invite, and more invitees join?",
    "status": Experiment.Status.RUNNING,
    "hash_attribute": Experiment.HashAttribute.USER,
    "activation_events": ["invite_sent", "invitee_joined"],
    "minimum_sample": 100,
    "variations": [
        {"key": "holdout", "name": "No nudge", "weight": 0.25, "holdout": True},
        {
            "key": "in-product-3-days",
            "name": "In the product, after 3 active days",
            "weight": 0.25,
            "value": {"channel": IN_PRODUCT, "moment": DAYS_ACTIVE, "days": 3, **DEFAULT_COPY},
        },
        {
            "key": "in-product-first-success",
            "name": "In the product, after a first success",
            "weight": 0.25,
            "value": {
                "channel": IN_PRODUCT,
                "moment": FIRST_SUCCESS,
                "title": "Nice work! Bring your team in",
                "body": "Invite colleagues to {organization} so they can see and build on what you "
                "do in {product}.",
                "cta_label": "Invite colleagues",
            },
        },
        {
            "key": "email-3-days",
            "name": "By email, after 3 active days",
            "weight": 0.25,
            "value": {"channel": EMAIL, "moment": DAYS_ACTIVE, "days": 3, **DEFAULT_COPY},
        },
    ],
}


def experiment_ensure(*, replace: bool = False) -> bool:
    """Create the invite-nudge experiment as DEFINITION says, through the experiments app's own
    loader; True when it was loaded. An existing one is left as staff set it unless `replace`."""
    if not replace and Experiment.objects.filter(key=EXPERIMENT_KEY).exists():
        return False
    definitions_load(data={"experiments": [DEFINITION]})
    return True


@dataclass(frozen=True)
class NudgePlan:
    """What the admin's variation does: when, where, and with which words (filled in)."""

    variation_key: str
    channel: str
    moment: str
    days: int
    title: str
    body: str
    cta_label: str


def invite_url(*, organization: Organization) -> str:
    """The members page's invite form, naming the organization the nudge is about (its admin may
    be working in another one on Flywheel)."""
    return f"{settings.SITE_URL}{reverse('members')}?organization={organization.public_id}#invite-form"


def _fill(template: str, context: dict[str, str], fallback: str) -> str:
    try:
        return template.format_map(context)
    except (KeyError, ValueError, IndexError, AttributeError):
        logger.warning("invite-nudge copy %r does not fit; default copy used", template)
        return fallback.format_map(context)


def plan_of(*, caller: KitCaller) -> NudgePlan | None:
    """The admin's nudge plan, exposing them to the experiment on the first call; None for a
    member, outside the experiment (unknown, draft, stopped before exposure, not covered), or in
    the holdout."""
    if not caller.is_admin:
        return None
    assignment = experiment_assign(
        experiment_key=EXPERIMENT_KEY, user=caller.user, organization=caller.organization
    )
    if assignment is None or assignment.holdout or not isinstance(assignment.value, dict):
        return None
    value = assignment.value
    context = {"product": caller.product.name, "organization": caller.organization.name}
    copy = {
        key: _fill(str(value.get(key) or DEFAULT_COPY[key]), context, DEFAULT_COPY[key])
        for key in DEFAULT_COPY
    }
    try:
        days = max(int(value.get("days", 3)), 1)
    except (TypeError, ValueError):
        days = 3
    return NudgePlan(
        variation_key=assignment.variation_key,
        channel=EMAIL if value.get("channel") == EMAIL else IN_PRODUCT,
        moment=FIRST_SUCCESS if value.get("moment") == FIRST_SUCCESS else DAYS_ACTIVE,
        days=days,
        **copy,
    )


def variation_of(*, caller: KitCaller) -> str:
    """The admin's variation if they were exposed already, else "" (reading never exposes)."""
    return (
        Exposure.objects.filter(experiment__key=EXPERIMENT_KEY, unit_id=str(caller.user.public_id))
        .values_list("variation_key", flat=True)
        .first()
        or ""
    )


def days_active(*, caller: KitCaller) -> int:
    """On how many distinct (UTC) days the person had kit sessions in this organization."""
    return (
        KitSession.objects.filter(user=caller.user, organization=caller.organization)
        .annotate(day=TruncDate("started_at"))
        .values("day")
        .distinct()
        .count()
    )


def moment_reached(*, caller: KitCaller, plan: NudgePlan) -> bool:
    if plan.moment == FIRST_SUCCESS:
        return ProductSuccess.objects.filter(user=caller.user, organization=caller.organization).exists()
    return days_active(caller=caller) >= plan.days


class _NotNow(Exception):
    """The marketing cap refused: the email claim is rolled back, to be tried again later."""


def email_send(*, caller: KitCaller, plan: NudgePlan) -> bool:
    """The email channel: send the admin one invite-nudge email, through the shared marketing
    frequency cap. True when it was queued now.

    Invariants: one per person and organization ever (InviteNudgeEmail's unique constraint,
    inserted before anything is sent); none to a suppressed address or over the cap, in which
    case nothing is recorded and a later visit tries again.
    """
    user, organization = caller.user, caller.organization
    if InviteNudgeEmail.objects.filter(user=user, organization=organization).exists():
        return False
    try:
        with transaction.atomic():
            try:
                with transaction.atomic():
                    InviteNudgeEmail.objects.create(
                        user=user, organization=organization, variation_key=plan.variation_key
                    )
            except IntegrityError:
                return False
            claim = marketing_email_claim(email=user.email, source="kit:invite_nudge")
            if not claim.allowed:
                raise _NotNow
            unsubscribe = unsubscribe_url(user.email)
            context = {
                "plan": plan,
                "organization": organization,
                "product": caller.product,
                "invite_url": invite_url(organization=organization),
                "unsubscribe_url": unsubscribe,
                "site_name": settings.SITE_NAME,
                "site_url": settings.SITE_URL,
            }
            message = EmailMultiAlternatives(
                subject=email_subject(plan.title),
                body=render_to_string("inproduct/email/invite_nudge.txt", context),
                # Marketing email leaves from onboarding's address, as the onboarding emails do.
                from_email=settings.ONBOARDING_FROM_EMAIL,
                to=[user.email],
                headers={"List-Unsubscribe": f"<{unsubscribe}>", "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"},
            )
            message.attach_alternative(render_to_string("inproduct/email/invite_nudge.html", context), "text/html")
            mail_queue(message)
            event_record(
                name=events.KIT_INVITE_NUDGE_EMAILED,
                user=user,
                organization=organization,
                properties={
                    "experiment": EXPERIMENT_KEY,
                    "variation": plan.variation_key,
                    "product": caller.product.code,
                    "channel": EMAIL,
                },
            )
            return True
    except _NotNow:
        return False
