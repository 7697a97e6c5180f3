"""The forum's pages, the support queue and the metrics. Parse, call a service or selector, render.

Questions are public to signed-in users; the asker's organization, edition and tier, the clock,
flags and the support queue are shown to staff only (the templates check `user.is_staff`). The
reply time promised to the asker's organization is shown to the asker and their organization's
members only (selectors.support_promise_for).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from accounts.models import User
from catalog.models import Product
from common.exceptions import FlywheelError, RequestMalformed
from common.staff import staff_required

from . import privileges, selectors
from .exceptions import NotFound
from .models import Answer, Escalation, EscalationPolicy, Flag, Question
from .notifications import unsubscribe_user_public_id
from .services import escalations as escalation_services
from .services import members as member_services
from .services import moderation as moderation_services
from .services import posts as post_services
from .services import votes as vote_services


def _question(request: HttpRequest, public_id) -> Question:
    try:
        return selectors.get_question_for_user(user=request.user, public_id=public_id)
    except NotFound:
        raise Http404("Question not found.") from None


def _answer(request: HttpRequest, public_id) -> Answer:
    try:
        public_id = public_id if isinstance(public_id, uuid.UUID) else uuid.UUID(public_id)
    except ValueError:  # a form field (comment, vote, flag on an answer) no page of ours sends
        raise RequestMalformed(
            f"That answer does not exist: '{public_id}' is not an answer's id. Nothing was saved."
        ) from None
    answer = Answer.objects.select_related("question").filter(public_id=public_id, is_deleted=False).first()
    if answer is None:
        raise Http404("Answer not found.")
    _question(request, answer.question.public_id)  # the same visibility as its question
    if answer.is_hidden and not request.user.is_staff and answer.author_id != request.user.pk:
        raise Http404("Answer not found.")
    return answer


def _act(request: HttpRequest, question: Question, action: Callable[[], object], success: str = "") -> HttpResponse:
    """Run a service; show its refusal as it is; back to the question."""
    try:
        action()
    except FlywheelError as error:
        messages.error(request, error.message)
    else:
        if success:
            messages.success(request, success)
    return redirect("community_question", question.public_id)


def _flag(value: str | None) -> bool:
    return value in ("1", "on", "true", "yes")


@login_required
def question_list(request: HttpRequest) -> HttpResponse:
    filters = selectors.SearchFilters(
        text=request.GET.get("q", "")[:200],
        tag=request.GET.get("tag", "")[:40],
        product=request.GET.get("product", "")[:64],
        unanswered=_flag(request.GET.get("unanswered")),
        solved=_flag(request.GET.get("solved")),
    )
    results = selectors.questions_search(filters=filters, viewer=request.user)[: selectors.MAX_RESULTS]
    page = Paginator(results, selectors.PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    return render(
        request,
        "community/list.html",
        {
            "page": page,
            "filters": filters,
            "products": Product.objects.filter(is_active=True),
            "querystring": request.GET.urlencode() if "page" not in request.GET else _without_page(request),
        },
    )


def _without_page(request: HttpRequest) -> str:
    query = request.GET.copy()
    query.pop("page", None)
    return query.urlencode()


@login_required
def question_ask(request: HttpRequest) -> HttpResponse:
    products = Product.objects.filter(is_active=True)
    values = {"title": "", "body": "", "tags": "", "product": request.GET.get("product", "")}
    error = ""
    if request.method == "POST":
        values = {key: request.POST.get(key, "") for key in values}
        product = products.filter(code=values["product"]).first()
        if product is None:
            error = "Choose the product your question is about."
        else:
            try:
                question = post_services.question_ask(
                    author=request.user,
                    organization=request.organization,  # type: ignore[attr-defined]
                    product=product,
                    title=values["title"],
                    body=values["body"],
                    tags=values["tags"],
                )
            except FlywheelError as refusal:
                error = refusal.message
            else:
                messages.success(request, "Your question is posted.")
                return redirect("community_question", question.public_id)
    return render(
        request, "community/ask.html", {"products": products, "values": values, "error": error}, status=400 if error else 200
    )


def _vote_reason(user: User, reputation: int) -> str:
    """Why the vote buttons the member may not use are not shown (docs/community.md)."""
    for privilege, verb in ((privileges.VOTE_UP, "Voting up"), (privileges.VOTE_DOWN, "Voting down")):
        if not privileges.has_privilege(user=user, reputation=reputation, privilege=privilege):
            return f"{verb} needs {privileges.THRESHOLDS[privilege]} reputation; you have {reputation}."
    return ""


@login_required
def question_detail(request: HttpRequest, public_id) -> HttpResponse:
    question = _question(request, public_id)
    reputation = selectors.reputation_of(user=request.user)
    context = {
        "question": question,
        "answers": selectors.answers_for(question=question, user=request.user),
        "comments": question.comments.select_related("author"),
        "votes": selectors.votes_of(user=request.user, question=question),
        "reputation": reputation,
        "can": {
            name: privileges.has_privilege(user=request.user, reputation=reputation, privilege=name)
            for name in privileges.THRESHOLDS
        },
        "flag_reasons": Flag.Reason.choices,
        "is_asker": question.author_id == request.user.pk,
        "vote_reason": _vote_reason(request.user, reputation),
        "support_promise": selectors.support_promise_for(question=question, user=request.user),
    }
    if request.user.is_staff:
        context["support_addon"] = selectors.support_addons_of([question]).get(question.pk)
        context["escalation"] = Escalation.objects.select_related("engineer__user").filter(question=question).first()
        context["flags"] = question.flags.select_related("user")
    return render(request, "community/question.html", context)


@login_required
def question_edit(request: HttpRequest, public_id) -> HttpResponse:
    question = _question(request, public_id)
    values = {"title": question.title, "body": question.body, "tags": " ".join(t.name for t in question.tags.all())}
    error = ""
    if request.method == "POST":
        values = {key: request.POST.get(key, "") for key in values}
        try:
            post_services.question_edit(question_id=question.pk, editor=request.user, **values)
        except FlywheelError as refusal:
            error = refusal.message
        else:
            messages.success(request, "Your edit is saved.")
            return redirect("community_question", question.public_id)
    return render(
        request, "community/edit.html", {"question": question, "values": values, "error": error}, status=400 if error else 200
    )


@login_required
def answer_edit(request: HttpRequest, public_id) -> HttpResponse:
    answer = _answer(request, public_id)
    values = {"body": answer.body}
    error = ""
    if request.method == "POST":
        values = {"body": request.POST.get("body", "")}
        try:
            post_services.answer_edit(answer_id=answer.pk, editor=request.user, body=values["body"])
        except FlywheelError as refusal:
            error = refusal.message
        else:
            messages.success(request, "Your edit is saved.")
            return redirect("community_question", answer.question.public_id)
    return render(
        request,
        "community/edit.html",
        {"question": answer.question, "answer": answer, "values": values, "error": error},
        status=400 if error else 200,
    )


@login_required
def revisions(request: HttpRequest, public_id) -> HttpResponse:
    question = _question(request, public_id)
    answers = selectors.answers_for(question=question, user=request.user)
    return render(
        request,
        "community/revisions.html",
        {
            "question": question,
            "question_revisions": question.revisions.select_related("editor"),
            "answer_revisions": [(answer, answer.revisions.select_related("editor")) for answer in answers],
        },
    )


@login_required
@require_POST
def answer_create(request: HttpRequest, public_id) -> HttpResponse:
    question = _question(request, public_id)
    return _act(
        request,
        question,
        lambda: post_services.answer_post(question_id=question.pk, author=request.user, body=request.POST.get("body", "")),
        "Your answer is posted.",
    )


@login_required
@require_POST
def comment_create(request: HttpRequest, public_id) -> HttpResponse:
    """A comment on the question (`public_id`) or, with `answer`, on one of its answers."""
    question = _question(request, public_id)
    answer = _answer(request, request.POST["answer"]) if request.POST.get("answer") else None
    return _act(
        request,
        question,
        lambda: post_services.comment_post(
            author=request.user,
            body=request.POST.get("body", ""),
            question_id=None if answer else question.pk,
            answer_id=answer.pk if answer else None,
            asks_for_information=_flag(request.POST.get("asks_for_information")),
        ),
    )


@login_required
@require_POST
def vote(request: HttpRequest, public_id) -> HttpResponse:
    question = _question(request, public_id)
    answer = _answer(request, request.POST["answer"]) if request.POST.get("answer") else None
    value = 1 if request.POST.get("value") == "up" else -1
    return _act(
        request,
        question,
        lambda: vote_services.vote_cast(
            user=request.user, value=value, question_id=None if answer else question.pk, answer_id=answer.pk if answer else None
        ),
    )


@login_required
@require_POST
def accept(request: HttpRequest, public_id) -> HttpResponse:
    answer = _answer(request, public_id)
    return _act(
        request, answer.question, lambda: vote_services.answer_accept(user=request.user, answer_id=answer.pk), "Answer accepted."
    )


@login_required
@require_POST
def flag(request: HttpRequest, public_id) -> HttpResponse:
    question = _question(request, public_id)
    answer = _answer(request, request.POST["answer"]) if request.POST.get("answer") else None
    return _act(
        request,
        question,
        lambda: moderation_services.post_flag(
            user=request.user,
            reason=request.POST.get("reason", ""),
            question_id=None if answer else question.pk,
            answer_id=answer.pk if answer else None,
        ),
        "Thank you: moderators will look at it.",
    )


@login_required
@require_POST
def close(request: HttpRequest, public_id) -> HttpResponse:
    question = _question(request, public_id)
    duplicate_of = None
    if request.POST.get("duplicate_of"):
        text = request.POST["duplicate_of"].strip().rstrip("/").rsplit("/", 1)[-1]
        original = Question.objects.filter(public_id=text).first() if _is_uuid(text) else None
        if original is None:
            messages.error(request, "Give the id of the original question (it is in its address).")
            return redirect("community_question", question.public_id)
        duplicate_of = original.pk
    return _act(
        request,
        question,
        lambda: moderation_services.question_close(moderator=request.user, question_id=question.pk, duplicate_of_id=duplicate_of),
        "The question is closed.",
    )


def _is_uuid(text: str) -> bool:
    try:
        uuid.UUID(text.strip())
    except ValueError:
        return False
    return True


@staff_required
@require_POST
def delete(request: HttpRequest, public_id) -> HttpResponse:
    question = _question(request, public_id)
    try:
        moderation_services.question_delete(moderator=request.user, question_id=question.pk)
    except FlywheelError as error:
        messages.error(request, error.message)
        return redirect("community_question", question.public_id)
    messages.success(request, "The question is deleted.")
    return redirect("community_moderation")


@staff_required
@require_POST
def review(request: HttpRequest, public_id) -> HttpResponse:
    question = _question(request, public_id)
    answer = _answer(request, request.POST["answer"]) if request.POST.get("answer") else None
    keep = request.POST.get("decision") == "keep"
    try:
        moderation_services.post_review(
            moderator=request.user,
            keep=keep,
            question_id=None if answer else question.pk,
            answer_id=answer.pk if answer else None,
        )
    except FlywheelError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, "Kept and shown again." if keep else "Deleted.")
    return redirect("community_moderation")


@staff_required
def moderation(request: HttpRequest) -> HttpResponse:
    questions, answers = selectors.hidden_posts()
    return render(request, "community/moderation.html", {"questions": questions, "answers": answers})


@staff_required
def support_queue(request: HttpRequest) -> HttpResponse:
    mine = request.GET.get("mine") == "1"
    escalations = selectors.support_queue()
    engineer = selectors.engineer_of(user=request.user)
    if mine and engineer is not None:
        escalations = escalations.filter(engineer=engineer)
    names = dict(EscalationPolicy.objects.values_list("support_tier", "name"))
    now = timezone.now()
    rows = list(escalations)
    addons = selectors.support_addons_of([escalation.question for escalation in rows])
    for escalation in rows:
        escalation.tier_name = names.get(escalation.support_tier, escalation.support_tier.capitalize())
        escalation.support_addon = addons.get(escalation.question_id)
        escalation.waiting = now - escalation.escalated_at
    return render(
        request,
        "community/queue.html",
        {"escalations": rows, "engineer": engineer, "mine": mine},
    )


@staff_required
@require_POST
def escalation_reassign(request: HttpRequest, escalation_id: int) -> HttpResponse:
    try:
        assigned = escalation_services.escalation_reassign(moderator=request.user, escalation_id=escalation_id)
    except (FlywheelError, Escalation.DoesNotExist):
        raise Http404("Escalation not found.") from None
    if assigned:
        messages.success(request, "Reassigned.")
    else:
        messages.error(request, "Nobody else on duty has room: it waits in the queue.")
    return redirect("community_support_queue")


@staff_required
def metrics(request: HttpRequest) -> HttpResponse:
    """Staff: per month and support tier, how the community and support did, with each tier's
    deadline so the figures can be read against it."""
    policies = list(EscalationPolicy.objects.order_by("rank"))
    names = {policy.support_tier: policy.name for policy in policies}
    rows = selectors.community_metrics()
    for row in rows:
        row.tier_name = names.get(row.support_tier, row.support_tier.capitalize())
    return render(request, "community/metrics.html", {"rows": rows, "policies": policies})


def unsubscribe(request: HttpRequest, token: str) -> HttpResponse:
    """From the link in every community email: no sign-in needed, the signed token is enough."""
    public_id = unsubscribe_user_public_id(token)
    user = User.objects.filter(public_id=public_id).first() if public_id else None
    if user is None:
        return render(request, "community/unsubscribe.html", {"invalid": True}, status=404)
    if request.method == "POST":
        member_services.notifications_unsubscribe(user=user)
        return render(request, "community/unsubscribe.html", {"done": True, "email": user.email})
    return render(
        request, "community/unsubscribe.html", {"email": user.email, "action": reverse("community_unsubscribe", args=[token])}
    )

