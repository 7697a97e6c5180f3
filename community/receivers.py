"""Receivers for lower apps' signals, each one line that calls a service."""

from django.dispatch import receiver

from billing.signals import addon_grants_changed

from .services.question_clock import question_clocks_follow_support_tier


# Premium support bought (or any change of what an organization's add-ons grant on a product):
# its open questions on that product take the better tier at once, their clocks recomputed.
# Sent after billing's transaction commits; a tier going down changes no clock.
@receiver(addon_grants_changed, dispatch_uid="community.support_tier_follows_addons")
def support_tier_follows_addons(sender, *, organization_id, product_id, **kwargs):
    question_clocks_follow_support_tier(organization_id=organization_id, product_id=product_id)
