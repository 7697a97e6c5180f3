"""Receivers for lower apps' signals, each one line that calls a service."""

from celery.signals import worker_process_shutdown, worker_shutdown
from django.dispatch import receiver

from accounts.signals import organization_created

from .mail import kept_connections_close
from .services.enrolments import enrolment_create


# Enrolment on `organization_created`, not allauth's `user_signed_up` or `email_confirmed`: it
# fires once per new trial organization, after the address was verified (so no marketing email
# goes to an address nobody proved), in the same transaction as the organization and its trial,
# with the organization the conversion to paid is measured on. People who join an existing
# customer by invite or domain are not trial signups and are not enrolled.
@receiver(organization_created, dispatch_uid="onboarding.enrol_on_signup")
def enrol_on_signup(sender, *, organization, user, **kwargs):
    enrolment_create(user=user, organization=organization)


# A worker process that stops says goodbye (QUIT) on the SMTP connections it kept open between
# chunks, rather than leaving the server to time them out: each prefork child, or the worker
# itself with the threads or solo pool.
@worker_process_shutdown.connect(dispatch_uid="onboarding.smtp_goodbye_child", weak=False)
@worker_shutdown.connect(dispatch_uid="onboarding.smtp_goodbye", weak=False)
def smtp_goodbye(**kwargs):
    kept_connections_close()
