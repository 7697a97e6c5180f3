"""`{% page_prompts as prompts %}`: the banners of templates/billing/_prompts.html, read from the
request's membership, so one include line puts them on any page (the billing page's view does
not need to know about them)."""

from __future__ import annotations

from django import template

from billing.formats import time_left_until
from billing.selectors import PagePrompt, page_prompts_for
from billing.views.return_to import ReturnTrip, return_trip_of, with_return_trip

register = template.Library()


@register.simple_tag(takes_context=True)
def page_prompts(context: template.Context, with_states: bool = True) -> list[PagePrompt]:
    request = context.get("request")
    membership = getattr(request, "membership", None) if request is not None else None
    if not membership:
        return []
    return page_prompts_for(membership=membership, with_states=with_states)


@register.simple_tag(takes_context=True)
def return_trip(context: template.Context, organization=None) -> ReturnTrip | None:
    """`{% return_trip organization as return_trip %}`: the product page the person came from
    (`return_to`), on a page outside billing (the members page), only when it is a product's."""
    request = context.get("request")
    return return_trip_of(request, organization=organization) if request is not None else None


@register.filter
def left_until(moment) -> str:
    """`{{ subscription.trial_ends_at|left_until }}`: "13 days", "5 hours"; empty once past."""
    return time_left_until(moment)


@register.filter
def carrying(path: str, trip: ReturnTrip | None) -> str:
    """`{{ prompt.action_url|carrying:return_trip }}`: the address keeping the way back to the
    product the person came from (billing/views/return_to.py)."""
    return with_return_trip(path, trip)
