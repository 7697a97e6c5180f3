"""`addons_demo` (run by `demo_data` in `make run`): Hooli, paid Tracker Standard on
purchase-order terms, can buy Premium support in one click without a card, and its open
question's promised reply time then moves from Standard's 24 business hours to Premium's 8."""

from __future__ import annotations

import io
import uuid

import pytest
from django.core.management import call_command
from django.db import transaction

from accounts.models import Membership
from billing.models import AddOnSubscription, Invoice, Subscription
from billing.selectors import addons_granting
from billing.services.addons import addon_buy, addon_quote
from catalog.models import AddOn
from community.models import Question

pytestmark = pytest.mark.django_db(transaction=True)


def test_hooli_buys_premium_support_on_its_purchase_order_and_its_question_is_promised_sooner(catalog):
    call_command("demo_data", "--only-accounts", stdout=io.StringIO())
    printed = io.StringIO()
    call_command("addons_demo", stdout=printed)
    call_command("addons_demo", stdout=io.StringIO())  # idempotent
    assert "hana@hooli.example" in printed.getvalue() and "PO-4471" in printed.getvalue()

    admin = Membership.objects.select_related("organization", "user").get(user__email="hana@hooli.example")
    hooli = admin.organization
    assert Membership.objects.filter(organization=hooli).count() == 2
    subscription = Subscription.objects.get(organization=hooli, product__code="tracker")
    assert (subscription.status, subscription.edition.code, subscription.interval) == ("active", "standard", "month")
    question = Question.objects.get(author=admin.user)
    assert question.support_tier == "standard" and question.clock == Question.Clock.RUNNING
    standard_deadline = question.deadline

    premium = AddOn.objects.get(product__code="tracker", code="premium-support")
    quote = addon_quote(subscription=subscription, addon=premium)
    assert quote.collection == "invoice" and quote.amount_minor > 0
    with transaction.atomic():
        invoice = addon_buy(
            subscription=subscription, addon=premium, actor=admin.user, request_key=uuid.uuid4().hex, quote_token=quote.token
        )
    assert (invoice.kind, invoice.po_number, invoice.total_minor) == (Invoice.Kind.ADDON, "PO-4471", quote.amount_minor)
    assert AddOnSubscription.objects.get(subscription=subscription, addon=premium).status == "active"
    assert [row.addon.code for row in addons_granting(organization_id=hooli.pk)] == ["premium-support"]

    question.refresh_from_db()
    assert question.support_tier == "premium"
    assert question.deadline < standard_deadline
