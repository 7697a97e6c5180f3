"""Billing's own signals, for the apps above it."""

from django.dispatch import Signal

# What an organization's add-ons grant on a product changed: one was granted (bought, trial
# started), ended, suspended or reactivated, or its base subscription's status changed the
# add-ons' effect. Sent after the change commits (transaction.on_commit), with keyword
# arguments organization_id (int) and product_id (int). Receivers recompute what depends on it
# (the community's support tier and running escalation clocks).
addon_grants_changed = Signal()
