"""Money as a customer reads it: the currency, two decimals, a credit's sign in front."""

import pytest

from common.money import money


@pytest.mark.parametrize(
    ("minor", "currency", "shown"),
    [(815, "USD", "USD 8.15"), (123456, "USD", "USD 1,234.56"), (-815, "USD", "-USD 8.15"), (5, "", "0.05"), (-5, "", "-0.05")],
)
def test_money(minor, currency, shown):
    assert money(minor, currency) == shown
