"""Receivers for signals of lower apps: each one line that calls a service."""

from django.dispatch import receiver

from accounts.signals import analytics_event

from .services import event_record


@receiver(analytics_event, dispatch_uid="experiments.record_accounts_event")
def record_accounts_event(sender, *, name, user=None, organization=None, distinct_id=None, properties=None, **kwargs):
    event_record(name=name, user=user, organization=organization, distinct_id=distinct_id, properties=properties)
