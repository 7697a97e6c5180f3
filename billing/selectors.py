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


def get_subscription_for_user(*, user, subscription_public_id) -> Subscription:
    """A subscription of an organization the user belongs to; NotFound for anyone else's."""
    from accounts.models import Membership
    from common.exceptions import NotFound

    subscription = (
        Subscription.objects.select_related("organization", "product", "edition")
        .filter(
            public_id=subscription_public_id,
            organization__in=Membership.objects.filter(user=user).values("organization"),
        )
        .first()
    )
    if subscription is None:
        raise NotFound("Subscription not found.")
    return subscription


def get_payment_for_user(*, user, payment_public_id):
    from accounts.models import Membership
    from common.exceptions import NotFound

    from .models import Payment

    payment = (
        Payment.objects.select_related("invoice__subscription__product", "invoice__target_edition", "organization")
        .filter(
            public_id=payment_public_id,
            organization__in=Membership.objects.filter(user=user).values("organization"),
        )
        .first()
    )
    if payment is None:
        raise NotFound("Payment not found.")
    return payment


def invoices_of(*, organization: Organization):
    from .models import Invoice

    return Invoice.objects.filter(organization=organization).select_related("subscription__product").order_by("-issued_at")


def get_open_invoice_for_organization(*, organization: Organization, invoice_public_id):
    """An open invoice of this organization; NotFound for any other (another tenant's too)."""
    from common.exceptions import NotFound

    from .models import Invoice

    invoice = Invoice.objects.filter(
        organization=organization, public_id=invoice_public_id, status=Invoice.Status.OPEN
    ).first()
    if invoice is None:
        raise NotFound("Invoice not found.")
    return invoice
