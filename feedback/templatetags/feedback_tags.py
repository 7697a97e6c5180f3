from django import template

from ..reports import format_nps

register = template.Library()


@register.filter
def nps(value: float | None) -> str:
    """An NPS as a signed whole number of points ("+34", "-5"), or a dash when there is none."""
    return format_nps(value)


@register.filter
def bar_width(value: float | None) -> int:
    """An NPS (-100..100) as a percentage width (0..100) for a CSS bar."""
    if value is None:
        return 0
    return round((value + 100) / 2)
