"""Prices and periods, as pure functions of their arguments (no queries): the unit price of an
edition per billing interval, billing-period arithmetic, proration, and the signed record of a
price shown to an admin (honoured for QUOTE_MAX_AGE)."""

from __future__ import annotations

import calendar
from datetime import datetime, timedelta

from django.conf import settings
from django.core import signing
from django.utils import timezone

from catalog.models import AddOn, Edition
from catalog.services import SUPPORT_TIERS

from .exceptions import CheckoutInvalid
from .models import Subscription


def add_months(moment: datetime, months: int) -> datetime:
    """The same day `months` later, clamped to the month's last day (31 Jan + 1 = 28/29 Feb)."""
    month_index = moment.month - 1 + months
    year, month = moment.year + month_index // 12, month_index % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


def period_end_after(start: datetime, interval: str) -> datetime:
    """The end of a whole billing period (a month or a year) that begins at `start`."""
    return add_months(start, 1 if interval == Subscription.Interval.MONTH else 12)


def period_seconds(start: datetime, interval: str) -> int:
    """A whole billing period (a month or a year) from `start` (a subscription's current period
    start), what the price is for: prorations divide by this, as the checkout's quote does. It is
    the current period's own length, except for a first period cut short to the organization's
    billing date."""
    return int((period_end_after(start, interval) - start).total_seconds())


def unit_price(edition: Edition, interval: str) -> int:
    """The price of one seat of `edition` for one billing period of `interval` (a month or a year)."""
    return edition.monthly_price_minor if interval == Subscription.Interval.MONTH else edition.annual_price_minor


def prorate(*, full_amount_minor: int, seconds_left: int, seconds_in_period: int) -> int:
    """full x left / period, rounded half up, in integers only."""
    if seconds_in_period <= 0 or seconds_left <= 0:
        return 0
    seconds_left = min(seconds_left, seconds_in_period)
    return (full_amount_minor * seconds_left * 2 + seconds_in_period) // (2 * seconds_in_period)


# Shown prices ----------------------------------------------------------------------------------
# A price shown before money moves is honoured for this long: the confirmation charges the
# amount priced at the moment it was shown. After that the admin sees the price again.
QUOTE_MAX_AGE = timedelta(minutes=15)


def quote_token_make(*, kind: str, subscription: Subscription, detail: str, at: datetime, total_minor: int) -> str:
    """A signed record of a price shown to an admin: what (kind, subscription, detail), when,
    and its total. The confirming form sends it back (quote_token_read)."""
    return signing.dumps(
        {"subscription": str(subscription.public_id), "detail": detail, "at": at.isoformat(), "total": total_minor},
        salt=f"billing.quote.{kind}",
    )


def quote_token_read(*, token: str, kind: str, subscription: Subscription, detail: str) -> tuple[datetime, int]:
    """When the confirmed price was shown and its total. CheckoutInvalid when the token is not a
    price of this change, is from the future, or is older than QUOTE_MAX_AGE."""
    try:
        quoted = signing.loads(token, salt=f"billing.quote.{kind}", max_age=QUOTE_MAX_AGE)
    except signing.SignatureExpired:
        raise CheckoutInvalid(
            "This price was shown more than 15 minutes ago and has changed since: check the new price below and confirm again."
        ) from None
    except signing.BadSignature:
        raise CheckoutInvalid("Open the price first, then confirm it.") from None
    if quoted.get("subscription") != str(subscription.public_id) or quoted.get("detail") != detail:
        raise CheckoutInvalid("Open the price first, then confirm it.")
    at = datetime.fromisoformat(quoted["at"])
    if at > timezone.now():
        raise CheckoutInvalid("Open the price first, then confirm it.")
    return at, int(quoted["total"])


PRICE_CHANGED = (
    "The price has changed since it was shown (the seats, the edition or the period changed): "
    "check the new price below and confirm again."
)


# Add-ons ---------------------------------------------------------------------------------------


def addon_unit_price(addon: AddOn, interval: str) -> int:
    """What one unit of `addon` costs: for one billing period of `interval` (per seat for a
    per-seat add-on, the whole for a flat one), or once for a one-off add-on."""
    if addon.pricing == AddOn.Pricing.ONE_OFF:
        return addon.one_off_price_minor
    return addon.monthly_price_minor if interval == Subscription.Interval.MONTH else addon.annual_price_minor


def addon_quantity(addon: AddOn, *, seat_limit: int) -> int:
    """How many units of `addon` a base subscription with `seat_limit` seats pays for: its
    seats for a per-seat add-on, one otherwise."""
    return seat_limit if addon.pricing == AddOn.Pricing.PER_SEAT else 1


def addon_edition_meets(addon: AddOn, edition: Edition) -> bool:
    """Whether `edition` is the add-on's smallest edition (min_edition) or above, by rank."""
    return addon.min_edition_id is None or edition.rank >= addon.min_edition.rank


def support_tier_rank(tier: str) -> int:
    """community < standard < premium < enterprise (catalog.services.SUPPORT_TIERS); -1 for none."""
    return SUPPORT_TIERS.index(tier) if tier in SUPPORT_TIERS else -1


def addon_edition_includes(addon: AddOn, edition: Edition) -> bool:
    """Whether `edition` already grants everything the add-on grants (its features, a support
    tier as good): buying it would pay for nothing. Never for training (credits)."""
    if addon.pricing == AddOn.Pricing.ONE_OFF or addon.training_credits or not (addon.features or addon.support_tier):
        return False
    features_included = set(addon.features or []) <= set(edition.features or [])
    tier_included = not addon.support_tier or support_tier_rank(edition.support_tier) >= support_tier_rank(addon.support_tier)
    return features_included and tier_included


# A payer's discount ----------------------------------------------------------------------------


def discount_minor(amount_minor: int, discount_bp: int) -> int:
    """What `discount_bp` basis points off `amount_minor` take away, rounded half up in
    integers (1500 bp of 10,000 is 1,500)."""
    if discount_bp <= 0 or amount_minor <= 0:
        return 0
    return (amount_minor * discount_bp * 2 + 10_000) // 20_000


def discount_percent_text(discount_bp: int) -> str:
    """"15 %", "12.5 %"."""
    whole, rest = divmod(discount_bp, 100)
    return f"{whole} %" if rest == 0 else f"{whole}.{rest:02d}".rstrip("0") + " %"


def discount_description(discount_bp: int) -> str:
    """The invoice line of a partner's discount: "Partner discount (Gold, 15 %)", the tier named
    when PARTNER_TIERS has one at that rate (billing knows rates only, never the partners app)."""
    tier = next(
        (tier["name"] for tier in getattr(settings, "PARTNER_TIERS", {}).values() if int(tier.get("discount_bp", -1)) == discount_bp),
        "",
    )
    percent = discount_percent_text(discount_bp)
    return f"Partner discount ({tier}, {percent})" if tier else f"Partner discount ({percent})"
