"""Reads of the community forum.

The forum is public to signed-in users: questions and answers are not scoped by organization.
What is private (the asker's organization, edition and tier, the clock, the support queue,
flags) is read only by the staff selectors below, and the pages show it to staff only.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.contrib.postgres.search import SearchQuery, SearchRank
from django.db import connection, transaction
from django.db.models import Avg, Count, F, Prefetch, Q, QuerySet
from django.db.models.functions import TruncMonth

from .exceptions import NotFound
from .models import Answer, Comment, Escalation, Member, Question, SupportEngineer, Vote

PAGE_SIZE = 30
# A listing pages through at most this many questions: a search ranks the newest MAX_RESULTS
# matches (a one-word search can match a third of the forum, and ranking reads every match's
# whole vector), a plain listing shows the newest.
MAX_RESULTS = 500
PROBE = 2000


@dataclass
class SearchFilters:
    text: str = ""
    tag: str = ""
    product: str = ""
    unanswered: bool = False
    solved: bool = False


def questions_search(*, filters: SearchFilters, viewer=None) -> QuerySet[Question]:
    """Questions matching the filters: full-text ranked (title over body over answers) among
    the newest MAX_RESULTS matches when there is text, newest first otherwise. Hidden and
    deleted questions are left out, except hidden ones for staff."""
    questions = Question.objects.exclude(state=Question.State.DELETED).select_related("product")
    if not (viewer is not None and viewer.is_staff):
        questions = questions.filter(is_hidden=False)
    if filters.tag:
        questions = questions.filter(tags__name=filters.tag)
    if filters.product:
        questions = questions.filter(product__code=filters.product)
    if filters.unanswered:
        questions = questions.filter(answer_count=0)
    if filters.solved:
        questions = questions.filter(accepted_answer__isnull=False)
    text = filters.text.strip()
    if not text:
        return questions.order_by("-created_at", "-pk")
    if connection.vendor != "postgresql":
        return questions.filter(Q(title__icontains=text) | Q(body__icontains=text)).order_by("-created_at")
    query = SearchQuery(text, search_type="websearch", config="english")
    matching = questions.filter(search_vector=query)
    # Rank the newest MAX_RESULTS matches, not every match: a one-word search can match a third
    # of the forum, and ranking reads each match's whole vector. Which plan finds them cheaply
    # depends on how many there are, and PostgreSQL's guess for phrases, exclusions and filters
    # can be far off (walking the created_at index for a search that matches nothing reads the
    # whole table). So probe first, through the GIN index only, for up to PROBE matches: fewer
    # means that is all of them; more means matches are dense, and walking the newest questions
    # finds MAX_RESULTS of them quickly.
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("SET LOCAL enable_indexscan = off")
        probe = list(matching.order_by().values_list("pk", flat=True)[:PROBE])
    if len(probe) < PROBE:
        candidates = Question.objects.filter(pk__in=probe).order_by("-created_at").values("pk")[:MAX_RESULTS]
    else:
        candidates = matching.order_by("-created_at").values("pk")[:MAX_RESULTS]
    return (
        Question.objects.filter(pk__in=candidates)
        .select_related("product")
        .annotate(rank=SearchRank(F("search_vector"), query))
        .order_by("-rank", "-created_at")
        .defer("body", "body_html", "search_vector", "answers_vector")
    )


def get_question_for_user(*, user, public_id) -> Question:
    """A question the user may read: any visible one; a hidden one to its asker and staff."""
    question = (
        Question.objects.select_related("product", "author", "accepted_answer", "duplicate_of")
        .filter(public_id=public_id)
        .exclude(state=Question.State.DELETED)
        .first()
    )
    if question is None or (question.is_hidden and not user.is_staff and question.author_id != user.pk):
        raise NotFound("Question not found.")
    return question


def answers_for(*, question: Question, user) -> list[Answer]:
    """The question's answers to show: accepted first, then by score; hidden ones only to their
    author and staff."""
    answers = (
        question.answers.filter(is_deleted=False)
        .select_related("author")
        .prefetch_related(Prefetch("comments", queryset=Comment.objects.select_related("author")))
        .order_by("-score", "created_at")
    )
    if not user.is_staff:
        answers = answers.filter(Q(is_hidden=False) | Q(author=user))
    ordered = list(answers)
    ordered.sort(key=lambda answer: answer.pk != question.accepted_answer_id)
    return ordered


def votes_of(*, user, question: Question) -> dict[str, int]:
    """The user's votes on the question and its answers: {"q": 1, "a<answer id>": -1}."""
    votes = {}
    for vote in Vote.objects.filter(Q(question=question) | Q(answer__question=question), user=user):
        votes["q" if vote.question_id else f"a{vote.answer_id}"] = vote.value
    return votes


def reputation_of(*, user) -> int:
    member = Member.objects.filter(user=user).only("reputation").first()
    return member.reputation if member else 1


# Staff only ------------------------------------------------------------------------------------


def support_queue(*, include_resolved: bool = False) -> QuerySet[Escalation]:
    escalations = Escalation.objects.select_related(
        "question__product", "question__organization", "question__edition", "engineer__user"
    )
    if not include_resolved:
        escalations = escalations.exclude(state=Escalation.State.RESOLVED)
    return escalations.order_by("escalated_at", "pk")


def engineer_of(*, user) -> SupportEngineer | None:
    return SupportEngineer.objects.filter(user=user).first()


def hidden_posts() -> tuple[QuerySet[Question], QuerySet[Answer]]:
    """Posts hidden by flags, waiting for a moderator."""
    questions = Question.objects.filter(is_hidden=True).exclude(state=Question.State.DELETED).prefetch_related("flags")
    answers = Answer.objects.filter(is_hidden=True, is_deleted=False).select_related("question").prefetch_related("flags")
    return questions.order_by("pk"), answers.order_by("pk")


@dataclass
class MonthTierMetrics:
    month: object
    support_tier: str
    asked: int
    answered: int
    time_to_first_answer: timedelta | None
    solved_by_community: int
    escalations: int
    breaches: int

    @property
    def community_share(self) -> float | None:
        return self.solved_by_community / self.asked if self.asked else None


def community_metrics(*, months: int = 12) -> list[MonthTierMetrics]:
    """Per month asked (UTC) and support tier: questions, average time to first answer, how many
    the community solved before the deadline (accepted or qualifying upvoted answer with the
    clock still running), escalations, and breaches (escalations still unanswered when the lead
    was told)."""
    rows = (
        Question.objects.exclude(state=Question.State.DELETED)
        .annotate(month=TruncMonth("created_at"))
        .values("month", "support_tier")
        .annotate(
            asked=Count("pk"),
            answered=Count("pk", filter=Q(first_answer_at__isnull=False)),
            time_to_first_answer=Avg(F("first_answer_at") - F("created_at")),
            solved_by_community=Count(
                "pk", filter=Q(clock=Question.Clock.STOPPED, stop_reason__in=["accepted", "upvoted"])
            ),
            escalations=Count("escalation"),
            breaches=Count("escalation", filter=Q(escalation__lead_flagged_at__isnull=False)),
        )
        .order_by("-month", "support_tier")
    )
    return [MonthTierMetrics(**row) for row in rows[: months * 8]]
