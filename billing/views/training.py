"""Training: the organization's credits (packs bought with a training add-on, each with its
expiry), the catalog's courses to assign colleagues to, and the assignments; members see their
own. And the staff's page of who used what."""

from __future__ import annotations

import uuid
from datetime import timedelta

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from accounts.exceptions import FlywheelError
from accounts.selectors import members_of
from catalog.models import AddOn
from common.exceptions import NotFound
from common.staff import staff_required

from ..exceptions import CheckoutInvalid
from ..formats import day
from ..selectors import (
    addon_offers_of,
    get_training_assignment_for_user,
    training_assignments_of,
    training_courses_of,
    training_packs_expiring,
    training_packs_of,
    training_usage,
)
from ..services.training import training_assign, training_balance, training_withdraw
from .access import admin_organization, member_organization

# The staff page's horizons: assignments of the last 90 days, packs expiring within 60.
STAFF_USAGE_DAYS = 90
STAFF_EXPIRING_DAYS = 60


@login_required
def training_page(request: HttpRequest) -> HttpResponse:
    """Admins: the balance and its next expiry (per product: a pack pays for its product's
    courses), the packs, the courses with a form to assign a colleague, every assignment.
    Members: their own assignments."""
    organization, is_admin = member_organization(request)
    packs = list(training_packs_of(organization=organization)) if is_admin else []
    offers = (
        [offer for offer in addon_offers_of(organization=organization) if offer.addon.pricing == AddOn.Pricing.ONE_OFF]
        if is_admin
        else []
    )
    products = {pack.addon.product.pk: pack.addon.product for pack in packs}
    courses = training_courses_of(organization=organization)
    return render(
        request,
        "billing/training.html",
        {
            "organization": organization,
            "is_admin": is_admin,
            "balance": training_balance(organization=organization) if is_admin else None,
            "product_balances": [
                (product, training_balance(organization=organization, product=product)) for product in products.values()
            ]
            if len(products) > 1
            else [],
            "packs": packs,
            "suspended_packs": [pack for pack in packs if pack.suspended_at and not pack.expired_at],
            "courses": courses,
            "several_products": len({course.product_id for course in courses}) > 1,
            "members": list(members_of(organization=organization)) if is_admin else [],
            "assignments": training_assignments_of(organization=organization, user=None if is_admin else request.user),
            "offers": offers,
        },
    )


@login_required
@require_POST
def training_assign_view(request: HttpRequest) -> HttpResponse:
    """An admin assigns a colleague to a course; its credits come off the balance."""
    organization = admin_organization(request)
    course = next(
        (
            c
            for c in training_courses_of(organization=organization)
            if (c.product.code, c.code) == (request.POST.get("product"), request.POST.get("course"))
        ),
        None,
    )
    member = next(
        (m for m in members_of(organization=organization) if str(m.user.public_id) == request.POST.get("user", "")), None
    )
    try:
        if course is None:
            raise CheckoutInvalid("Choose a course from the list.")
        if member is None:
            raise CheckoutInvalid("Choose a colleague from your organization's members.")
        assignment = training_assign(organization=organization, actor=request.user, course=course, user=member.user)
    except FlywheelError as refusal:
        messages.error(request, refusal.message)
        return _refused(request)
    messages.success(
        request,
        f"{_person(member.user)} is assigned to {course.name}: {assignment.credits} credit{'s' if assignment.credits != 1 else ''} used.",
    )
    return redirect("training")


def _refused(request: HttpRequest) -> HttpResponse:
    """A refused form: the training page again, with the reason on top, answered 400."""
    response = training_page(request)
    response.status_code = 400
    return response


def _person(user) -> str:
    return user.get_full_name() or user.email


@login_required
@require_POST
def training_withdraw_view(request: HttpRequest, assignment_id: uuid.UUID) -> HttpResponse:
    """An admin withdraws an assignment; its credits go back to packs that have not expired."""
    organization = admin_organization(request)
    try:
        assignment = get_training_assignment_for_user(
            user=request.user, organization=organization, assignment_public_id=assignment_id
        )
    except NotFound:
        raise Http404 from None
    try:
        training_withdraw(assignment=assignment, actor=request.user)
    except FlywheelError as refusal:
        messages.error(request, refusal.message)
        return _refused(request)
    messages.success(request, f"{_person(assignment.user)} is no longer assigned to {assignment.course.name}.")
    return redirect("training")


@staff_required
def staff_training(request: HttpRequest) -> HttpResponse:
    """Staff: who used which training credits (organization, person, course, credits, when),
    and the packs whose unused credits expire soon."""
    now = timezone.now()
    since = now - timedelta(days=STAFF_USAGE_DAYS)
    assignments = list(training_usage(since=since)[:500])
    return render(
        request,
        "billing/staff_training.html",
        {
            "since": since,
            "usage_days": STAFF_USAGE_DAYS,
            "expiring_days": STAFF_EXPIRING_DAYS,
            "assignments": assignments,
            "credits_spent": sum(a.credits for a in assignments if not a.withdrawn_at),
            "expiring": training_packs_expiring(within=timedelta(days=STAFF_EXPIRING_DAYS)),
            "today": day(now),
        },
    )
