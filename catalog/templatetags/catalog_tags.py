from django import template

from common import money as money_format

register = template.Library()


@register.filter
def money(minor_units: int, currency: str = "") -> str:
    """`{{ amount_minor|money:currency }}`: common.money.money in templates."""
    return money_format.money(minor_units, currency)
