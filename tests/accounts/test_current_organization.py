"""request.organization and request.membership are real values or None, so `is None` means it
(a lazy proxy around None is never None: the staff member's community question was a 500)."""

from __future__ import annotations

from django.contrib.auth.models import AnonymousUser
from django.test import RequestFactory

from accounts.middleware import CurrentOrganizationMiddleware
from accounts.models import Membership, Organization

from ..factories import UserFactory


def _through_middleware(user):
    request = RequestFactory().get("/app/")
    request.user = user
    request.session = {}
    seen = {}

    def view(request):
        seen.update(organization=request.organization, membership=request.membership)

    CurrentOrganizationMiddleware(view)(request)
    return seen


def test_a_user_in_no_organization_has_none(db):
    seen = _through_middleware(UserFactory(is_staff=True))
    assert seen["organization"] is None and seen["membership"] is None


def test_a_visitor_has_none(db):
    seen = _through_middleware(AnonymousUser())
    assert seen["organization"] is None and seen["membership"] is None


def test_a_member_has_their_organization_itself(trial_organization):
    organization, admin = trial_organization
    seen = _through_middleware(admin)
    assert type(seen["organization"]) is Organization and seen["organization"] == organization
    assert type(seen["membership"]) is Membership and seen["membership"].user == admin
