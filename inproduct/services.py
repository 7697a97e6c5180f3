"""Every write the kit's message endpoints make: what the person did with a message (shown,
clicked, dismissed), the survey's answer and dismissal, asking the admins, the one-click trial,
and the products' success moments. Each records its analytics event (inproduct/events.py) in
the same transaction, and closes the session's message where the person acted on it (the
contact budget: messages.py)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db import IntegrityError, transaction
from django.db.models import F
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from accounts.mail import email_subject, mail_queue
from accounts.models import Membership
from billing.features import feature_check
from billing.formats import day
from billing.prompts import prompt_dismiss, prompt_event_record, prompts_for
from billing.services.addons import addon_trial_start
from billing.services.subscriptions import product_try
from experiments.services import event_record
from feedback import services as feedback_services
from feedback.exceptions import SurveyClosed
from feedback.models import Response, Survey
from feedback.selectors import survey_get_for_member
from provisioning.selectors import environments_of

from . import events, nudges
from .caller import KitCaller
from .exceptions import (
    AskedToday,
    DoneOnFlywheel,
    FlywheelError,
    MessageNotDue,
    PermissionDenied,
    ValidationError,
)
from .message_cache import kit_person_changed
from .messages import (
    ADMIN_NAMES_SHOWN,
    FEATURE_OFFER,
    INVITE_NUDGE,
    PROMPT,
    SURVEY,
    TRY_PRODUCT,
    MessageRef,
    admin_names,
    feature_message,
    message_ref,
)
from .models import AdminAsk, KitSession, OfferClosed, ProductSuccess

ACTIONS = {
    "shown": events.KIT_MESSAGE_SHOWN,
    "clicked": events.KIT_MESSAGE_CLICKED,
    "dismissed": events.KIT_MESSAGE_DISMISSED,
}
SUCCESS_NAME = re.compile(r"^[a-z0-9_]{1,64}$")


def _properties(caller: KitCaller, **extra: Any) -> dict[str, Any]:
    return {"channel": "kit", "in_product": caller.product.code, "session_id": str(caller.session.public_id), **extra}


def _ref_properties(caller: KitCaller, ref: MessageRef) -> dict[str, Any]:
    properties = _properties(caller, message_id=ref.id, type=ref.type, kind=ref.kind, product=ref.product)
    if ref.type == FEATURE_OFFER:
        properties["feature"] = ref.detail
        if ref.codes:
            properties["offer"] = ":".join(ref.codes)
    elif ref.codes:
        properties["products"] = list(ref.codes)
    if ref.type == INVITE_NUDGE:
        properties.update(experiment=nudges.EXPERIMENT_KEY, variation=nudges.variation_of(caller=caller))
    return properties


def session_message_close(*, session: KitSession) -> None:
    """The person acted on the session's message (followed, dismissed, answered): it is not
    shown again in this session, and nothing else is (the contact budget)."""
    closed = KitSession.objects.filter(pk=session.pk, message_closed_at__isnull=True).exclude(message_id="").update(
        message_closed_at=timezone.now()
    )
    if closed:
        kit_person_changed(user_id=session.user_id)


def _offer_close(caller: KitCaller, offer: str, action: str) -> None:
    OfferClosed.objects.update_or_create(
        user=caller.user,
        organization=caller.organization,
        offer=offer,
        defaults={"action": action, "closed_at": timezone.now()},
    )


@transaction.atomic
def message_event_record(*, caller: KitCaller, message_id: str, action: str) -> None:
    """The kit showed a message, or the person followed or dismissed it.

    Invariants: every action is a `kit_message_<action>` analytics event with the message's
    type, kind and product; a billing prompt's is also billing's own prompt event, and its
    dismissal is billing's dismissal (per stage; a suspended product cannot be dismissed);
    dismissing the survey dismisses it in feedback; a product to try or the invite nudge, once
    followed or dismissed, is snoozed (messages.py); following or dismissing closes the
    session's message, except a denied feature's offer, which is outside the budget.
    """
    if action not in ACTIONS:
        raise ValidationError(f"Unknown action {action!r}: use shown, clicked or dismissed.")
    ref = message_ref(message_id=message_id, caller=caller)
    if ref.type == PROMPT:
        if action == "dismissed":
            prompt_dismiss(membership=caller.membership, prompt=ref.detail)
        else:
            prompt_event_record(membership=caller.membership, prompt=ref.detail, action=action)
    elif ref.type == SURVEY and action == "dismissed":
        survey_dismiss(caller=caller, survey_public_id=ref.detail)
    elif ref.type == TRY_PRODUCT and action != "shown":
        for code in ref.codes:
            _offer_close(caller, f"try:{code}", action)
    elif ref.type == INVITE_NUDGE and action != "shown":
        _offer_close(caller, nudges.OFFER, action)
    event_record(
        name=ACTIONS[action], user=caller.user, organization=caller.organization, properties=_ref_properties(caller, ref)
    )
    if action != "shown" and ref.type != FEATURE_OFFER:
        session_message_close(session=caller.session)


# The survey --------------------------------------------------------------------------------------


@transaction.atomic
def survey_answer(
    *, caller: KitCaller, survey_public_id: object, score: object, role: str, comment: str = "", may_contact: bool = False
) -> tuple[Response, bool]:
    """The person's answer to the survey the kit showed, stored by feedback exactly as the API's
    answers are (feedback.services.response_submit: same validation, same context, one answer
    per survey: a retry gets the stored answer back with False)."""
    response, created = feedback_services.response_submit(
        membership=caller.membership,
        survey_public_id=survey_public_id,
        score=score,  # type: ignore[arg-type]  # response_submit refuses anything but 0..10
        role=role,
        comment=comment,
        may_contact=may_contact,
    )
    if created:
        event_record(
            name=events.KIT_SURVEY_ANSWERED,
            user=caller.user,
            organization=caller.organization,
            properties=_properties(
                caller, survey_id=str(response.survey.public_id), type=SURVEY, kind="nps", score=response.score,
                has_comment=bool(response.comment),
            ),
        )
    session_message_close(session=caller.session)
    return response, created


@transaction.atomic
def survey_dismiss(*, caller: KitCaller, survey_public_id: object) -> None:
    """The person closed the survey without answering: feedback's dismissal (its window before
    asking again). Dismissing twice, or after answering, changes nothing."""
    survey = survey_get_for_member(membership=caller.membership, survey_public_id=survey_public_id)
    if survey.status != Survey.Status.OPEN:
        session_message_close(session=caller.session)
        return
    try:
        feedback_services.survey_dismiss(membership=caller.membership, survey_public_id=survey_public_id)
    except SurveyClosed:
        return
    event_record(
        name=events.KIT_SURVEY_DISMISSED,
        user=caller.user,
        organization=caller.organization,
        properties=_properties(caller, survey_id=str(survey.public_id), type=SURVEY, kind="nps"),
    )
    session_message_close(session=caller.session)


# Asking the admins ---------------------------------------------------------------------------------


def _ask_email(*, caller: KitCaller, admin: Membership, prompt_id: str, member_title: str, member_body: str) -> None:
    """One admin's email: the prompt as an admin reads it (their copy and their action, when
    billing still has it for them), from the member who asked; replies go to the member."""
    own = next(
        (prompt for prompt in prompts_for(membership=admin, product_code=caller.product.code) if prompt.id == prompt_id),
        None,
    )
    title, body = (own.title, own.body) if own is not None else (member_title, member_body)
    _ask_email_send(
        caller=caller,
        admin=admin,
        title=title,
        body=body,
        action_label=own.cta_label if own is not None else "",
        action_url=own.cta_url if own is not None and own.cta_label else "",
    )


def _ask_email_send(
    *, caller: KitCaller, admin: Membership, title: str, body: str, action_label: str, action_url: str
) -> None:
    member = caller.user
    member_name = member.get_full_name() or member.email
    context = {
        "admin_first_name": admin.user.first_name,
        "member": member,
        "member_name": member_name,
        "organization": caller.organization,
        "product": caller.product,
        "title": title,
        "body": body,
        "action_label": action_label,
        "action_url": action_url,
        "billing_url": f"{settings.SITE_URL}{reverse('billing')}",
        "site_name": settings.SITE_NAME,
        "site_url": settings.SITE_URL,
    }
    message = EmailMultiAlternatives(
        subject=email_subject(f"{member_name} asks: {title}"),
        body=render_to_string("inproduct/email/ask_admins.txt", context),
        to=[admin.user.email],
        reply_to=[member.email],
    )
    message.attach_alternative(render_to_string("inproduct/email/ask_admins.html", context), "text/html")
    mail_queue(message)


@transaction.atomic
def admins_ask(*, caller: KitCaller, message_id: str) -> list[str]:
    """A member asks the organization's admins to act on a billing prompt the kit shows them:
    one email to each admin. Returns the admins' names.

    Invariants: only a member (an admin acts themself), only about a prompt that applies to
    them now; at most once a day per person and prompt kind (AdminAsk's unique constraint:
    AskedToday, and nothing is sent); the emails leave after commit.
    """
    if caller.is_admin:
        raise PermissionDenied(f"You are an admin of {caller.organization.name}: you can act on this yourself.")
    ref = message_ref(message_id=message_id, caller=caller)
    if ref.type == FEATURE_OFFER:
        return _admins_ask_feature(caller=caller, ref=ref)
    if ref.type != PROMPT:
        raise ValidationError("Only a billing message can be sent to the admins.")
    prompt = next(
        (
            prompt
            for prompt in prompts_for(membership=caller.membership, product_code=caller.product.code)
            if prompt.id == ref.detail
        ),
        None,
    )
    if prompt is None:
        raise MessageNotDue("This message no longer applies, so the admins were not asked: reload the page.")
    admins = _active_admins(caller)
    _ask_claim(caller=caller, kind=prompt.kind, ref=ref, product_code=prompt.product, recipients=len(admins))
    for admin in admins:
        _ask_email(caller=caller, admin=admin, prompt_id=prompt.id, member_title=prompt.title, member_body=prompt.body)
    event_record(
        name=events.KIT_ADMINS_ASKED,
        user=caller.user,
        organization=caller.organization,
        properties={**_ref_properties(caller, ref), "recipients": len(admins)},
    )
    session_message_close(session=caller.session)
    return [admin.user.get_full_name() or admin.user.email for admin in admins]


def _active_admins(caller: KitCaller) -> list[Membership]:
    admins = list(
        Membership.objects.filter(organization=caller.organization, role=Membership.Role.ADMIN, user__is_active=True)
        .select_related("user", "organization")
        .order_by("created_at", "pk")
    )
    if not admins:
        raise MessageNotDue(f"{caller.organization.name} has no admin to ask.")
    return admins


def _ask_claim(*, caller: KitCaller, kind: str, ref: MessageRef, product_code: str, recipients: int) -> None:
    """One ask a day per person, organization and kind (AdminAsk's unique constraint)."""
    now = timezone.now()
    try:
        with transaction.atomic():
            AdminAsk.objects.create(
                user=caller.user,
                organization=caller.organization,
                kind=kind,
                message_id=ref.id,
                product_code=product_code,
                day=now.date(),
                asked_at=now,
                recipients=recipients,
            )
    except IntegrityError:
        raise AskedToday() from None


@transaction.atomic
def _admins_ask_feature(*, caller: KitCaller, ref: MessageRef) -> list[str]:
    """A member asks the admins for a feature the organization lacks: each admin's email has
    the offer as an admin sees it (its price and the button to buy it)."""
    check = feature_check(organization=caller.organization, product_code=caller.product.code, feature=ref.detail)
    if check.entitled:
        raise MessageNotDue(f"{caller.organization.name} has {ref.detail} now, so the admins were not asked: reload the page.")
    admins = _active_admins(caller)
    _ask_claim(
        caller=caller, kind=f"feature:{ref.detail}"[:64], ref=ref, product_code=caller.product.code, recipients=len(admins)
    )
    shown = feature_message(caller=caller, check=check, for_admin=True)
    link = next((action for action in shown.actions if action["kind"] == "link"), None)
    offer = shown.offer
    body = f"{shown.body} {offer['name']}: {offer['price_text']}." if offer else shown.body
    for admin in admins:
        _ask_email_send(
            caller=caller,
            admin=admin,
            title=shown.title,
            body=body,
            action_label=link["label"] if link else "",
            action_url=link["url"] if link else "",
        )
    event_record(
        name=events.KIT_ADMINS_ASKED,
        user=caller.user,
        organization=caller.organization,
        properties={**_ref_properties(caller, ref), "recipients": len(admins)},
    )
    return [admin.user.get_full_name() or admin.user.email for admin in admins]


def admins_sentence(*, names: list[str], organization_name: str) -> str:
    """ "We asked Ada Lovelace and Bob Smith (admins of Acme)." Past five names, the rest are
    counted: "We asked Ada, Bob, Cy, Di, Ed and 3 other admins of Acme." """
    if len(names) == 1:
        return f"We asked {names[0]} (admin of {organization_name})."
    if len(names) > ADMIN_NAMES_SHOWN:
        return f"We asked {', '.join(names[:ADMIN_NAMES_SHOWN])} and {len(names) - ADMIN_NAMES_SHOWN} other admins of {organization_name}."
    return f"We asked {', '.join(names[:-1])} and {names[-1]} (admins of {organization_name})."


# Trying another product ------------------------------------------------------------------------------


@dataclass(frozen=True)
class TrialStarted:
    detail: str
    url: str


def trial_start(*, caller: KitCaller, product_code: str) -> TrialStarted:
    """An admin starts a trial of another product from the kit: the billing page's one-click
    trial (billing.services.subscriptions.product_try: one trial per organization and product;
    a spent trial is refused with what buying costs). Returns what to say and where the new
    workspace's status page is."""
    if not caller.is_admin:
        raise PermissionDenied(
            f"Only an admin of {caller.organization.name} can start a trial: ask {', '.join(admin_names(caller=caller)) or 'an admin'}."
        )
    with transaction.atomic():
        subscription = product_try(organization=caller.organization, actor=caller.user, product_code=(product_code or "").strip())
        event_record(
            name=events.KIT_TRIAL_STARTED,
            user=caller.user,
            organization=caller.organization,
            properties=_properties(
                caller, type=TRY_PRODUCT, kind="try", product=subscription.product.code, edition=subscription.edition.code
            ),
        )
        session_message_close(session=caller.session)
    environment = environments_of(organization=caller.organization).filter(product=subscription.product).first()
    url = (
        f"{settings.SITE_URL}{reverse('environment_status', args=[environment.public_id])}"
        if environment is not None
        else f"{settings.SITE_URL}{reverse('home')}"
    )
    days = subscription.edition.trial_days
    return TrialStarted(
        detail=f"Your {subscription.product.name} {subscription.edition.name} trial has started: "
        f"{days} day{'s' if days != 1 else ''}, free.",
        url=url,
    )


# A denied feature's add-on, tried from the kit ----------------------------------------------------


def feature_trial_start(*, caller: KitCaller, feature: str, addon_code: str) -> TrialStarted:
    """An admin starts the trial of the add-on the kit offered for `feature` (billing's add-on
    trial: once per organization and add-on, no card). Refused with a sentence when the
    feature's offers have no such add-on with a trial left; a refusal of billing's is answered
    with the add-on's page (DoneOnFlywheel), where buying it is one click."""
    if not caller.is_admin:
        raise PermissionDenied(
            f"Only an admin of {caller.organization.name} can start a trial: ask {', '.join(admin_names(caller=caller)) or 'an admin'}."
        )
    check = feature_check(organization=caller.organization, product_code=caller.product.code, feature=feature)
    if check.entitled:
        return TrialStarted(detail=f"{caller.organization.name} has {feature} already: use it now.", url="")
    offer = next((offer for offer in check.offers if offer.kind == "addon" and offer.code == addon_code), None)
    if offer is None or check.subscription is None:
        raise ValidationError(f"{caller.product.name} has no add-on {addon_code!r} that adds {feature}.")
    if offer.trial_days <= 0:
        raise DoneOnFlywheel(f"{caller.organization.name} has tried {offer.name} already: buy it on Flywheel.", url=offer.url)
    addon = check.subscription.product.addons.get(code=addon_code)
    try:
        with transaction.atomic():
            started = addon_trial_start(subscription=check.subscription, addon=addon, actor=caller.user)
            event_record(
                name=events.KIT_TRIAL_STARTED,
                user=caller.user,
                organization=caller.organization,
                properties=_properties(
                    caller, type=FEATURE_OFFER, kind="addon_trial", product=caller.product.code, feature=feature,
                    addon=addon.code,
                ),
            )
    except (DoneOnFlywheel, PermissionDenied):
        raise
    except FlywheelError as refusal:
        raise DoneOnFlywheel(refusal.message, url=offer.url) from None
    return TrialStarted(
        detail=f"Your {addon.name} trial has started: {offer.trial_days} days, free, until {day(started.trial_ends_at)}. "
        f"{feature} works now.",
        url="",
    )


# Success moments -------------------------------------------------------------------------------------


@transaction.atomic
def success_record(*, caller: KitCaller, name: str) -> bool:
    """The product reports a success moment of this person (`element.track(name)`). True the
    first time this name is reported for them in this product, which is when the `kit_success`
    analytics event is recorded (later reports only count). Feeds the invite nudge's
    `first_success` moment."""
    if not isinstance(name, str) or not SUCCESS_NAME.match(name):
        raise ValidationError("An event name is 1 to 64 lower-case letters, digits or underscores, such as first_success.")
    now = timezone.now()
    lookup = {"user": caller.user, "organization": caller.organization, "product": caller.product, "name": name}
    if ProductSuccess.objects.filter(**lookup).update(count=F("count") + 1, last_at=now):
        return False
    try:
        with transaction.atomic():
            ProductSuccess.objects.create(**lookup, first_at=now, last_at=now)
    except IntegrityError:
        ProductSuccess.objects.filter(**lookup).update(count=F("count") + 1, last_at=now)
        return False
    # The invite nudge's first_success moment may have come: the new row's receiver forgets the
    # person's kept answers (message_cache).
    event_record(
        name=events.KIT_SUCCESS,
        user=caller.user,
        organization=caller.organization,
        properties=_properties(caller, name=name, product=caller.product.code),
    )
    return True
