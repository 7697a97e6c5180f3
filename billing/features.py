"""Feature checks: may an organization use a feature of a product now, and if not, what grants it
and what it would cost (the API's GET /api/v1/entitlements/check, the in-product kit's
denied-feature message; docs/api.md).

A feature is granted by the subscription's edition or by an add-on that grants now
(billing.selectors.addons_granting). When it is not, the offers are every add-on and every
bigger edition of the product that includes it and that the organization could buy now,
cheapest first by what it would be charged for the rest of the current period: for an
add-on, the add-on's price for the rest of the base's period (prorated like seats); for an
edition, the edition change's price (billing.services.subscriptions.edition_change_quote). A
subscription with no paid period (a trial, the Free edition) is priced at the full monthly
price, and the price's words say so.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import urlencode

from django.conf import settings
from django.urls import reverse
from django.utils import timezone

from accounts.models import Organization
from accounts.services import seats_in_use
from catalog.models import AddOn, Edition, Product
from common.exceptions import NotFound, ValidationError
from common.money import money

from .entitlements import ENTITLED_STATUSES
from .exceptions import CheckoutInvalid
from .formats import day, seats_text
from .models import AddOnSubscription, Subscription
from .pricing import addon_edition_meets, addon_quantity, addon_unit_price
from .selectors import addon_trial_refusal, addons_granting
from .services.addons import addon_quote
from .services.subscriptions import edition_change_quote

ADDON = "addon"
EDITION = "edition"


class UnknownFeature(ValidationError):
    """The product has no such feature (no edition and no add-on of it grants it)."""


@dataclass(frozen=True)
class FeatureOffer:
    """An add-on or an edition that grants the feature, with its price and where to buy it."""

    kind: str  # ADDON | EDITION
    code: str
    name: str
    amount_minor: int
    currency: str
    price_text: str
    trial_days: int
    url: str
    # True when `amount_minor` is the full monthly price (the base has no paid period yet).
    full_month: bool = False
    position: int = 0
    description: str = ""

    def as_json(self) -> dict:
        return {
            "kind": self.kind,
            "code": self.code,
            "name": self.name,
            "amount_minor": self.amount_minor,
            "currency": self.currency,
            "price_text": self.price_text,
            "trial_days": self.trial_days,
            "url": self.url,
        }


@dataclass(frozen=True)
class FeatureCheck:
    """The answer: entitled (and by what), or why not and the offers, cheapest first."""

    product: Product
    feature: str
    entitled: bool
    subscription: Subscription | None = None
    source: dict | None = None  # {"source": "edition"|"addon", "code", "name"}
    reason: str = ""
    offers: list[FeatureOffer] = field(default_factory=list)

    @property
    def cheapest(self) -> FeatureOffer | None:
        return self.offers[0] if self.offers else None

    def as_json(self) -> dict:
        if self.entitled:
            return {"product": self.product.code, "feature": self.feature, "entitled": True, "source": self.source}
        cheapest = self.cheapest
        return {
            "product": self.product.code,
            "feature": self.feature,
            "entitled": False,
            "source": None,
            "reason": self.reason,
            "offers": [offer.as_json() for offer in self.offers],
            "cheapest": cheapest.as_json() if cheapest is not None else None,
        }


def product_features(*, product: Product) -> list[str]:
    """Every feature the product's active editions and add-ons grant, editions' first."""
    features: list[str] = []
    for edition in Edition.objects.filter(product=product, is_active=True).order_by("rank"):
        features.extend(feature for feature in edition.features or [] if feature not in features)
    for addon in AddOn.objects.filter(product=product, is_active=True).order_by("position", "code"):
        features.extend(feature for feature in addon.features or [] if feature not in features)
    return features


def _page(path: str, organization: Organization, **params: str) -> str:
    """An absolute address on Flywheel naming the organization (`?organization=`, which
    accounts' middleware honours), as billing's prompts build theirs."""
    return f"{settings.SITE_URL}{path}?{urlencode({**params, 'organization': str(organization.public_id)})}"


def addon_page_url(*, subscription: Subscription, addon: AddOn) -> str:
    """The add-on's page on Flywheel (its price and one button; the add-on pages' route)."""
    return _page(reverse("addon_buy", args=[subscription.public_id, addon.code]), subscription.organization)


def _per(interval: str) -> str:
    return "month" if interval == Subscription.Interval.MONTH else "year"


def _has_paid_period(subscription: Subscription, at: datetime) -> bool:
    return bool(
        subscription.status == Subscription.Status.ACTIVE
        and subscription.interval
        and subscription.current_period_start
        and subscription.current_period_end
        and subscription.current_period_end > at
    )


def _addon_unit_text(addon: AddOn, unit_minor: int, interval: str) -> str:
    if addon.pricing == AddOn.Pricing.PER_SEAT:
        return f"{money(unit_minor, addon.currency)} per seat per {_per(interval)}"
    return f"{money(unit_minor, addon.currency)} per {_per(interval)}"


def addon_price(*, subscription: Subscription, addon: AddOn, at: datetime | None = None) -> tuple[int, str, bool]:
    """What buying `addon` on `subscription` would be charged now, in words, and whether that is
    the full monthly price: for a paid base, the add-on checkout's quote
    (billing.services.addons.addon_quote: the add-on for the rest of the base's period,
    prorated like seats); for a base with no paid period, its full monthly price; a one-off
    add-on's one price. CheckoutInvalid when the add-on checkout refuses a paid base's (the
    sentence says why)."""
    at = at or timezone.now()
    if addon.pricing == AddOn.Pricing.ONE_OFF:
        amount = addon_unit_price(addon, Subscription.Interval.MONTH)
        return amount, f"{money(amount, addon.currency)}, once", False
    if _has_paid_period(subscription, at):
        quote = addon_quote(subscription=subscription, addon=addon, at=at)
        return (
            quote.amount_minor,
            f"{money(quote.amount_minor, addon.currency)} for the rest of this period, until {day(quote.period_end)}, "
            f"then {_addon_unit_text(addon, quote.unit_amount_minor, quote.interval)}",
            False,
        )
    quantity = addon_quantity(addon, seat_limit=subscription.seat_limit)
    unit = addon_unit_price(addon, Subscription.Interval.MONTH)
    amount = unit * quantity
    detail = (
        f" ({seats_text(quantity)} at {_addon_unit_text(addon, unit, Subscription.Interval.MONTH)})"
        if addon.pricing == AddOn.Pricing.PER_SEAT
        else ""
    )
    return (
        amount,
        f"{money(amount, addon.currency)} per month{detail}: the full monthly price, "
        f"as {subscription.product.name} has no paid period yet",
        True,
    )


def _addon_offers(subscription: Subscription, feature: str, at: datetime) -> tuple[list[FeatureOffer], list[str]]:
    """The add-ons that grant `feature` and can be bought on `subscription`, and a sentence for
    each that grants it but cannot."""
    offers: list[FeatureOffer] = []
    refusals: list[str] = []
    live = dict(
        AddOnSubscription.objects.filter(
            subscription=subscription, status__in=AddOnSubscription.LIVE_STATUSES
        ).values_list("addon_id", "status")
    )
    product, edition = subscription.product, subscription.edition
    for addon in (
        AddOn.objects.filter(product=subscription.product, is_active=True)
        .select_related("min_edition")
        .order_by("position", "code")
    ):
        if feature not in (addon.features or []):
            continue
        if live.get(addon.pk) == AddOnSubscription.Status.SUSPENDED:
            refusals.append(
                f"{addon.name} is suspended: its invoice is overdue. Pay it from the billing page to use it again."
            )
            continue
        if addon.pk in live:
            continue  # trialing or active: it grants unless the base is not entitled (said apart)
        if not addon_edition_meets(addon, edition):
            refusals.append(
                f"{addon.name} needs {product.name} {addon.min_edition.name} or above; you are on {edition.name}."
            )
            continue
        try:
            amount, text, full_month = addon_price(subscription=subscription, addon=addon, at=at)
        except CheckoutInvalid as refusal:
            refusals.append(refusal.message)
            continue
        offers.append(
            FeatureOffer(
                kind=ADDON,
                code=addon.code,
                name=addon.name,
                amount_minor=amount,
                currency=addon.currency,
                price_text=text,
                trial_days=0 if addon_trial_refusal(subscription=subscription, addon=addon) else addon.trial_days,
                url=addon_page_url(subscription=subscription, addon=addon),
                full_month=full_month,
                position=addon.position,
                description=addon.description,
            )
        )
    return offers, refusals


def _edition_offers(subscription: Subscription, feature: str, at: datetime) -> list[FeatureOffer]:
    """The product's bigger active editions that include `feature`: the change of edition's
    price for a paid subscription, else the full monthly price of checking out on it."""
    organization = subscription.organization
    offers: list[FeatureOffer] = []
    paid = _has_paid_period(subscription, at)
    for edition in Edition.objects.filter(
        product=subscription.product, is_active=True, rank__gt=subscription.edition.rank, monthly_price_minor__gt=0
    ).order_by("rank"):
        if feature not in (edition.features or []):
            continue
        if paid:
            try:
                quote = edition_change_quote(subscription=subscription, edition=edition, at=at)
            except CheckoutInvalid:
                continue
            amount = quote.total_minor
            text = (
                f"{money(amount, edition.currency)} for the rest of this period, until {day(quote.period_end)}, "
                f"then {money(quote.new_unit_minor, edition.currency)} per seat per {_per(quote.interval)}"
            )
            url = _page(reverse("change_edition", args=[subscription.public_id]), organization, edition=edition.code)
        else:
            seats = max(1, seats_in_use(organization=organization))
            unit = edition.monthly_price_minor
            amount = unit * seats
            text = (
                f"{money(amount, edition.currency)} per month ({seats_text(seats)} at "
                f"{money(unit, edition.currency)} per seat per month): the full monthly price, "
                f"as {subscription.product.name} has no paid period yet"
            )
            url = _page(reverse("checkout", args=[subscription.public_id]), organization, edition=edition.code)
        offers.append(
            FeatureOffer(
                kind=EDITION,
                code=edition.code,
                name=f"{subscription.product.name} {edition.name}",
                amount_minor=amount,
                currency=edition.currency,
                price_text=text,
                trial_days=0,
                url=url,
                full_month=not paid,
                position=edition.rank,
            )
        )
    return offers


def feature_check(
    *, organization: Organization, product_code: str, feature: str, at: datetime | None = None
) -> FeatureCheck:
    """May `organization` use `feature` of the product now? NotFound for a product that does not
    exist; UnknownFeature for a feature no edition or add-on of it grants."""
    at = at or timezone.now()
    product = Product.objects.filter(code=(product_code or "").strip()).first()
    if product is None:
        raise NotFound(f"There is no product {product_code!r}: use a product code such as tracker.")
    feature = (feature or "").strip()
    known = product_features(product=product)
    if feature not in known:
        raise UnknownFeature(
            f"{product.name} has no feature {feature!r}: its features are {', '.join(known) or 'none'}."
        )
    subscription = (
        Subscription.objects.filter(organization=organization, product=product)
        .exclude(status=Subscription.Status.CANCELED)
        .select_related("product", "edition", "organization")
        .order_by("-created_at")
        .first()
    )
    if subscription is None:
        return FeatureCheck(
            product,
            feature,
            False,
            reason=f"{organization.name} has no {product.name} subscription: try or buy {product.name} "
            "on Flywheel's billing page first.",
        )
    edition = subscription.edition
    if subscription.status not in ENTITLED_STATUSES:
        return FeatureCheck(
            product,
            feature,
            False,
            subscription,
            reason=f"{product.name} is suspended for {organization.name}: pay the open invoice on Flywheel's "
            f"billing page to use it again.",
        )
    if feature in (edition.features or []):
        source = {"source": EDITION, "code": edition.code, "name": edition.name}
        return FeatureCheck(product, feature, True, subscription, source=source)
    for row in addons_granting(organization_id=organization.pk, product_id=product.pk).order_by("addon__position"):
        if feature in (row.addon.features or []):
            source = {"source": ADDON, "code": row.addon.code, "name": row.addon.name}
            return FeatureCheck(product, feature, True, subscription, source=source)
    addon_offers, refusals = _addon_offers(subscription, feature, at)
    offers = sorted(
        addon_offers + _edition_offers(subscription, feature, at),
        key=lambda offer: (offer.amount_minor, offer.kind != ADDON, offer.position),
    )
    reason = f"{product.name} {edition.name} does not include {feature}."
    if refusals:
        reason += " " + " ".join(refusals)
    if subscription.status == Subscription.Status.PAST_DUE:
        reason += f" {product.name}'s payment is past due: pay it on Flywheel's billing page first."
        offers = []
    elif offers:
        cheapest = offers[0]
        reason += f" {cheapest.name} includes it: {cheapest.price_text}."
    elif not refusals:
        reason += f" Nothing {organization.name} can buy now adds it: write to us from Flywheel's help page."
    return FeatureCheck(product, feature, False, subscription, reason=reason, offers=offers)
