"""The kit's answers (message_cache.py) are forgotten when what they were computed from changes.

The organization's and the catalog's entitlements generations (billing/receivers.py) already
cover subscriptions, invoices, memberships, invites, products and editions; the person's kit
generation covers what is the person's own. Each receiver is one line that calls a service.
Writes made with a queryset update() send no signal: the service that makes one that changes
an answer calls kit_person_changed itself (the session's claim and close do).
"""

from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from accounts.models import Membership, Organization, User
from billing.entitlements import entitlements_invalidate, entitlements_invalidate_catalog
from billing.models import BillingAccount, Payment, PromptDismissal
from experiments.models import Experiment, Feature, Variation
from feedback.models import Response, Survey, SurveyState

from .message_cache import kit_person_changed
from .models import AdminAsk, InviteNudgeEmail, KitSession, OfferClosed, ProductSuccess


# The person's own: billing's prompt dismissals (the kit's, the server API's, Flywheel's pages),
# the survey (asked, answered, dismissed: the kit's, feedback's API's and pages'), the offers
# closed, success moments, asks to the admins, the nudge's email, and a kit session started
# (the invite nudge counts the days with one).
@receiver(post_save, sender=PromptDismissal, dispatch_uid="inproduct.kit_answers.prompt_dismissal")
@receiver(post_delete, sender=PromptDismissal, dispatch_uid="inproduct.kit_answers.prompt_dismissal_deleted")
@receiver(post_save, sender=Survey, dispatch_uid="inproduct.kit_answers.survey")
@receiver(post_save, sender=SurveyState, dispatch_uid="inproduct.kit_answers.survey_state")
@receiver(post_save, sender=Response, dispatch_uid="inproduct.kit_answers.response")
@receiver(post_save, sender=OfferClosed, dispatch_uid="inproduct.kit_answers.offer_closed")
@receiver(post_delete, sender=OfferClosed, dispatch_uid="inproduct.kit_answers.offer_closed_deleted")
@receiver(post_save, sender=ProductSuccess, dispatch_uid="inproduct.kit_answers.product_success")
@receiver(post_save, sender=AdminAsk, dispatch_uid="inproduct.kit_answers.admin_ask")
@receiver(post_save, sender=InviteNudgeEmail, dispatch_uid="inproduct.kit_answers.invite_nudge_email")
@receiver(post_save, sender=KitSession, dispatch_uid="inproduct.kit_answers.kit_session")
def person_answers_changed(sender, *, instance, **kwargs):
    kit_person_changed(user_id=instance.user_id)


# The organization's: a payment (failed or paid), the card on file, its name.
@receiver(post_save, sender=Payment, dispatch_uid="inproduct.kit_answers.payment")
@receiver(post_save, sender=BillingAccount, dispatch_uid="inproduct.kit_answers.billing_account")
def organization_answers_changed(sender, *, instance, **kwargs):
    entitlements_invalidate(organization_id=instance.organization_id)


@receiver(post_save, sender=Organization, dispatch_uid="inproduct.kit_answers.organization")
def organization_saved(sender, *, instance, **kwargs):
    entitlements_invalidate(organization_id=instance.pk)


# A person's name (shown to members as an admin's) or activity (a deactivated user's kit is
# refused) in each organization they belong to; a sign-in's last_login alone changes neither.
@receiver(post_save, sender=User, dispatch_uid="inproduct.kit_answers.user")
def user_saved(sender, *, instance, update_fields=None, **kwargs):
    if update_fields is not None and set(update_fields) <= {"last_login"}:
        return
    for organization_id in Membership.objects.filter(user_id=instance.pk).values_list("organization_id", flat=True):
        entitlements_invalidate(organization_id=organization_id)


# Staff change an experiment (the invite nudge) or a feature flag (the prompts' copy): every
# answer may change.
@receiver(post_save, sender=Experiment, dispatch_uid="inproduct.kit_answers.experiment")
@receiver(post_save, sender=Variation, dispatch_uid="inproduct.kit_answers.variation")
@receiver(post_save, sender=Feature, dispatch_uid="inproduct.kit_answers.feature")
@receiver(post_delete, sender=Feature, dispatch_uid="inproduct.kit_answers.feature_deleted")
def everyones_answers_changed(sender, **kwargs):
    entitlements_invalidate_catalog()
