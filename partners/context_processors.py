def partner_navigation(request):
    """`is_partner_organization`: the organization the person works in is an active partner (the
    header then links its partner dashboard). One indexed query, signed-in pages only, lazily:
    a template that never asks pays nothing."""
    organization = getattr(request, "organization", None)
    if organization is None:
        return {}
    from django.utils.functional import SimpleLazyObject

    from .models import Partner

    return {
        "is_partner_organization": SimpleLazyObject(
            lambda: Partner.objects.filter(organization=organization, status=Partner.Status.ACTIVE).exists()
        )
    }
