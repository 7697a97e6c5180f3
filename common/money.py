"""Money as people read it. Amounts are integer minor units plus an ISO currency code."""

from __future__ import annotations


def money(minor_units: int, currency: str = "") -> str:
    """Integer minor units as money (two-decimal currencies): 2062, "USD" -> "USD 20.62".

    A negative amount (a credit) keeps the sign in front of the whole: -815 -> "-USD 8.15".
    Without a currency, the bare amount (for a column whose heading names the currency).
    """
    minor_units = int(minor_units)
    sign = "-" if minor_units < 0 else ""
    whole, cents = divmod(abs(minor_units), 100)
    amount = f"{whole:,}.{cents:02d}"
    return f"{sign}{currency} {amount}" if currency else f"{sign}{amount}"
