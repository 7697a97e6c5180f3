"""/w/<environment id>/: the builtin workspace's address on Flywheel. A workspace that is ready,
of a product that is usable and has a kit secret, opens in the demo product (launch.py); any
other (being prepared, cancelled, suspended, or a product without a secret yet) is shown by
provisioning's own page, as before. A launch is the person signing in to the product: it counts
as their `signed_in` activity in it (activity.py)."""

from __future__ import annotations

import logging
import uuid

from django.contrib.auth.decorators import login_required
from django.db import DatabaseError, transaction
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.views.decorators.cache import never_cache

from accounts.selectors import get_membership_for_user
from billing.selectors import product_state_of
from common.exceptions import NotFound
from provisioning import views as provisioning_views
from provisioning.models import Environment
from provisioning.selectors import get_environment_for_user

from .activity import signed_in_record
from .identity import kit_secrets_live
from .launch import launch_ticket, launch_url

logger = logging.getLogger(__name__)


@never_cache
@login_required
def workspace_launch(request: HttpRequest, environment_id: uuid.UUID) -> HttpResponse:
    try:
        environment = get_environment_for_user(user=request.user, environment_public_id=environment_id)
        membership = get_membership_for_user(user=request.user, organization_public_id=environment.organization.public_id)
    except NotFound:
        raise Http404 from None
    state = product_state_of(organization=environment.organization, product=environment.product)
    usable = state is None or state.usable
    secrets = kit_secrets_live(product=environment.product)
    secret = secrets[0] if secrets else None  # the newest: the one the demo product was given last
    if environment.status != Environment.Status.ACTIVE or not usable or secret is None:
        return provisioning_views.builtin_workspace(request, environment_id)
    ticket = launch_ticket(environment=environment, membership=membership, secret=secret)
    try:
        with transaction.atomic():
            signed_in_record(membership=membership, product=environment.product)
    except DatabaseError:
        # Counting the sign-in never stands between a person and their product.
        logger.exception("The sign-in to %s could not be recorded as activity", environment.product.code)
    return redirect(launch_url(environment=environment, ticket=ticket))
