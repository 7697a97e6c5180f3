"""Signals through which accounts, the lowest app, tells higher apps what happened.

Receivers run synchronously, in the sender's transaction.
"""

from django.dispatch import Signal

# name, user, organization, distinct_id, properties: an analytics event to record.
analytics_event = Signal()

# organization, user, intent (a SignupIntent or None): a new organization with its first admin.
organization_created = Signal()
