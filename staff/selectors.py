"""The headline figures of the staff home, one small read per staff page, each through the
selectors of the app that owns the page."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.urls import reverse

from activity.selectors import usage_figures
from activity.services import staff_figures_day
from billing.selectors import (
    organizations_over_sales_threshold,
    training_packs_expiring,
    training_usage,
    webhook_events_dead_count,
)
from community import selectors as community_selectors
from experiments.selectors import events_dead_count, experiments_running_count, signups_between
from feedback import selectors as feedback_selectors
from feedback.reports import format_nps, month_of
from onboarding.selectors import variation_reports
from partners.models import Partner, PartnerApplication


@dataclass
class Figure:
    value: str
    label: str
    tone: str = ""  # "warning" when it asks for someone's attention


@dataclass
class StaffPage:
    title: str
    url: str
    description: str
    figures: list[Figure] = field(default_factory=list)


def staff_pages(*, now: datetime) -> list[StaffPage]:
    """Every staff page, in the order staff use them, with one or two live figures each."""
    week_ago = now - timedelta(days=7)
    signups = signups_between(since=week_ago, until=now + timedelta(seconds=1))

    month = month_of(now)
    nps = feedback_selectors.monthly_report(month=month, trend_months=2)
    if nps.overall.nps is None:
        nps_figure = Figure(f"{nps.overall.score.responses}", f"answers in {month:%B} so far: too few to score")
    else:
        nps_figure = Figure(
            f"{format_nps(nps.overall.nps)} ±{nps.overall.margin:.0f}",
            f"NPS in {month:%B} so far, from {nps.overall.score.responses} answers",
        )
    follow_ups = feedback_selectors.follow_ups_for_staff().count()

    queue = community_selectors.support_queue()
    waiting = queue.count()
    breaches = queue.filter(lead_flagged_at__isnull=False).count()
    community_month = [row for row in community_selectors.community_metrics(months=1) if row.month and row.month.date() >= month]
    asked = sum(row.asked for row in community_month)
    answered = sum(row.answered for row in community_month)
    hidden_questions, hidden_answers = community_selectors.hidden_posts()
    hidden = hidden_questions.count() + hidden_answers.count()

    onboarding = variation_reports()
    enrolled = sum(row.enrolled for row in onboarding)
    sent = sum(row.sent for row in onboarding)

    assigned = training_usage(since=now - timedelta(days=30)).filter(withdrawn_at__isnull=True).count()
    expiring = training_packs_expiring(within=timedelta(days=30)).count()
    leads = organizations_over_sales_threshold(
        minimum_minor=settings.SALES_THRESHOLD_MINOR, since=now - timedelta(days=365)
    )

    def people(count: int) -> str:
        return "person" if count == 1 else "people"

    def plural(count: int, one: str, many: str) -> str:
        return one if count == 1 else many

    # The stored figures (a request never reads every rollup; see activity.services).
    usage = usage_figures(as_of=staff_figures_day()[0])
    dead_webhooks = webhook_events_dead_count()
    partners_active = Partner.objects.filter(status=Partner.Status.ACTIVE).count()
    applications = PartnerApplication.objects.filter(status=PartnerApplication.Status.PENDING).count()
    running = experiments_running_count()
    refused = events_dead_count()
    questions = plural(asked, "question", "questions")
    return [
        StaffPage(
            "Signup funnel",
            reverse("staff_funnel"),
            "From signing up to paying, step by step, for a period you choose.",
            [Figure(f"{signups.count}", f"{people(signups.count)} signed up in the last 7 days"),
             Figure(f"{signups.verified}", "of them verified their email")],
        ),
        StaffPage(
            "Product usage",
            reverse("staff_usage"),
            "How many people use each product (daily, weekly, monthly) and how often they come back.",
            [Figure(f"{row.mau}", f"{people(row.mau)} active in {row.product.name} in 30 days") for row in usage[:2]],
        ),
        StaffPage(
            "Support queue",
            reverse("community_support_queue"),
            "Questions the community left unanswered past their tier's deadline.",
            [Figure(f"{waiting}", plural(waiting, "open escalation", "open escalations"), "warning" if waiting else ""),
             Figure(f"{breaches}", "of them past the reminder (the lead was told)", "warning" if breaches else "")],
        ),
        StaffPage(
            "NPS",
            reverse("feedback_staff_report"),
            "This month's score with its margin of error, the trend, every breakdown and the comments.",
            [nps_figure],
        ),
        StaffPage(
            "Follow-ups",
            reverse("feedback_follow_ups"),
            "Detractors who agreed to be contacted, waiting for someone to reply.",
            [Figure(f"{follow_ups}", plural(follow_ups, "follow-up open", "follow-ups open"), "warning" if follow_ups else "")],
        ),
        StaffPage(
            "Experiments",
            reverse("staff_experiments"),
            "A/B tests with their baseline, uplift and credible intervals.",
            [Figure(f"{running}", plural(running, "experiment running", "experiments running"))],
        ),
        StaffPage(
            "Onboarding emails",
            reverse("staff_onboarding"),
            "Emails sent, opened, clicked and converted, per experiment variation.",
            [Figure(f"{enrolled}", f"{people(enrolled)} enrolled"), Figure(f"{sent}", plural(sent, "email sent", "emails sent"))],
        ),
        StaffPage(
            "Community metrics",
            reverse("community_metrics"),
            "Per month and support tier: questions, time to first answer, solved by the community.",
            [Figure(f"{asked}", f"{questions} asked in {month:%B}"), Figure(f"{answered}", "of them answered")],
        ),
        StaffPage(
            "Moderation",
            reverse("community_moderation"),
            "Posts hidden by members' flags, waiting for a decision.",
            [Figure(f"{hidden}", plural(hidden, "post waiting for review", "posts waiting for review"), "warning" if hidden else "")],
        ),
        StaffPage(
            "Sales leads",
            reverse("sales_leads"),
            "Organizations whose spend in a year passed the sales threshold.",
            [Figure(f"{len(leads)}", plural(len(leads), "organization above the threshold", "organizations above the threshold"))],
        ),
        StaffPage(
            "Partners",
            reverse("staff_partners"),
            "Channel partners by tier, their customers, revenue through partners against direct, applications waiting.",
            [
                Figure(f"{partners_active}", plural(partners_active, "active partner", "active partners")),
                Figure(f"{applications}", plural(applications, "application waiting", "applications waiting"),
                       "warning" if applications else ""),
            ],
        ),
        StaffPage(
            "Training usage",
            reverse("staff_training"),
            "Who was assigned to which course, and training packs whose credits expire soon.",
            [
                Figure(f"{assigned}", plural(assigned, "assignment in 30 days", "assignments in 30 days")),
                Figure(f"{expiring}", plural(expiring, "pack expiring within 30 days", "packs expiring within 30 days"),
                       "warning" if expiring else ""),
            ],
        ),
        StaffPage(
            "Analytics events",
            f"{reverse('admin:experiments_event_changelist')}?state=dead",
            "Events PostHog refused for good, each with its reason; retry them from the list.",
            [Figure(f"{refused}", plural(refused, "analytics event refused by PostHog", "analytics events refused by PostHog"),
                    "warning" if refused else "")],
        ),
        StaffPage(
            "Stripe webhooks",
            reverse("admin:billing_webhookevent_changelist") + "?outcome__exact=dead",
            "Stripe events given up after repeated errors: replay them once the cause is fixed.",
            [Figure(f"{dead_webhooks}", plural(dead_webhooks, "dead event", "dead events"), "warning" if dead_webhooks else "")],
        ),
    ]
