from django.db.models import QuerySet

from accounts.models import Organization

from .models import Subscription


def subscriptions_of(*, organization: Organization) -> QuerySet[Subscription]:
    return (
        Subscription.objects.filter(organization=organization)
        .exclude(status=Subscription.Status.CANCELED)
        .select_related("product", "edition")
        .order_by("created_at")
    )
