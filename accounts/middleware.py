"""Sets request.membership and request.organization: the organization the user is working in.

The choice is kept in the session and always re-checked against the user's memberships, so a
tampered or stale session can never point at another tenant.
"""

from django.utils.functional import SimpleLazyObject

ORGANIZATION_KEY = "flywheel_organization_id"


def _current_membership(request):
    from .models import Membership

    user = request.user
    if not user.is_authenticated:
        return None
    memberships = Membership.objects.filter(user=user).select_related("organization")
    chosen = request.session.get(ORGANIZATION_KEY)
    if chosen:
        membership = memberships.filter(organization__public_id=chosen).first()
        if membership is not None:
            return membership
    return memberships.order_by("created_at", "pk").first()


class CurrentOrganizationMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        membership = SimpleLazyObject(lambda: _current_membership(request))
        request.membership = membership
        request.organization = SimpleLazyObject(
            lambda: membership.organization if membership else None  # noqa: B023
        )
        return self.get_response(request)
