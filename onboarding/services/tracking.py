"""Opens and clicks of onboarding emails.
"""

from __future__ import annotations

from django.core import signing
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme

from experiments.services import event_record

from .. import events
from ..exceptions import LinkInvalid
from ..models import Send
from .enrolments import enrolment_variant_properties
from .messages import link_hosts
from .tokens import CLICK_SALT, OPEN_SALT


def _send_by_public_id(public_id: str) -> Send | None:
    try:
        return Send.objects.select_related("enrolment__user", "enrolment__organization", "enrolment__sequence").filter(public_id=public_id).first()
    except (ValueError, TypeError, ValidationError):  # not a UUID
        return None


@transaction.atomic
def send_open_record(*, token: str) -> Send | None:
    """Count an open (the pixel was loaded); the first one is an analytics event. A bad token
    records nothing."""
    try:
        public_id = signing.loads(token, salt=OPEN_SALT)
    except signing.BadSignature:
        return None
    send = _send_by_public_id(public_id)
    if send is None:
        return None
    now = timezone.now()
    first = Send.objects.filter(pk=send.pk, opened_at__isnull=True).update(opened_at=now)
    Send.objects.filter(pk=send.pk).update(open_count=F("open_count") + 1)
    if first:
        enrolment = send.enrolment
        event_record(
            name=events.ONBOARDING_EMAIL_OPENED,
            user=enrolment.user,
            organization=enrolment.organization,
            properties={**enrolment_variant_properties(enrolment), "step": send.step.position},
        )
    return send


@transaction.atomic
def send_click_record(*, token: str) -> str:
    """The destination of a signed click link, after counting the click (an analytics event).

    Refused (LinkInvalid) when the token is forged or tampered with, or when its URL is not
    on one of our own hosts: the redirect can never be used to send people elsewhere.
    """
    try:
        payload = signing.loads(token, salt=CLICK_SALT)
    except signing.BadSignature:
        raise LinkInvalid() from None
    url = payload.get("u") if isinstance(payload, dict) else None
    if not isinstance(url, str) or not url_has_allowed_host_and_scheme(url, allowed_hosts=link_hosts(), require_https=False) or not url.lower().startswith(("http://", "https://")):
        raise LinkInvalid("This link does not lead to a Flywheel page.")
    send = _send_by_public_id(payload.get("s", ""))
    if send is not None:
        now = timezone.now()
        Send.objects.filter(pk=send.pk, clicked_at__isnull=True).update(clicked_at=now)
        Send.objects.filter(pk=send.pk).update(click_count=F("click_count") + 1)
        enrolment = send.enrolment
        event_record(
            name=events.ONBOARDING_EMAIL_CLICKED,
            user=enrolment.user,
            organization=enrolment.organization,
            properties={**enrolment_variant_properties(enrolment), "step": send.step.position, "url": url},
        )
    return url
