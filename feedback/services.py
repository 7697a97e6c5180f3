"""Every write of feedback: asking, answering, dismissing, correcting categories, following up,
and claiming and sending the monthly digest and customer reports.

Locks, always in this order: the user's SurveyState row, then the survey, then the
organization's DailyAskCount row. docs/feedback.md describes the rules.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from datetime import date, timedelta
from email.mime.image import MIMEImage
from email.utils import make_msgid

from django.conf import settings
from django.core import signing
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.mail import EmailMultiAlternatives, get_connection
from django.db import IntegrityError, transaction
from django.db.models import F
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from accounts.mail import mail_queue
from accounts.models import Membership, User
from activity.people import person_usage_before
from billing.models import Subscription
from catalog.models import Product
from common.tasks import enqueue_on_commit
from experiments.services import event_record

from . import categorizer, charts, events, selectors, tasks
from .exceptions import NotFound, PermissionDenied, ResponseInvalid, SurveyClosed
from .models import (
    Category,
    DailyAskCount,
    DigestDelivery,
    DigestRun,
    FollowUp,
    OrganizationReportRun,
    ReportOptOut,
    Response,
    Role,
    Survey,
    SurveyState,
)
from .reports import format_nps, month_of, months_back, question_for

logger = logging.getLogger(__name__)

COMMENT_MAX_LENGTH = 5000
DETRACTOR_MAX_SCORE = 6
PAYING_STATUSES = (Subscription.Status.ACTIVE, Subscription.Status.PAST_DUE)


@dataclass(frozen=True)
class AskDecision:
    """Whether the product should show the survey now; `reason` says why not."""

    ask: bool
    reason: str
    survey: Survey | None = None
    question: str = ""


# Asking ---------------------------------------------------------------------------------------


def sampled(*, user: User, moment) -> bool:
    """Whether the user is in the sample for the period holding `moment`.

    Deterministic: a hash of the user's public id and the period number, so a retried request,
    or any web process, answers the same for the whole period.
    """
    rate = settings.FEEDBACK_SAMPLING_RATE
    if rate >= 1:
        return True
    if rate <= 0:
        return False
    period_days = max(settings.FEEDBACK_SAMPLING_PERIOD_DAYS, 1)
    period = int(moment.timestamp() // (period_days * 86400))
    digest = hashlib.sha256(f"nps:{user.public_id}:{period}".encode()).digest()
    draw = int.from_bytes(digest[:8], "big") / 2**64
    return draw < rate


def _state_lock(user: User) -> SurveyState:
    SurveyState.objects.bulk_create([SurveyState(user=user)], ignore_conflicts=True)
    return SurveyState.objects.select_for_update().get(user=user)


def _throttled(state: SurveyState, now) -> str:
    """The reason the user may not be asked again yet, or ""."""
    if state.last_responded_at and now < state.last_responded_at + timedelta(
        days=settings.FEEDBACK_AFTER_RESPONSE_DAYS
    ):
        return "responded_recently"
    if state.last_dismissed_at and now < state.last_dismissed_at + timedelta(
        days=settings.FEEDBACK_AFTER_DISMISSAL_DAYS
    ):
        return "dismissed_recently"
    if state.last_asked_at and now < state.last_asked_at + timedelta(days=settings.FEEDBACK_UNANSWERED_DAYS):
        return "asked_recently"
    return ""


def _daily_cap_take(*, organization_id: int, day: date) -> bool:
    """Take one of the organization's asks of `day`; False when the cap is reached.

    One conditional UPDATE moves the counter only while it is under the cap, so concurrent
    takers can never exceed it.
    """
    cap = settings.FEEDBACK_DAILY_CAP_PER_ORGANIZATION
    if cap <= 0:
        return True
    DailyAskCount.objects.bulk_create([DailyAskCount(organization_id=organization_id, day=day)], ignore_conflicts=True)
    taken = DailyAskCount.objects.filter(organization_id=organization_id, day=day, asks__lt=cap).update(
        asks=F("asks") + 1
    )
    return taken == 1


def _product(product_code: str | None) -> Product | None:
    if not product_code:
        return None
    product = Product.objects.filter(code=product_code).first()
    if product is None:
        raise NotFound(f"Unknown product {product_code!r}.")
    return product


@transaction.atomic
def survey_decide(*, membership: Membership, product_code: str | None = None) -> AskDecision:
    """Decide whether to show the NPS survey to this member now, and if so record the ask.

    Invariants: a member is asked only after FEEDBACK_MIN_TENURE_DAYS in the organization, when
    drawn in the period's sample, never within the response, dismissal and unanswered windows
    of their last survey, and never beyond the organization's daily cap. The decision is taken
    holding the user's SurveyState row lock, so of two concurrent requests only one can ask.
    """
    now = timezone.now()
    product = _product(product_code)
    user = membership.user
    if now < membership.created_at + timedelta(days=settings.FEEDBACK_MIN_TENURE_DAYS):
        return AskDecision(ask=False, reason="tenure")
    if not sampled(user=user, moment=now):
        return AskDecision(ask=False, reason="not_sampled")
    state = _state_lock(user)
    reason = _throttled(state, now)
    if reason:
        return AskDecision(ask=False, reason=reason)
    if not _daily_cap_take(organization_id=membership.organization_id, day=now.date()):
        return AskDecision(ask=False, reason="daily_cap")
    # An earlier ask left open (the window for an unanswered ask is over) takes no answer any
    # more: otherwise answering both would give two responses inside the response window.
    Survey.objects.filter(user=user, status=Survey.Status.OPEN).update(status=Survey.Status.REPLACED, closed_at=now)
    survey = Survey.objects.create(
        organization_id=membership.organization_id, user=user, product=product, asked_at=now
    )
    state.last_asked_at = now
    state.save(update_fields=["last_asked_at"])
    event_record(
        name=events.FEEDBACK_SURVEY_ASKED,
        user=user,
        organization=membership.organization,
        properties={"survey_id": str(survey.public_id), "product": product.code if product else ""},
    )
    return AskDecision(
        ask=True,
        reason="",
        survey=survey,
        question=question_for(product.name if product else None),
    )


def _survey_lock(*, membership: Membership, survey_public_id: object) -> Survey:
    survey = selectors.survey_get_for_member(membership=membership, survey_public_id=survey_public_id)
    return Survey.objects.select_for_update().get(pk=survey.pk)


@transaction.atomic
def survey_dismiss(*, membership: Membership, survey_public_id: object) -> Survey:
    """The member closed the survey without answering.

    Invariant: a survey ends once, answered or dismissed; dismissing it again changes nothing.
    """
    now = timezone.now()
    state = _state_lock(membership.user)
    survey = _survey_lock(membership=membership, survey_public_id=survey_public_id)
    if survey.status == Survey.Status.DISMISSED:
        return survey
    if survey.status == Survey.Status.ANSWERED:
        raise SurveyClosed("This survey was already answered.")
    if survey.status == Survey.Status.REPLACED:
        return survey  # nothing to dismiss: a newer ask took its place
    survey.status = Survey.Status.DISMISSED
    survey.closed_at = now
    survey.save(update_fields=["status", "closed_at"])
    state.last_dismissed_at = now
    state.save(update_fields=["last_dismissed_at"])
    event_record(
        name=events.FEEDBACK_SURVEY_DISMISSED,
        user=membership.user,
        organization=membership.organization,
        properties={"survey_id": str(survey.public_id)},
    )
    return survey


def _context(*, membership: Membership, product: Product | None, now) -> dict:
    """The snapshot stored with a response: product, edition, seats, tenure, age, paying, and
    the respondent's use of that product (of every product of the organization when there is
    none) in the 30 whole UTC days before today."""
    subscriptions = Subscription.objects.filter(organization_id=membership.organization_id).exclude(
        status=Subscription.Status.CANCELED
    )
    if product is not None:
        subscriptions = subscriptions.filter(product=product)
    subscription = subscriptions.select_related("product", "edition").order_by("created_at", "pk").first()
    product = subscription.product if subscription else product
    usage = person_usage_before(
        user_id=membership.user_id,
        organization_id=membership.organization_id,
        product_id=product.pk if product else None,
        day=now.date(),
    )
    return {
        "product": product,
        "edition": subscription.edition if subscription else None,
        "seats": subscription.seat_limit if subscription else 0,
        "paying": bool(
            subscription and subscription.status in PAYING_STATUSES and not subscription.edition.is_free
        ),
        "tenure_days": max((now - membership.created_at).days, 0),
        "organization_age_days": max((now - membership.organization.created_at).days, 0),
        "active_days": usage.active_days,
        "usage_state": usage.state,
    }


def _validate_answer(*, score: object, role: str, comment: str) -> tuple[int, str, str]:
    if isinstance(score, bool) or not isinstance(score, int) or not 0 <= score <= 10:
        raise ResponseInvalid("The score must be a whole number from 0 to 10.")
    if role not in Role.values:
        raise ResponseInvalid(f"Choose a role among: {', '.join(Role.values)}.")
    comment = (comment or "").strip()
    if len(comment) > COMMENT_MAX_LENGTH:
        raise ResponseInvalid(f"The comment is too long (at most {COMMENT_MAX_LENGTH} characters).")
    return score, role, comment


@transaction.atomic
def response_submit(
    *,
    membership: Membership,
    survey_public_id: object,
    score: int,
    role: str,
    comment: str = "",
    may_contact: bool = False,
) -> tuple[Response, bool]:
    """Store the member's answer to their survey with the product context of this moment and the
    suggested category of the comment; open a follow-up for a detractor who left a comment.

    Invariants: one response per survey (a database constraint; a retried submission gets the
    stored response back, with False); a dismissed survey takes no answer; the user is not asked
    again within FEEDBACK_AFTER_RESPONSE_DAYS.
    """
    score, role, comment = _validate_answer(score=score, role=role, comment=comment)
    now = timezone.now()
    state = _state_lock(membership.user)
    survey = _survey_lock(membership=membership, survey_public_id=survey_public_id)
    if survey.status == Survey.Status.ANSWERED:
        return Response.objects.get(survey=survey), False
    if survey.status == Survey.Status.DISMISSED:
        raise SurveyClosed("This survey was dismissed; it takes no answer any more.")
    if survey.status == Survey.Status.REPLACED:
        raise SurveyClosed("This survey was replaced by a newer one; answer that one instead.")
    category = categorizer.categorize(comment)
    response = Response.objects.create(
        survey=survey,
        organization_id=membership.organization_id,
        user=membership.user,
        score=score,
        role=role,
        comment=comment,
        may_contact=may_contact,
        submitted_at=now,
        month=month_of(now),
        suggested_category=category,
        category=category,
        **_context(membership=membership, product=survey.product, now=now),
    )
    survey.status = Survey.Status.ANSWERED
    survey.closed_at = now
    survey.save(update_fields=["status", "closed_at"])
    state.last_responded_at = now
    state.save(update_fields=["last_responded_at"])
    event_record(
        name=events.FEEDBACK_RESPONSE_SUBMITTED,
        user=membership.user,
        organization=membership.organization,
        properties={
            "survey_id": str(survey.public_id),
            "score": score,
            "role": role,
            "has_comment": bool(comment),
            "category": category,
            "product": response.product.code if response.product else "",
            "paying": response.paying,
        },
    )
    if comment and score <= DETRACTOR_MAX_SCORE:
        follow_up = FollowUp.objects.create(response=response, created_at=now)
        event_record(
            name=events.FEEDBACK_FOLLOW_UP_OPENED,
            user=membership.user,
            organization=membership.organization,
            properties={"follow_up_id": str(follow_up.public_id), "score": score, "category": category},
        )
    return response, True


# Staff: categories and follow-ups ----------------------------------------------------------


def _require_staff(actor: User) -> None:
    if not actor.is_staff:
        raise PermissionDenied("Only staff can do that.")


@transaction.atomic
def response_categorize(*, response: Response, category: str, actor: User) -> Response:
    """Staff set the category of a comment. The suggestion stays as it was, so agreement with
    staff can be measured. Invariant: only a response with a comment has a category."""
    _require_staff(actor)
    if category not in Category.values:
        raise ResponseInvalid(f"Choose a category among: {', '.join(Category.values)}.")
    response = Response.objects.select_for_update().get(pk=response.pk)
    if not response.comment:
        raise ResponseInvalid("This answer has no comment to categorize.")
    if response.category == category and response.category_corrected_by_id:
        return response
    previous = response.category
    response.category = category
    response.category_corrected_by = actor
    response.category_corrected_at = timezone.now()
    response.save(update_fields=["category", "category_corrected_by", "category_corrected_at"])
    event_record(
        name=events.FEEDBACK_CATEGORY_CORRECTED,
        user=actor,
        properties={
            "response_id": str(response.public_id),
            "from": previous,
            "to": category,
            "suggested": response.suggested_category,
        },
    )
    return response


@transaction.atomic
def follow_up_resolve(
    *, follow_up: FollowUp, actor: User, action_taken: str, tell_respondent: bool = False
) -> FollowUp:
    """Staff record what was done about a detractor's comment and close the follow-up; with
    `tell_respondent`, the respondent gets an email saying so.

    Invariants: the respondent is only written to if they agreed to be contacted, and at most
    once; a follow-up is done with a date.
    """
    _require_staff(actor)
    action_taken = (action_taken or "").strip()
    if not action_taken:
        raise ResponseInvalid("Say what was done before closing the follow-up.")
    follow_up = FollowUp.objects.select_for_update(of=("self",)).select_related("response__user").get(pk=follow_up.pk)
    response = follow_up.response
    respondent = response.user
    if tell_respondent and (not response.may_contact or respondent is None or not respondent.is_active):
        raise ResponseInvalid("The respondent did not agree to be contacted, so they cannot be told.")
    now = timezone.now()
    follow_up.action_taken = action_taken
    follow_up.status = FollowUp.Status.DONE
    follow_up.resolved_by = actor
    follow_up.resolved_at = follow_up.resolved_at or now
    told = False
    if tell_respondent and follow_up.respondent_told_at is None:
        follow_up.respondent_told_at = now
        told = True
    follow_up.save()
    if told:
        context = {"response": response, "follow_up": follow_up, "site_url": settings.SITE_URL}
        message = EmailMultiAlternatives(
            subject="About your feedback",
            body=render_to_string("feedback/email/follow_up.txt", context),
            to=[respondent.email],
        )
        mail_queue(message)
    event_record(
        name=events.FEEDBACK_FOLLOW_UP_RESOLVED,
        user=actor,
        properties={"follow_up_id": str(follow_up.public_id), "respondent_told": told},
    )
    return follow_up


# Monthly digest and customer reports --------------------------------------------------------


@dataclass(frozen=True)
class DigestCharts:
    nps_trend: bytes
    mau_trend: bytes
    retention: bytes


def _digest_summary(month: date) -> tuple[dict, DigestCharts]:
    from activity.charts import (
        from_first_cohort,
        from_first_use,
        mau_trend_png,
        retention_heatmap_png,
    )

    report = selectors.monthly_report(month=month)
    usage = selectors.usage_beside_nps(month=month, as_of=selectors.month_over(month))
    summary = {
        "month": month.isoformat(),
        "overall": report.overall.as_dict(),
        "previous": report.previous.as_dict(),
        "change": None if report.change is None else round(report.change, 1),
        "change_margin": None if report.change_margin is None else round(report.change_margin, 1),
        "change_significant": report.change_significant,
        "trend": [point.as_dict() for point in report.trend],
        "categories": [group.as_dict() for group in report.breakdowns["category"]],
        "comments": selectors.comments_sample(month=month, count=settings.FEEDBACK_DIGEST_COMMENTS),
        "minimum": settings.FEEDBACK_MIN_GROUP_RESPONSES,
        # Use of the products beside the NPS: the same months' MAU and monthly retention, and
        # the NPS by the respondents' use of the product when they answered.
        "usage": {
            "as_of": usage.as_of.isoformat(),
            "months": [
                {
                    "month": point.month.isoformat(),
                    "label": f"{point.month:%b %Y}",
                    "active": point.active,
                    "previous_active": point.previous_active,
                    "retained": point.retained,
                    "retained_percent": None
                    if point.retained_share is None
                    else round(100 * point.retained_share),
                    "complete": point.complete,
                }
                for point in usage.months
            ],
            "definitions": usage.definitions,
            "retention_definition": usage.retention.definition,
        },
        "usage_states": [group.as_dict() for group in report.breakdowns["usage"]],
        "usage_state_definitions": [list(pair) for pair in selectors.BREAKDOWN_DEFINITIONS["usage"]],
        "active_days": [group.as_dict() for group in report.breakdowns["active_days"]],
    }
    drawn = DigestCharts(
        nps_trend=charts.trend_png(charts.from_first_answers(report.trend)),
        mau_trend=mau_trend_png(
            from_first_use(usage.months), title="Active people by month (MAU), all products"
        ),
        retention=retention_heatmap_png(
            from_first_cohort(usage.retention), title="People still active, by month they started"
        ),
    )
    return summary, drawn


@transaction.atomic
def digest_claim(*, month: date) -> DigestRun | None:
    """Claim the staff digest of `month` (a first of the month), freeze its figures and chart,
    and send one copy to each staff member after commit. None when it was claimed before.

    Invariant: one digest per month, ever: the DigestRun row (unique month) is inserted first,
    so a concurrent claim waits on the unique index and then finds it taken.
    """
    now = timezone.now()
    try:
        with transaction.atomic():
            run = DigestRun.objects.create(month=month, claimed_at=now, summary={}, chart_png=b"")
    except IntegrityError:
        return None
    run.summary, drawn = _digest_summary(month)
    run.chart_png = drawn.nps_trend
    run.mau_chart_png = drawn.mau_trend
    run.retention_chart_png = drawn.retention
    run.save(update_fields=["summary", "chart_png", "mau_chart_png", "retention_chart_png"])
    deliveries = DigestDelivery.objects.bulk_create(
        [DigestDelivery(run=run, user=user, email=user.email) for user in selectors.staff_recipients()]
    )
    for delivery in deliveries:
        enqueue_on_commit(tasks.digest_delivery_send, delivery.pk)
    overall = run.summary["overall"]
    event_record(
        name=events.FEEDBACK_DIGEST_CLAIMED,
        distinct_id="feedback-digest",
        properties={"month": month.isoformat(), "recipients": len(deliveries), "responses": overall["responses"]},
    )
    return run


def digest_message(*, delivery: DigestDelivery) -> EmailMultiAlternatives:
    """The digest email: plain text, and HTML with the charts inline (multipart/related, each
    image referenced by its Content-ID) so mail clients show them without loading anything."""
    run = delivery.run
    summary = run.summary
    month = date.fromisoformat(summary["month"])
    images = {
        "chart_cid": (f"nps-trend-{month:%Y-%m}@flywheel", bytes(run.chart_png), f"nps-trend-{month:%Y-%m}.png"),
        "mau_chart_cid": (f"mau-trend-{month:%Y-%m}@flywheel", bytes(run.mau_chart_png), f"active-people-{month:%Y-%m}.png"),
        "retention_chart_cid": (
            f"retention-{month:%Y-%m}@flywheel",
            bytes(run.retention_chart_png),
            f"retention-{month:%Y-%m}.png",
        ),
    }
    images = {name: image for name, image in images.items() if image[1]}
    usage = summary.get("usage")
    context = {
        "summary": summary,
        "month": month,
        "nps": format_nps(summary["overall"]["nps"]),
        "change": None if summary["change"] is None else f"{summary['change']:+.0f}",
        "change_margin": summary.get("change_margin"),
        "change_significant": summary.get("change_significant", False),
        "previous_month": months_back(month, 1),
        **{name: content_id for name, (content_id, _, _) in images.items()},
        "minimum": summary.get("minimum", settings.FEEDBACK_MIN_GROUP_RESPONSES),
        "usage": usage,
        "usage_month": usage["months"][-1] if usage else None,
        "usage_as_of": date.fromisoformat(usage["as_of"]) if usage else None,
        "report_url": f"{settings.SITE_URL}{reverse('feedback_staff_report')}?month={month:%Y-%m}",
    }
    message = EmailMultiAlternatives(
        subject=f"NPS digest for {month:%B %Y}: {context['nps']}",
        body=render_to_string("feedback/email/digest.txt", context),
        to=[delivery.email],
        headers={"Message-ID": make_msgid(idstring=str(delivery.public_id), domain="flywheel.localhost")},
    )
    message.attach_alternative(render_to_string("feedback/email/digest.html", context), "text/html")
    message.mixed_subtype = "related"
    for content_id, content, filename in images.values():
        image = MIMEImage(content, "png")
        image.add_header("Content-ID", f"<{content_id}>")
        image.add_header("Content-Disposition", "inline", filename=filename)
        message.attach(image)
    return message


def digest_delivery_send(*, delivery_id: int) -> bool:
    """Send one staff member's digest; True if sent now, False if it had been sent already.

    Sent from the worker with the mail backend directly (the queued-mail payload carries no
    attachments). The delivery row stays locked while the backend is called, so two workers
    never send the same copy; a crash after sending and before commit resends it with the same
    Message-ID, which mail systems deduplicate.
    """
    with transaction.atomic():
        delivery = (
            DigestDelivery.objects.select_for_update().select_related("run").filter(pk=delivery_id).first()
        )
        if delivery is None or delivery.sent_at is not None:
            return False
        message = digest_message(delivery=delivery)
        message.connection = get_connection()
        message.send()
        delivery.sent_at = timezone.now()
        delivery.save(update_fields=["sent_at"])
    return True


@transaction.atomic
def organization_report_send(*, organization_id: int, month: date) -> OrganizationReportRun | None:
    """Email one customer's admins the report of what their users said, up to `month`.

    Invariant: once per (organization, month), claimed by a unique row before anything is sent;
    None when it was claimed before. An organization without admins is claimed with 0 recipients.
    """
    from accounts.models import Organization

    organization = Organization.objects.get(pk=organization_id)
    try:
        with transaction.atomic():
            run = OrganizationReportRun.objects.create(organization=organization, month=month, claimed_at=timezone.now())
    except IntegrityError:
        return None
    admins = list(selectors.admins_of(organization=organization).exclude(pk__in=ReportOptOut.objects.values("user_id")))
    report = selectors.organization_report(organization=organization, until=month, comments=20)
    usage = selectors.organization_usage(organization=organization, month=month, as_of=selectors.month_over(month))
    context = {
        "organization": organization,
        "report": report,
        "usage": usage,
        "mau_rows": charts.mau_rows(usage.trend.months),
        "retention_rows": charts.retention_rows(usage.trend.retention),
        "usage_definitions": selectors.BREAKDOWN_DEFINITIONS["usage"],
        "month": month,
        "minimum": settings.FEEDBACK_MIN_GROUP_RESPONSES,
        "report_url": f"{settings.SITE_URL}{reverse('feedback_report')}",
    }
    for admin in admins:
        unsubscribe = f"{settings.SITE_URL}{reverse('feedback_reports_unsubscribe', args=[report_unsubscribe_token(admin)])}"
        personal = {**context, "unsubscribe_url": unsubscribe}
        message = EmailMultiAlternatives(
            subject=f"What your team said about us: {month:%B %Y}",
            body=render_to_string("feedback/email/organization_report.txt", personal),
            to=[admin.email],
            headers={"List-Unsubscribe": f"<{unsubscribe}>", "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"},
        )
        message.attach_alternative(render_to_string("feedback/email/organization_report.html", personal), "text/html")
        mail_queue(message)
    run.recipients = len(admins)
    run.save(update_fields=["recipients"])
    event_record(
        name=events.FEEDBACK_ORGANIZATION_REPORT_SENT,
        organization=organization,
        properties={"month": month.isoformat(), "recipients": len(admins)},
    )
    return run


REPORTS_UNSUBSCRIBE_SALT = "feedback.reports.unsubscribe"


def report_unsubscribe_token(user: User) -> str:
    return signing.dumps(str(user.public_id), salt=REPORTS_UNSUBSCRIBE_SALT)


def report_recipient_of(*, token: str) -> User:
    """The admin a report's unsubscribe link was made for; NotFound for a forged or damaged one."""
    try:
        public_id = signing.loads(token, salt=REPORTS_UNSUBSCRIBE_SALT)
        user = User.objects.filter(public_id=public_id).first()
    except (signing.BadSignature, ValueError, DjangoValidationError):
        user = None
    if user is None:
        raise NotFound("This unsubscribe link is not valid; it may have been copied incompletely.")
    return user


def reports_unsubscribe(*, user: User) -> ReportOptOut:
    """No more monthly reports for this admin, from any organization. Idempotent."""
    opt_out, _ = ReportOptOut.objects.get_or_create(user=user)
    return opt_out


def reports_send_monthly(*, now=None) -> dict:
    """Beat (daily): once the month is over, send its staff digest and each customer's report;
    every one is claimed once, so later ticks of the same month send nothing more."""
    now = now or timezone.now()
    month = months_back(month_of(now), 1)
    digest = digest_claim(month=month)
    reports = 0
    for organization in selectors.organizations_to_report(month=month).only("pk"):
        if organization_report_send(organization_id=organization.pk, month=month) is not None:
            reports += 1
    return {"month": month.isoformat(), "digest": digest is not None, "organization_reports": reports}
