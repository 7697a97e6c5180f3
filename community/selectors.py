"""Reads of the community forum.

The forum is public to signed-in users: questions and answers are not scoped by organization.
What is private (the asker's organization, edition and tier, the clock, the support queue,
flags) is read only by the staff selectors below, and the pages show it to staff only; except
the reply time promised to the asker's organization (support_promise_for), which the asker and
their organization's members see, and nobody else.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from datetime import timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Avg, Count, F, Prefetch, Q, QuerySet
from django.db.models.functions import TruncMonth

from accounts.models import Membership
from billing.models import AddOnSubscription
from catalog.models import AddOn

from .exceptions import NotFound
from .models import (
    Answer,
    Comment,
    Escalation,
    EscalationPolicy,
    Member,
    Question,
    SupportEngineer,
    Vote,
)

PAGE_SIZE = 30
# A listing pages through at most this many questions: a search ranks the newest MAX_RESULTS
# matches (a one-word search can match a third of the forum, and ranking reads every match's
# whole vector), a plain listing shows the newest.
MAX_RESULTS = 500
# About how many questions a search samples to tell how dense its matches are (see
# _search_ranked_ids).
SAMPLE_ROWS = 2000


@dataclass
class SearchFilters:
    text: str = ""
    tag: str = ""
    product: str = ""
    unanswered: bool = False
    solved: bool = False


class SearchResults:
    """The questions a full-text search found, best first.

    The order is settled up front in the narrow search table (at most MAX_RESULTS question
    ids); only the questions a page shows are read from the question table. It pages like a
    list (Django's Paginator takes it): a slice is again SearchResults, read when iterated.
    """

    def __init__(self, question_ids: list[int]) -> None:
        self.question_ids = question_ids
        self._questions: list[Question] | None = None

    def count(self) -> int:
        return len(self.question_ids)

    def __len__(self) -> int:
        return len(self.question_ids)

    def __getitem__(self, index: int | slice) -> SearchResults | Question:
        if isinstance(index, slice):
            return SearchResults(self.question_ids[index])
        return list(SearchResults([self.question_ids[index]]))[0]

    def __iter__(self) -> Iterator[Question]:
        if self._questions is None:
            found = (
                Question.objects.select_related("product")
                .defer("body", "body_html", "answers_vector")
                .in_bulk(self.question_ids)
            )
            self._questions = [found[pk] for pk in self.question_ids if pk in found]
        return iter(self._questions)


def questions_search(*, filters: SearchFilters, viewer=None) -> QuerySet[Question] | SearchResults:
    """Questions matching the filters: full-text ranked (title over body over answers) among
    the newest MAX_RESULTS matches when there is text, newest first otherwise. Hidden and
    deleted questions are left out, except hidden ones for staff."""
    include_hidden = viewer is not None and viewer.is_staff
    # PostgreSQL text cannot hold a NUL byte: one typed or pasted into the search finds nothing
    # by it, rather than failing the page.
    filters = replace(filters, **{name: getattr(filters, name).replace("\x00", "") for name in ("text", "tag", "product")})
    text = filters.text.strip()
    if text and connection.vendor == "postgresql":
        return SearchResults(_search_ranked_ids(text=text, filters=filters, include_hidden=include_hidden))
    questions = Question.objects.exclude(state=Question.State.DELETED).select_related("product")
    if not include_hidden:
        questions = questions.filter(is_hidden=False)
    if filters.tag:
        questions = questions.filter(tags__name=filters.tag)
    if filters.product:
        questions = questions.filter(product__code=filters.product)
    if filters.unanswered:
        questions = questions.filter(answer_count=0)
    if filters.solved:
        questions = questions.filter(accepted_answer__isnull=False)
    if not text:
        return questions.order_by("-created_at", "-pk")
    return questions.filter(Q(title__icontains=text) | Q(body__icontains=text)).order_by("-created_at")


def _search_ranked_ids(*, text: str, filters: SearchFilters, include_hidden: bool) -> list[int]:
    """The ids of the newest MAX_RESULTS questions matching the search, best ranked first.

    Everything is read from community_questionsearch (migration 0005), whose rows are small
    enough to stay in shared_buffers. Two plans find the newest matches:

    - the bitmap: the GIN index gives every candidate (a phrase's candidates have all its words),
      each is read and checked, and the newest MAX_RESULTS matches are kept. Its cost grows with
      the number of candidates;
    - the walk: down the newest-first btree that fits the filters, checking each question until
      MAX_RESULTS match. Its cost grows with MAX_RESULTS / (the share of questions that match).

    PostgreSQL's own guess for phrases, exclusions and filters can be far off (walking for a
    search that matches nothing reads the whole table), and building the bitmap of a word in
    every third question costs more than the walk, so a sample of the table (about SAMPLE_ROWS
    questions, TABLESAMPLE SYSTEM) tells both shares, and the cheaper plan runs. The walk has a
    bound, past which the bitmap finishes the search: the result is the same either way.
    """
    nested = connection.in_atomic_block
    with transaction.atomic(), connection.cursor() as cursor:
        question_ids = _search_plan_and_run(cursor, text=text, filters=filters, include_hidden=include_hidden)
        if nested:  # the planner settings below last until the outer transaction ends
            cursor.execute(
                "SET LOCAL max_parallel_workers_per_gather TO DEFAULT; SET LOCAL enable_seqscan TO DEFAULT; "
                "SET LOCAL enable_indexscan TO DEFAULT; SET LOCAL enable_bitmapscan TO DEFAULT"
            )
    return question_ids


def _search_plan_and_run(cursor, *, text: str, filters: SearchFilters, include_hidden: bool) -> list[int]:
    """_search_ranked_ids inside its transaction."""
    # The query is parsed once, here, and passed on as a constant: inside a walk's filter,
    # websearch_to_tsquery() would run again for every row.
    cursor.execute(
        """
        SELECT set_config('max_parallel_workers_per_gather', '0', true),
            websearch_to_tsquery('english', %s)::text,
            (SELECT id FROM catalog_product WHERE code = %s),
            (SELECT id FROM community_tag WHERE name = %s),
            (SELECT reltuples FROM pg_class WHERE oid = 'community_questionsearch'::regclass)
        """,
        [text, filters.product, filters.tag],
    )
    _, query, product_id, tag_id, questions = cursor.fetchone()
    if not query or (filters.product and product_id is None) or (filters.tag and tag_id is None):
        return []  # only stop words, or an unknown product or tag: nothing matches
    conditions = [] if include_hidden else ["NOT is_hidden"]
    if filters.product:
        conditions.append("product_id = %(product)s")
    if filters.tag:
        conditions.append("tag_ids @> ARRAY[%(tag)s]::bigint[]")
    if filters.unanswered:
        conditions.append("NOT is_answered")
    if filters.solved:
        conditions.append("is_solved")
    search = QuestionSearch(
        filters=" AND ".join(conditions) or "true",
        # The tag filter has its own GIN index, which the bitmap combines with the document's.
        candidate_filters="tag_ids @> ARRAY[%(tag)s]::bigint[]" if filters.tag else "true",
        parameters={"query": query, "candidates": phrases_as_and(query), "product": product_id, "tag": tag_id},
    )
    walk = search.walk_length(cursor, questions=questions)
    if walk:
        found = search.walk(cursor, bound=2 * walk)
        if len(found) == MAX_RESULTS:
            return found
    return search.bitmap(cursor)


# A phrase operator ('a' <-> 'b', 'a' <2> 'b'), or a quoted lexeme (left alone).
_PHRASE_OR_LEXEME = re.compile(r"('(?:[^']|'')*')|<(?:-|\d+)>")


def phrases_as_and(query: str) -> str:
    """The query with every phrase operator made an AND: the GIN index answers that without
    reading any candidate, and whatever matches the query matches it too. Not so under a NOT
    (!), where the query is kept as it is."""
    if "!" in _PHRASE_OR_LEXEME.sub(lambda found: "''" if found.group(1) else found.group(0), query):
        return query
    return _PHRASE_OR_LEXEME.sub(lambda found: found.group(1) or "&", query)


@dataclass
class QuestionSearch:
    """The statements of one search over community_questionsearch; `filters` is SQL made by
    _search_ranked_ids from its own constants, every value is a parameter."""

    filters: str
    candidate_filters: str  # the filters the bitmap answers from its indexes, before reading rows
    parameters: dict
    RANKED = "ORDER BY ts_rank(document, %(query)s::tsquery) DESC, created_at DESC, question_id DESC"

    def walk_length(self, cursor, *, questions: float) -> int:
        """About how many questions the walk reads to find MAX_RESULTS matches, or 0 when the
        bitmap is cheaper: from a sample of the table, the share of questions that match
        (filters included) and the share that are the GIN indexes' candidates. Reading a
        candidate through the bitmap costs about 1.5 times walking past a question (measured
        with bench/community.py)."""
        if questions < 0:  # never analysed (a new or tiny table): no estimate
            return 0
        percent = min(100.0, 100.0 * SAMPLE_ROWS / max(questions, 1.0))
        cursor.execute(
            f"""
            SELECT count(*) FILTER (WHERE document @@ %(query)s::tsquery AND {self.filters}),
                count(*) FILTER (WHERE document @@ %(candidates)s::tsquery AND {self.candidate_filters}),
                count(*)
            FROM community_questionsearch TABLESAMPLE SYSTEM (%(percent)s)
            """,  # noqa: S608 - filters is made of this module's constants; the values are parameters
            {**self.parameters, "percent": percent},
        )
        matches, candidates, sampled = cursor.fetchone()
        if not matches:
            return 0
        walk = MAX_RESULTS * sampled / matches
        return int(walk) if walk < 1.5 * candidates / sampled * questions else 0

    def walk(self, cursor, *, bound: int) -> list[int]:
        """The newest matches among the newest `bound` questions that pass the filters, ranked."""
        cursor.execute(
            "SELECT set_config('enable_bitmapscan', 'off', true), set_config('enable_seqscan', 'off', true)"
        )
        cursor.execute(
            f"""
            SELECT question_id FROM (
                SELECT question_id, created_at, document FROM (
                    SELECT question_id, created_at, document FROM community_questionsearch
                    WHERE {self.filters} ORDER BY created_at DESC LIMIT %(bound)s
                ) recent
                WHERE document @@ %(query)s::tsquery ORDER BY created_at DESC LIMIT %(newest)s
            ) newest
            {self.RANKED}
            """,  # noqa: S608 - as above
            {**self.parameters, "bound": bound, "newest": MAX_RESULTS},
        )
        return [question_id for (question_id,) in cursor.fetchall()]

    def bitmap(self, cursor) -> list[int]:
        """The newest matches out of all of them (through the GIN index), ranked."""
        cursor.execute(
            "SELECT set_config('enable_bitmapscan', 'on', true), set_config('enable_seqscan', 'off', true), "
            "set_config('enable_indexscan', 'off', true)"
        )
        cursor.execute(
            f"""
            SELECT question_id FROM (
                SELECT question_id, created_at, document FROM community_questionsearch
                WHERE document @@ %(query)s::tsquery AND {self.filters}
                ORDER BY created_at DESC LIMIT %(newest)s
            ) newest
            {self.RANKED}
            """,  # noqa: S608 - as above
            {**self.parameters, "newest": MAX_RESULTS},
        )
        return [question_id for (question_id,) in cursor.fetchall()]


def get_question_for_user(*, user, public_id) -> Question:
    """A question the user may read: any visible one; a hidden one to its asker and staff."""
    question = (
        Question.objects.select_related("product", "author", "accepted_answer", "duplicate_of", "policy", "edition")
        .filter(public_id=public_id)
        .exclude(state=Question.State.DELETED)
        .first()
    )
    if question is None or (question.is_hidden and not user.is_staff and question.author_id != user.pk):
        raise NotFound("Question not found.")
    return question


def _moment_in_words(moment, *, user) -> str:
    """"Tuesday 3 March at 14:00 (Europe/Paris)" in the reader's time zone (else the default)."""
    name = getattr(user, "time_zone", "") or settings.DEFAULT_USER_TIME_ZONE
    try:
        zone = ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        name, zone = settings.DEFAULT_USER_TIME_ZONE, ZoneInfo(settings.DEFAULT_USER_TIME_ZONE)
    local = moment.astimezone(zone)
    return f"{local:%A} {local.day} {local:%B} at {local:%H:%M} ({name})"


def support_addons_of(questions: Iterable[Question]) -> dict[int, AddOn]:
    """Staff: the questions (by pk) whose support tier came from an add-on (Premium support)
    rather than the asker's edition: their tier is better than the edition's, so an add-on of
    the organization on that product granting that tier gave it (the latest such add-on)."""
    ranks = dict(EscalationPolicy.objects.values_list("support_tier", "rank"))
    raised = [
        question
        for question in questions
        if question.organization_id
        and ranks.get(question.support_tier, 0) > ranks.get(question.edition.support_tier if question.edition else "community", 0)
    ]
    if not raised:
        return {}
    addons: dict[tuple[int, int, str], AddOn] = {}
    for row in (
        AddOnSubscription.objects.filter(
            organization_id__in={question.organization_id for question in raised},
            subscription__product_id__in={question.product_id for question in raised},
            addon__support_tier__in={question.support_tier for question in raised},
        )
        .select_related("addon", "subscription")
        .order_by("created_at", "pk")
    ):
        addons[(row.organization_id, row.subscription.product_id, row.addon.support_tier)] = row.addon
    found = {}
    for question in raised:
        addon = addons.get((question.organization_id, question.product_id, question.support_tier))
        if addon is not None:
            found[question.pk] = addon
    return found


def support_promise_for(*, question: Question, user) -> str:
    """What the asker's organization was promised for this question, in words, while its clock
    runs: "Premium support: a support engineer replies by Tuesday 3 March at 14:00 (UTC)."
    Private like the tier: only the asker and the members of their organization read it (the
    asker's tier says what their organization pays for); "" for anyone else, and when the
    clock is not running."""
    if question.clock != Question.Clock.RUNNING or question.state != Question.State.OPEN or question.deadline is None:
        return ""
    if question.author_id != user.pk and not (
        question.organization_id
        and Membership.objects.filter(organization_id=question.organization_id, user_id=user.pk).exists()
    ):
        return ""
    when = _moment_in_words(question.deadline, user=user)
    policy = question.policy
    addon = support_addons_of([question]).get(question.pk)
    if addon is not None:
        label = addon.name
    elif policy.rank == 0:
        return f"If the community has not answered by {when}, a support engineer takes your question."
    else:
        label = f"{policy.name} support"
    return f"{label}: a support engineer replies by {when}."


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
