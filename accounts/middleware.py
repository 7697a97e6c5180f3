"""Sets request.membership and request.organization: the organization the user is working in.

The choice is kept in the session and always re-checked against the user's memberships, so a
tampered or stale session can never point at another tenant.

Both are real values, a Membership and an Organization, or None (anonymous users, and users in
no organization, such as staff). They used to be SimpleLazyObjects around a possibly-None
value: such a proxy is never `None` itself, so `organization is not None` was always true and a
service handed the proxy of None answered 500 (a staff member asking a community question). The
membership is read once per signed-in request, one indexed query, which every page's header
needs anyway (accounts/context_processors.py).
"""

ORGANIZATION_KEY = "flywheel_organization_id"


def current_membership(request):
    """The membership of the organization the user works in, or None."""
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
        membership = current_membership(request)
        request.membership = membership
        request.organization = membership.organization if membership is not None else None
        return self.get_response(request)
