def organizations(request):
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    from .selectors import memberships_for_user

    membership = getattr(request, "membership", None)
    return {
        "current_membership": membership if membership else None,
        "current_organization": membership.organization if membership else None,
        "my_memberships": memberships_for_user(user=user),
    }
