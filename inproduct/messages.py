"""The one kit message due for a person now, under the contact budget (docs/in-product.md,
"Messages and their rules").

Priority, first that applies: billing prompts (billing.prompts: its rules, stages, dismissals
and copy; most severe first) > the NPS survey (feedback's asking rules) > products to try
(admins; the billing page's list) > the invite nudge (admins; the `invite-nudge` experiment).

The budget: at most one kit message per KitSession. The first message returned in a session is
recorded on it (`message_id`, set once by a conditional UPDATE, so of two concurrent requests
one wins and both answer with the winner's message) and is the only one that session shows: on
every page load while it still applies, until the person closes it (dismissed, answered,
followed), then nothing more. A `suspended` prompt, which cannot be dismissed, shows even
after the budget is spent. Marketing messages (products to try, the invite nudge) must also
take a slot of the shared marketing frequency cap (onboarding's marketing_email_claim, source
"kit:<type>") when first shown, in the same transaction as the session's claim.

Deciding the survey records an ask (feedback.services.survey_decide), so it is decided only
when it would be the message shown, and rolled back if another request claimed the session.

A denied feature's offer (`feature_offer`, feature_message) is outside the budget: the product
asks for it when the person reaches for the feature (`element.requestFeature(name)`), it is
never claimed as the session's message, and acting on it does not close the session's message.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.db import transaction
from django.db.models import Min
from django.urls import reverse
from django.utils import timezone

from accounts.models import Membership
from billing.entitlements import entry_seconds
from billing.features import ADDON, FeatureCheck, feature_check
from billing.models import BillingAccount, Subscription
from billing.prompts import (
    CARD_EXPIRY_WARNING,
    SEAT_LIMIT_NEAR,
    SEAT_LIMIT_REACHED,
    SUSPENDED,
    TRIAL_ENDS,
    Prompt,
    prompt_id_parse,
    prompts_for,
)
from billing.selectors import products_to_try, seats_free
from catalog.models import Edition
from common.exceptions import NotFound
from feedback.models import Role, Survey, SurveyState
from feedback.reports import question_for
from feedback.services import survey_decide
from onboarding.models import MarketingSend
from onboarding.services.suppression import marketing_email_claim
from partners.selectors_customer import ManagedBy, ask_partner_path, managed_by_for_product

from . import nudges
from .caller import KitCaller
from .message_cache import cache_seconds, kit_person_changed
from .models import KitSession, OfferClosed

PROMPT = "prompt"
SURVEY = "survey"
TRY_PRODUCT = "try_product"
INVITE_NUDGE = "invite_nudge"
FEATURE_OFFER = "feature_offer"
# A product-to-try offer that was closed (dismissed, or followed without starting the trial)
# comes back after this long.
TRY_SNOOZE = timedelta(days=30)
# A member is told at most this many admins' names (by seniority in the organization).
ADMIN_NAMES_SHOWN = 5

_SURVEY_ID = re.compile(r"^survey:([0-9a-fA-F-]{36})$")
# "feature:<feature>", with the offer shown when there was one: "feature:github-sync:addon:github".
_FEATURE_ID = re.compile(r"^feature:([a-z0-9][a-z0-9_.-]{0,63})(?::(addon|edition):([a-z0-9_-]{1,64}))?$")
_TRY_ID = re.compile(r"^try:([a-z0-9_-]{1,64}(?:\+[a-z0-9_-]{1,64}){0,19})$")


@dataclass(frozen=True)
class Message:
    """One message as the kit renders it (the contract's Message JSON), with what analytics
    needs to describe it (`kind`, `product`, `properties`)."""

    id: str
    type: str
    severity: str
    title: str
    body: str
    dismissible: bool = True
    actions: list[dict[str, str]] = field(default_factory=list)
    admins: list[str] = field(default_factory=list)
    survey: dict[str, Any] | None = None
    products: list[dict[str, Any]] | None = None
    offer: dict[str, Any] | None = None
    kind: str = ""
    product: str = ""
    properties: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": self.id,
            "type": self.type,
            "severity": self.severity,
            "title": self.title,
            "body": self.body,
            "dismissible": self.dismissible,
            "actions": self.actions,
            "admins": self.admins,
        }
        if self.survey is not None:
            body["survey"] = self.survey
        if self.products is not None:
            body["products"] = self.products
        if self.offer is not None:
            body["offer"] = self.offer
        return body


@dataclass(frozen=True)
class MessageRef:
    """What a message id says about its message, without rebuilding it."""

    id: str
    type: str
    kind: str
    product: str
    # The prompt id (billing's), the survey's public id, the products' codes.
    detail: str = ""
    codes: tuple[str, ...] = ()


def message_ref(*, message_id: str, caller: KitCaller) -> MessageRef:
    """Read a message id the kit sent back; NotFound for anything that is not one."""
    message_id = (message_id or "").strip()
    type_, _, rest = message_id.partition(":")
    if type_ == "prompt":
        kind, product, _threshold = prompt_id_parse(rest)
        return MessageRef(message_id, PROMPT, kind, product or caller.product.code, detail=rest)
    if match := _SURVEY_ID.match(message_id):
        return MessageRef(message_id, SURVEY, "nps", caller.product.code, detail=match.group(1))
    if match := _TRY_ID.match(message_id):
        codes = tuple(match.group(1).split("+"))
        return MessageRef(message_id, TRY_PRODUCT, "try", caller.product.code, codes=codes)
    if message_id == nudges.OFFER:
        return MessageRef(message_id, INVITE_NUDGE, "invite", caller.product.code)
    if match := _FEATURE_ID.match(message_id):
        offer = (match.group(2), match.group(3)) if match.group(2) else ()
        return MessageRef(message_id, FEATURE_OFFER, "feature", caller.product.code, detail=match.group(1), codes=offer)
    raise NotFound("There is no such message: reload the page.")


# Building each kind of message ----------------------------------------------------------------


def admin_names(*, caller: KitCaller) -> list[str]:
    """Who a member asks: the organization's admins' names (or addresses), longest-serving first."""
    admins = (
        Membership.objects.filter(organization=caller.organization, role=Membership.Role.ADMIN, user__is_active=True)
        .select_related("user")
        .order_by("created_at", "pk")[:ADMIN_NAMES_SHOWN]
    )
    return [membership.user.get_full_name() or membership.user.email for membership in admins]


# Prompts whose fix is buying something (seats, an edition, a plan): for a product a partner
# manages, the fix is asking that partner, whoever reads it (docs/partners.md).
PARTNER_ASK_KINDS = {SEAT_LIMIT_REACHED: "seats", SEAT_LIMIT_NEAR: "seats", TRIAL_ENDS: "product"}


def managed_by_partner(*, caller: KitCaller, product_code: str) -> ManagedBy | None:
    """The partner that manages the product for the caller's organization, if one does."""
    return managed_by_for_product(organization=caller.organization, product_code=product_code)


def ask_partner_action(*, caller: KitCaller, managed: ManagedBy, product_code: str, kind: str) -> dict[str, str]:
    """"Ask <partner>": a link to Flywheel's ask page for that product and need."""
    path = ask_partner_path(product_code=product_code, kind=kind)
    query = urlencode({"organization": str(caller.organization.public_id)})
    return {"kind": "link", "label": f"Ask {managed.name}", "url": f"{settings.SITE_URL}{path}&{query}"}


def managed_prompt_body(*, prompt: Prompt, managed: ManagedBy, product_name: str, organization_name: str) -> str:
    """The prompt's text when a partner manages the product: billing's copy when it names the
    partner already, else who manages it and what to ask them."""
    if managed.name in prompt.body:
        return prompt.body
    if prompt.kind == TRIAL_ENDS:
        return f"{product_name} is managed by {managed.name}: ask them to buy it for {organization_name} to keep using it."
    return f"{product_name} is managed by {managed.name}: ask them for more seats; they buy them for {organization_name}."


def prompt_message(*, caller: KitCaller, prompt: Prompt) -> Message:
    """A billing prompt: for an admin, its one action (a link to Flywheel's page that fixes it);
    for a member, who the admins are and a button to ask them. When a partner manages the
    product and the fix is buying, everyone is offered "Ask <partner>" instead."""
    product_code = prompt.product or caller.product.code
    managed = (
        managed_by_partner(caller=caller, product_code=product_code) if prompt.kind in PARTNER_ASK_KINDS else None
    )
    if managed is not None:
        product_name = managed.subscription.product.name
        return Message(
            id=f"prompt:{prompt.id}",
            type=PROMPT,
            severity=prompt.severity,
            title=prompt.title,
            body=managed_prompt_body(
                prompt=prompt, managed=managed, product_name=product_name, organization_name=caller.organization.name
            ),
            dismissible=prompt.dismissible,
            actions=[
                ask_partner_action(
                    caller=caller, managed=managed, product_code=product_code, kind=PARTNER_ASK_KINDS[prompt.kind]
                )
            ],
            kind=prompt.kind,
            product=product_code,
            properties={
                "prompt_id": prompt.id,
                "threshold": prompt.threshold,
                "copy_source": prompt.copy_source,
                "managed_by": str(managed.payer.public_id),
            },
        )
    actions: list[dict[str, str]] = []
    admins: list[str] = []
    if caller.is_admin:
        if prompt.cta_label and prompt.cta_url:
            actions.append({"kind": "link", "label": prompt.cta_label, "url": prompt.cta_url})
    else:
        admins = admin_names(caller=caller)
        actions.append({"kind": "ask_admins", "label": "Ask an admin" if len(admins) <= 1 else "Ask the admins"})
    return Message(
        id=f"prompt:{prompt.id}",
        type=PROMPT,
        severity=prompt.severity,
        title=prompt.title,
        body=prompt.body,
        dismissible=prompt.dismissible,
        actions=actions,
        admins=admins,
        kind=prompt.kind,
        product=prompt.product or caller.product.code,
        properties={"prompt_id": prompt.id, "threshold": prompt.threshold, "copy_source": prompt.copy_source},
    )


def survey_message(*, caller: KitCaller, survey: Survey, question: str) -> Message:
    return Message(
        id=f"survey:{survey.public_id}",
        type=SURVEY,
        severity="info",
        title="Tell us how we are doing",
        body="One question, and a comment if you like.",
        survey={
            "id": str(survey.public_id),
            "question": question,
            "roles": [{"value": value, "label": label} for value, label in Role.choices],
        },
        kind="nps",
        product=caller.product.code,
        properties={"survey_id": str(survey.public_id)},
    )


def try_message(*, caller: KitCaller, editions: list[Edition]) -> Message:
    """Products to try, each with its one-click trial (POST /kit/v1/trials)."""
    products = [
        {
            "code": edition.product.code,
            "name": edition.product.name,
            "tagline": edition.product.tagline,
            "trial_days": edition.trial_days,
            "edition": edition.name,
            "label": f"Try {edition.product.name} free for {edition.trial_days} day{'s' if edition.trial_days != 1 else ''}",
        }
        for edition in editions
    ]
    codes = [edition.product.code for edition in editions]
    title = (
        f"Try {editions[0].product.name} with {caller.organization.name}"
        if len(editions) == 1
        else f"Try another product with {caller.organization.name}"
    )
    return Message(
        id="try:" + "+".join(codes),
        type=TRY_PRODUCT,
        severity="info",
        title=title,
        body="Start a free trial in one click: no card needed, and nothing is charged unless you buy. "
        "Your colleagues can use it too.",
        products=products,
        kind="try",
        product=caller.product.code,
        properties={"products": codes},
    )


def nudge_message(*, caller: KitCaller, plan: nudges.NudgePlan) -> Message:
    return Message(
        id=nudges.OFFER,
        type=INVITE_NUDGE,
        severity="info",
        title=plan.title,
        body=plan.body,
        actions=[{"kind": "invite", "label": plan.cta_label, "url": nudges.invite_url(organization=caller.organization)}],
        kind="invite",
        product=caller.product.code,
        properties={"experiment": nudges.EXPERIMENT_KEY, "variation": plan.variation_key, "moment": plan.moment},
    )


def feature_message(*, caller: KitCaller, check: FeatureCheck, for_admin: bool | None = None) -> Message:
    """What the kit shows when the person reaches for a feature the organization lacks: to an
    admin, the cheapest offer with its exact price, a button to Flywheel's page that buys it
    and, for an add-on with a trial left, its one-click trial; to a member (`for_admin` False),
    the same words without the price, and asking the admins."""
    admin = caller.is_admin if for_admin is None else for_admin
    product, organization = check.product, caller.organization
    offer = check.cheapest
    subscription = check.subscription
    if offer is not None and subscription is not None:
        has = f"{product.name} {subscription.edition.name}"
        if offer.kind == ADDON:
            title = f"Add {offer.name} to {product.name}"
            body = f"{offer.description} {has} does not include it." if offer.description else f"{has} does not include {check.feature}."
            label = f"Add {offer.name}"
        else:
            title = f"Move to {offer.name}"
            body = f"{has} does not include {check.feature}; {offer.name} does."
            label = f"Move to {offer.name}"
        message_id = f"feature:{check.feature}:{offer.kind}:{offer.code}"
    else:
        title = f"{check.feature} is not part of your plan"
        body = check.reason
        message_id = f"feature:{check.feature}"
    actions: list[dict[str, str]] = []
    admins: list[str] = []
    shown_offer = None
    managed = managed_by_partner(caller=caller, product_code=product.code) if offer is not None else None
    if managed is not None and offer is not None:
        # A partner buys for the organization (at its own price): nobody here buys, all ask it.
        return Message(
            id=message_id,
            type=FEATURE_OFFER,
            severity="info",
            title=title,
            body=f"{body} {product.name} is managed by {managed.name}: ask them to add it for {organization.name}.",
            actions=[
                ask_partner_action(
                    caller=caller, managed=managed, product_code=product.code,
                    kind="addon" if offer.kind == ADDON else "edition",
                )
            ],
            kind="feature",
            product=product.code,
            properties={"feature": check.feature, "offer": f"{offer.kind}:{offer.code}", "managed_by": str(managed.payer.public_id)},
        )
    if admin:
        if offer is not None:
            shown_offer = {
                "kind": offer.kind,
                "code": offer.code,
                "name": offer.name,
                "amount_minor": offer.amount_minor,
                "currency": offer.currency,
                "price_text": offer.price_text,
                "trial_days": offer.trial_days,
            }
            actions.append({"kind": "link", "label": label, "url": offer.url})
            if offer.kind == ADDON and offer.trial_days > 0:
                days = offer.trial_days
                actions.append(
                    {"kind": "trial", "label": f"Try free for {days} day{'s' if days != 1 else ''}", "addon": offer.code}
                )
        else:
            url = f"{settings.SITE_URL}{reverse('billing')}?{urlencode({'organization': str(organization.public_id)})}"
            actions.append({"kind": "link", "label": "See your plan", "url": url})
    else:
        admins = admin_names(caller=caller)
        whom = f"{'an admin' if len(admins) <= 1 else 'the admins'} of {organization.name}"
        body = f"{body} Ask {whom} to add it." if offer is not None else f"{body} Ask {whom} about it."
        actions.append({"kind": "ask_admins", "label": "Ask an admin" if len(admins) <= 1 else "Ask the admins"})
    return Message(
        id=message_id,
        type=FEATURE_OFFER,
        severity="info",
        title=title,
        body=body,
        actions=actions,
        admins=admins,
        offer=shown_offer,
        kind="feature",
        product=product.code,
        properties={"feature": check.feature, **({"offer": f"{offer.kind}:{offer.code}"} if offer else {})},
    )


def feature_request(*, caller: KitCaller, feature: str) -> tuple[bool, Message | None]:
    """The product asks whether the person may use `feature` of the caller's product now:
    (True, None) when the organization is entitled to it, else (False, the message to show).
    UnknownFeature (400) for a feature the product does not have."""
    check = feature_check(organization=caller.organization, product_code=caller.product.code, feature=feature)
    if check.entitled:
        return True, None
    return False, feature_message(caller=caller, check=check)


def offers_snoozed(*, caller: KitCaller, offers: list[str]) -> set[str]:
    """Which of `offers` ("try:wiki", "nudge:invite") the person closed too recently to see again."""
    now = timezone.now()
    closed = OfferClosed.objects.filter(user=caller.user, organization=caller.organization, offer__in=offers)
    return {
        row.offer
        for row in closed
        if now < row.closed_at + (nudges.SNOOZE if row.offer == nudges.OFFER else TRY_SNOOZE)
    }


def editions_to_offer(*, caller: KitCaller, codes: tuple[str, ...] | None = None) -> list[Edition]:
    """The billing page's products to try, less those the admin closed lately (and, with
    `codes`, only those)."""
    if not caller.is_admin:
        return []
    editions = [
        edition
        for edition in products_to_try(organization=caller.organization)
        if codes is None or edition.product.code in codes
    ]
    snoozed = offers_snoozed(caller=caller, offers=[f"try:{edition.product.code}" for edition in editions])
    return [edition for edition in editions if f"try:{edition.product.code}" not in snoozed]


# The budget -----------------------------------------------------------------------------------


class _Lost(Exception):
    """Another request claimed the session first: roll back what this one decided."""


def _claim(session: KitSession, message_id: str) -> None:
    """Record `message_id` as the session's one message, or raise _Lost if it has one."""
    claimed = KitSession.objects.filter(pk=session.pk, message_id="").update(
        message_id=message_id, message_shown_at=timezone.now()
    )
    if claimed != 1:
        raise _Lost
    # The session's answer in its other products changes too (message_cache).
    kit_person_changed(user_id=session.user_id)


def _suspended(caller: KitCaller) -> bool:
    """Is the product suspended for the organization? (One query, instead of every prompt rule.)"""
    return Subscription.objects.filter(
        organization=caller.organization, product=caller.product, status=Subscription.Status.SUSPENDED
    ).exists()


def _session_again(caller: KitCaller) -> KitSession:
    return KitSession.objects.get(pk=caller.session.pk)


def message_due(*, caller: KitCaller) -> Message | None:
    """The one message the kit shows this person now, or None (see the module's rules)."""
    session = caller.session
    if session.message_closed_at is not None and not _suspended(caller):
        return None  # the budget is spent and closed; only a suspended product would show
    if session.message_id:
        prompts = prompts_for(membership=caller.membership, product_code=caller.product.code)
        return _session_message(caller=caller, session=session, prompts=prompts)
    prompts = prompts_for(membership=caller.membership, product_code=caller.product.code)
    try:
        message = _first_message(caller=caller, session=session, prompts=prompts)
    except _Lost:
        return _session_message(caller=caller, session=_session_again(caller), prompts=prompts)
    if message is None:
        # A concurrent load of the same session may have claimed it meanwhile (its survey ask
        # made this one's "asked recently"): then both show the winner's message.
        session = _session_again(caller)
        if session.message_id:
            return _session_message(caller=caller, session=session, prompts=prompts)
    return message


def _first_message(*, caller: KitCaller, session: KitSession, prompts: list[Prompt]) -> Message | None:
    if prompts:
        message = prompt_message(caller=caller, prompt=prompts[0])
        _claim(session, message.id)
        return message
    with transaction.atomic():
        decision = survey_decide(membership=caller.membership, product_code=caller.product.code)
        if decision.ask and decision.survey is not None:
            message = survey_message(caller=caller, survey=decision.survey, question=decision.question)
            _claim(session, message.id)
            return message
    if not caller.is_admin:
        return None
    editions = editions_to_offer(caller=caller)
    if editions:
        return _marketing(caller=caller, session=session, message=try_message(caller=caller, editions=editions))
    if seats_free(organization=caller.organization) == 0:
        return None  # nobody could be invited: the nudge's turn does not come (no exposure)
    plan = nudges.plan_of(caller=caller)
    if plan is None or offers_snoozed(caller=caller, offers=[nudges.OFFER]):
        return None
    if not nudges.moment_reached(caller=caller, plan=plan):
        return None
    if plan.channel == nudges.EMAIL:
        nudges.email_send(caller=caller, plan=plan)
        return None
    return _marketing(caller=caller, session=session, message=nudge_message(caller=caller, plan=plan))


def _marketing(*, caller: KitCaller, session: KitSession, message: Message) -> Message | None:
    """Show a marketing message only with a slot of the shared frequency cap, taken in the
    same transaction as the session's claim (a lost claim gives the slot back)."""
    with transaction.atomic():
        claim = marketing_email_claim(email=caller.user.email, source=f"kit:{message.type}")
        if not claim.allowed:
            return None
        _claim(session, message.id)
        return message


def _session_message(*, caller: KitCaller, session: KitSession, prompts: list[Prompt]) -> Message | None:
    """The budget is spent: the session's message again while it is open and still applies; a
    suspended prompt whatever the budget."""
    suspended = next((prompt for prompt in prompts if prompt.kind == SUSPENDED), None)
    if suspended is not None and (session.message_closed_at is not None or session.message_id != f"prompt:{suspended.id}"):
        return prompt_message(caller=caller, prompt=suspended)
    if session.message_closed_at is not None:
        return None
    try:
        ref = message_ref(message_id=session.message_id, caller=caller)
    except NotFound:
        return None
    if ref.type == PROMPT:
        prompt = next((prompt for prompt in prompts if prompt.id == ref.detail), None)
        return prompt_message(caller=caller, prompt=prompt) if prompt is not None else None
    if ref.type == SURVEY:
        survey = (
            Survey.objects.select_related("product")
            .filter(public_id=ref.detail, user=caller.user, organization=caller.organization, status=Survey.Status.OPEN)
            .first()
        )
        if survey is None:
            return None
        return survey_message(caller=caller, survey=survey, question=question_for(survey.product.name if survey.product else None))
    if ref.type == TRY_PRODUCT:
        editions = editions_to_offer(caller=caller, codes=ref.codes)
        return try_message(caller=caller, editions=editions) if editions else None
    plan = nudges.plan_of(caller=caller)
    return nudge_message(caller=caller, plan=plan) if plan is not None else None


# When the answer changes with time alone (message_cache keeps it until then) -------------------


def _day_boundaries(moment: datetime, now: datetime) -> datetime | None:
    """The first time after `now` that is a whole number of days before (or at) `moment`:
    when "ends in N days", and the reminder stage, next change."""
    remaining = (moment - now).total_seconds()
    if remaining <= 0:
        return None
    return now + timedelta(seconds=remaining % 86400 or 86400)


def message_changes_at(*, caller: KitCaller) -> datetime:
    """The first moment after now at which the caller's answer could change with time alone
    (no write), at most KIT_MESSAGE_CACHE_SECONDS away. Each rule's moments, from messages.py's
    sources: billing's prompts (a trial's day boundaries and end, the card's warning and
    expiry), seats (a pending invite's expiry), the survey (tenure, the sampling period, the
    response, dismissal and unanswered windows, the daily cap's day), the offers' snoozes and
    the marketing cap's window."""
    now = timezone.now()
    organization, user = caller.organization, caller.user
    moments: list[datetime] = [now + timedelta(seconds=cache_seconds())]
    moments.append(now + timedelta(seconds=entry_seconds(organization.pk)))
    for trial_ends_at in Subscription.objects.filter(
        organization=organization, status=Subscription.Status.TRIALING, trial_ends_at__isnull=False
    ).values_list("trial_ends_at", flat=True):
        moments.extend(filter(None, [_day_boundaries(trial_ends_at, now), trial_ends_at]))
    card = BillingAccount.objects.filter(organization=organization).values_list("card_exp_year", "card_exp_month").first()
    if card is not None and card[0] and card[1]:
        ends = datetime(card[0] + card[1] // 12, card[1] % 12 + 1, 1, tzinfo=UTC)
        moments.extend([ends - CARD_EXPIRY_WARNING, ends])
    # The survey.
    moments.append(caller.membership.created_at + timedelta(days=settings.FEEDBACK_MIN_TENURE_DAYS))
    period = max(settings.FEEDBACK_SAMPLING_PERIOD_DAYS, 1) * 86400
    moments.append(datetime.fromtimestamp((now.timestamp() // period + 1) * period, tz=UTC))
    moments.append(datetime.combine(now.date() + timedelta(days=1), datetime.min.time(), tzinfo=UTC))
    state = SurveyState.objects.filter(user=user).first()
    if state is not None:
        for at, days in (
            (state.last_responded_at, settings.FEEDBACK_AFTER_RESPONSE_DAYS),
            (state.last_dismissed_at, settings.FEEDBACK_AFTER_DISMISSAL_DAYS),
            (state.last_asked_at, settings.FEEDBACK_UNANSWERED_DAYS),
        ):
            if at is not None:
                moments.append(at + timedelta(days=days))
    for offer, closed_at in OfferClosed.objects.filter(user=user, organization=organization).values_list(
        "offer", "closed_at"
    ):
        moments.append(closed_at + (nudges.SNOOZE if offer == nudges.OFFER else TRY_SNOOZE))
    # The marketing cap frees a slot when a send leaves its window.
    window = timedelta(hours=settings.MARKETING_EMAIL_CAP_HOURS)
    oldest = MarketingSend.objects.filter(email=(user.email or "").strip().lower(), sent_at__gt=now - window).aggregate(
        oldest=Min("sent_at")
    )["oldest"]
    if oldest is not None:
        moments.append(oldest + window)
    return min(moment for moment in moments if moment > now) if any(moment > now for moment in moments) else now


def message_seconds(*, caller: KitCaller) -> float:
    return (message_changes_at(caller=caller) - timezone.now()).total_seconds()
