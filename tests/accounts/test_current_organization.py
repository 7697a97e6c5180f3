"""request.organization and request.membership are real values or None, so `is None` means it
(a lazy proxy around None is never None: the staff member's community question was a 500)."""

from __future__ import annotations

from django.contrib.auth.models import AnonymousUser
from django.test import RequestFactory

from accounts.middleware import ORGANIZATION_KEY, CurrentOrganizationMiddleware
from accounts.models import Membership, Organization

from ..conftest import organization_on
from ..factories import MembershipFactory, OrganizationFactory, UserFactory


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


def test_a_link_naming_one_of_the_persons_organizations_lands_in_it(client, catalog):
    """A prompt's link (`?organization=`) from a product of organization A opens A's page even
    when its admin was working in B on Flywheel; the parameter is dropped, the rest kept."""
    first, admin = organization_on("standard")
    second = OrganizationFactory(created_by=admin)
    MembershipFactory(organization=second, user=admin, role=Membership.Role.ADMIN)
    client.force_login(admin)
    session = client.session
    session[ORGANIZATION_KEY] = str(second.public_id)
    session.save()

    response = client.get("/billing/", {"organization": str(first.public_id), "return_to": "x"})
    assert response.status_code == 302 and response["Location"] == "/billing/?return_to=x"
    assert client.session[ORGANIZATION_KEY] == str(first.public_id)
    assert client.get("/billing/").context["organization"] == first


def test_a_link_naming_another_tenant_or_no_organization_changes_nothing(client, catalog):
    mine, admin = organization_on("standard")
    theirs, _ = organization_on("standard")
    client.force_login(admin)
    for value in (str(theirs.public_id), "not-an-id", ""):
        response = client.get("/app/members/", {"organization": value})
        assert (response.status_code, response["Location"]) == (302, "/app/members/")
        assert client.session.get(ORGANIZATION_KEY) != str(theirs.public_id)
    assert client.get("/app/members/").context["organization"] == mine
    # Not pages: the API reads its own parameters and is never redirected.
    assert client.get("/api/v1/ping", {"organization": str(mine.public_id)}).status_code == 200
