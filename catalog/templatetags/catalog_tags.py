from django import template

register = template.Library()


@register.filter
def money(minor_units: int, currency: str = "") -> str:
    """Integer minor units as a decimal amount: 2062 -> "20.62" (two-decimal currencies)."""
    minor_units = int(minor_units)
    sign = "-" if minor_units < 0 else ""
    whole, cents = divmod(abs(minor_units), 100)
    amount = f"{sign}{whole:,}.{cents:02d}"
    return f"{currency} {amount}" if currency else amount
