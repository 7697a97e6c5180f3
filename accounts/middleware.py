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
# A link from outside the page (a product's prompt, an email) names the organization it is about:
# `?organization=<public id>`. An admin of two organizations must land in the one the link is
# about, not the one they happen to be working in. Anything that is not one of the person's
# organizations is ignored; either way the page is shown without the parameter.
ORGANIZATION_PARAMETER = "organization"
# Not pages: the JSON APIs and the admin read their own parameters.
NOT_PAGES = ("/api/", "/kit/", "/admin/")


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


def _organization_named(request):
    """The person's membership of the organization a link names, or None."""
    import uuid

    from .models import Membership

    try:
        public_id = uuid.UUID(request.GET.get(ORGANIZATION_PARAMETER, ""))
    except ValueError:
        return None
    return Membership.objects.filter(user=request.user, organization__public_id=public_id).first()


def _without_organization(request) -> str:
    query = request.GET.copy()
    query.pop(ORGANIZATION_PARAMETER, None)
    return f"{request.path}?{query.urlencode()}" if query else request.path


class CurrentOrganizationMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if (
            request.method == "GET"
            and ORGANIZATION_PARAMETER in request.GET
            and request.user.is_authenticated
            and not request.path.startswith(NOT_PAGES)
        ):
            from django.shortcuts import redirect

            named = _organization_named(request)
            if named is not None:
                request.session[ORGANIZATION_KEY] = str(named.organization.public_id)
            return redirect(_without_organization(request))
        membership = current_membership(request)
        request.membership = membership
        request.organization = membership.organization if membership is not None else None
        return self.get_response(request)
