"""Buying add-ons on top of a product: the prorated price shown first, refusals that say what
is wrong, one charge per request (and per add-on under way), granted when the charge succeeds
(at once on purchase-order terms), a decline grants nothing, trials, removal and keep, and the
billing page's offers. Charges run against localstripe; the worker's job is called in-line."""

import threading
import uuid
from datetime import timedelta

import pytest
import time_machine
from django.core import mail
from django.db import connection
from django.utils import timezone

from billing import gateway, pricing, selectors
from billing.exceptions import CheckoutInvalid, NoCardOnFile
from billing.models import (
    AddOnSubscription,
    BillingAccount,
    CreditNote,
    Invoice,
    Payment,
    Subscription,
    TrainingPack,
)
from billing.services import invoices, lifecycle, payments, refunds
from billing.services.addons import (
    addon_buy,
    addon_keep,
    addon_quote,
    addon_remove,
    addon_trial_start,
)
from billing.services.grants import REMOVED_BY_ADMIN
from billing.signals import addon_grants_changed
from common.exceptions import NotFound
from common.money import money

from ...conftest import organization_on
from ...factories import UserFactory
from ..factories import (
    AddOnSubscriptionFactory,
    BillingAccountFactory,
    SubscriptionFactory,
    tracker,
    tracker_addon,
)
from ..helpers import DECLINED_AT_CHARGE, OK_CARD, card_set_up, paid_organization


@pytest.fixture
def grant_signals():
    """The addon_grants_changed signals sent, as (organization_id, product_id)."""
    sent = []

    def receiver(sender, organization_id, product_id, **kwargs):
        sent.append((organization_id, product_id))

    addon_grants_changed.connect(receiver, dispatch_uid="test-addons-grant-signals")
    yield sent
    addon_grants_changed.disconnect(dispatch_uid="test-addons-grant-signals")


def _key() -> str:
    return uuid.uuid4().hex


def test_the_quote_is_the_rest_of_the_period_prorated_like_seats(localstripe, catalog):
    organization, admin, subscription = paid_organization(localstripe, seats=5, interval="month")
    period = int((subscription.current_period_end - subscription.current_period_start).total_seconds())
    with time_machine.travel(subscription.current_period_start + timedelta(seconds=period / 2), tick=False):
        github = addon_quote(subscription=subscription, addon=tracker_addon("github"))
        support = addon_quote(subscription=subscription, addon=tracker_addon("premium-support"))
        training = addon_quote(subscription=subscription, addon=tracker_addon("training"))
    assert (github.quantity, github.unit_amount_minor, github.amount_minor) == (5, 150, 375)  # half a month of 5 x 1.50
    assert github.amount_minor == pricing.prorate(full_amount_minor=5 * 150, seconds_left=period // 2, seconds_in_period=period)
    assert github.renewal_amount_minor == 750 and github.collection == "card" and github.period_end == subscription.current_period_end
    assert (support.quantity, support.amount_minor, support.renewal_amount_minor) == (1, 4950, 9900)
    assert (training.amount_minor, training.renewal_amount_minor, training.quantity) == (50000, None, 1)
    assert "days" in github.time_left and github.currency == "USD"
    assert f"GitHub integration: 5 seats × {money(150, 'USD')}/month, prorated for" in github.description


def test_refusals_name_what_is_wrong_and_write_nothing(localstripe, catalog):
    support, github = tracker_addon("premium-support"), tracker_addon("github")
    free, free_admin = organization_on("free")
    with pytest.raises(CheckoutInvalid, match=r"^Premium support needs Tracker Standard or above; you are on Free\.$"):
        addon_quote(subscription=free.subscriptions.get(), addon=support)
    premium = SubscriptionFactory(paid=True, edition=tracker("premium"))
    with pytest.raises(CheckoutInvalid, match="^Tracker Premium already includes Premium support"):
        addon_quote(subscription=premium, addon=support)
    assert addon_quote(subscription=premium, addon=github).amount_minor > 0  # its feature is not in Premium
    trial, trial_admin = organization_on("standard")
    with pytest.raises(CheckoutInvalid, match="Tracker is on a trial: buy Tracker first, or try GitHub integration free"):
        addon_quote(subscription=trial.subscriptions.get(), addon=github)
    owned = AddOnSubscriptionFactory(addon=support)
    with pytest.raises(CheckoutInvalid, match=f"{owned.organization.name} already has Premium support on Tracker"):
        addon_quote(subscription=owned.subscription, addon=support)
    cardless = SubscriptionFactory(paid=True)
    BillingAccountFactory(organization=cardless.organization)
    cardless_admin = UserFactory()
    cardless.organization.memberships.create(user=cardless_admin, role="admin")
    with pytest.raises(NoCardOnFile, match=r"^Add a card first \(.*/billing/card/\), then buy GitHub integration\.$"):
        addon_buy(subscription=cardless, addon=github, actor=cardless_admin, request_key=_key())
    with pytest.raises(CheckoutInvalid, match="GitHub integration has had its trial already|had its GitHub integration trial already"):
        AddOnSubscriptionFactory(
            subscription=cardless, status=AddOnSubscription.Status.CANCELED, trial_started_at=timezone.now(),
        )
        addon_trial_start(subscription=cardless, addon=github, actor=cardless_admin)
    with pytest.raises(CheckoutInvalid, match="^Premium support has no free trial"):
        addon_trial_start(subscription=cardless, addon=support, actor=cardless_admin)
    assert not Invoice.objects.filter(kind=Invoice.Kind.ADDON).exists()
    assert not AddOnSubscription.objects.filter(status=AddOnSubscription.Status.TRIALING).exists()


def test_a_card_purchase_is_granted_when_the_charge_succeeds(localstripe, catalog, grant_signals, django_capture_on_commit_callbacks):
    organization, admin, subscription = paid_organization(localstripe, seats=5)
    github = tracker_addon("github")
    quote = addon_quote(subscription=subscription, addon=github)
    invoice = addon_buy(subscription=subscription, addon=github, actor=admin, request_key=_key(), quote_token=quote.token)
    assert (invoice.kind, invoice.addon, invoice.total_minor, invoice.status) == (Invoice.Kind.ADDON, github, quote.amount_minor, "open")
    [line] = invoice.lines.all()
    assert line.addon == github and line.description.startswith(f"GitHub integration: 5 seats × {money(150, 'USD')}/month")
    assert not AddOnSubscription.objects.exists()  # not before the money
    payment = invoice.payments.get()
    with django_capture_on_commit_callbacks(execute=True):
        payments.payment_charge(payment_id=payment.pk)
    granted = AddOnSubscription.objects.get()
    assert (granted.status, granted.subscription, granted.addon) == (AddOnSubscription.Status.ACTIVE, subscription, github)
    assert list(selectors.addons_granting(organization_id=organization.pk)) == [granted]
    assert (organization.pk, subscription.product_id) in grant_signals
    mail.outbox.clear()
    assert invoices.invoice_receipt_send(invoice_id=invoice.pk)
    assert "Thank you: GitHub integration is added to Tracker Standard." in mail.outbox[0].body
    # The page refuses a second purchase now, in words.
    with pytest.raises(CheckoutInvalid, match="already has GitHub integration"):
        addon_buy(subscription=subscription, addon=github, actor=admin, request_key=_key())


def test_a_decline_grants_nothing_and_says_why_then_a_new_purchase_replaces_it(localstripe, catalog):
    organization, admin, subscription = paid_organization(localstripe)
    card_set_up(localstripe, organization, admin, DECLINED_AT_CHARGE)
    support = tracker_addon("premium-support")
    invoice = addon_buy(subscription=subscription, addon=support, actor=admin, request_key=_key())
    payments.payment_charge(payment_id=invoice.payments.get().pk)
    payment = invoice.payments.get()
    assert payment.status == Payment.Status.FAILED and payment.decline_reason
    assert not AddOnSubscription.objects.exists()
    subscription.refresh_from_db()
    assert subscription.status == Subscription.Status.ACTIVE  # an add-on's decline is no renewal: no dunning
    card_set_up(localstripe, organization, admin, OK_CARD)
    again = addon_buy(subscription=subscription, addon=support, actor=admin, request_key=_key())
    payments.payment_charge(payment_id=again.payments.get().pk)
    invoice.refresh_from_db()
    assert invoice.status == Invoice.Status.VOID and again.pk != invoice.pk
    assert AddOnSubscription.objects.get().status == AddOnSubscription.Status.ACTIVE


def test_a_double_click_charges_once(localstripe, catalog):
    organization, admin, subscription = paid_organization(localstripe)
    key, github = _key(), tracker_addon("github")
    first = addon_buy(subscription=subscription, addon=github, actor=admin, request_key=key)
    second = addon_buy(subscription=subscription, addon=github, actor=admin, request_key=key)
    assert first.pk == second.pk
    # Another tab (another key) while the first is being charged finds the same purchase.
    assert addon_buy(subscription=subscription, addon=github, actor=admin, request_key=_key()).pk == first.pk
    for payment in Payment.objects.filter(invoice=first):
        payments.payment_charge(payment_id=payment.pk)
    assert Invoice.objects.filter(kind=Invoice.Kind.ADDON).count() == 1
    assert Payment.objects.filter(invoice__kind=Invoice.Kind.ADDON).count() == 1
    assert len(gateway.payment_intents_of_customer(organization.billing_account.stripe_customer_id)) == 2  # purchase + add-on
    assert AddOnSubscription.objects.get().status == AddOnSubscription.Status.ACTIVE


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_purchases_of_one_add_on_charge_once(localstripe, catalog):
    organization, admin, subscription = paid_organization(localstripe)
    github = tracker_addon("github")
    barrier = threading.Barrier(2)
    found: list[int] = []
    errors: list[str] = []

    def buy():
        try:
            barrier.wait()
            invoice = addon_buy(subscription=subscription, addon=github, actor=admin, request_key=_key())
            found.append(invoice.pk)
            payments.payment_charge(payment_id=invoice.payments.get().pk)
        except CheckoutInvalid as refused:
            errors.append(str(refused))
        finally:
            connection.close()

    threads = [threading.Thread(target=buy) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert all("already has GitHub integration" in error for error in errors)
    assert len(set(found)) == 1 and len(found) + len(errors) == 2
    assert Invoice.objects.filter(kind=Invoice.Kind.ADDON).count() == 1
    assert Payment.objects.filter(invoice__kind=Invoice.Kind.ADDON, status=Payment.Status.SUCCEEDED).count() == 1
    assert len(gateway.payment_intents_of_customer(organization.billing_account.stripe_customer_id)) == 2
    assert AddOnSubscription.objects.filter(status=AddOnSubscription.Status.ACTIVE).count() == 1


def test_a_price_that_changed_since_it_was_shown_is_refused(localstripe, catalog):
    organization, admin, subscription = paid_organization(localstripe, seats=5)
    github = tracker_addon("github")
    quote = addon_quote(subscription=subscription, addon=github)
    Subscription.objects.filter(pk=subscription.pk).update(seat_limit=6)
    with pytest.raises(CheckoutInvalid, match="The price has changed since it was shown"):
        addon_buy(subscription=subscription, addon=github, actor=admin, request_key=_key(), quote_token=quote.token)
    with pytest.raises(CheckoutInvalid, match="Open the price first"):
        addon_buy(
            subscription=subscription, addon=tracker_addon("premium-support"), actor=admin, request_key=_key(),
            quote_token=quote.token,
        )
    assert not Invoice.objects.filter(kind=Invoice.Kind.ADDON).exists()


def test_a_purchase_order_add_on_is_granted_at_once_and_overdue_suspends_only_it(
    localstripe, catalog, grant_signals, django_capture_on_commit_callbacks, eager_tasks
):
    organization, admin, subscription = paid_organization(localstripe, interval="year")
    BillingAccount.objects.filter(organization=organization).update(collection_method="invoice", po_number="PO-42", net_terms_days=30)
    support = tracker_addon("premium-support")
    assert addon_quote(subscription=subscription, addon=support).collection == "invoice"
    bought_at = timezone.now()
    with django_capture_on_commit_callbacks(execute=True):
        invoice = addon_buy(subscription=subscription, addon=support, actor=admin, request_key=_key())
    assert (invoice.po_number, invoice.collection_method, invoice.status) == ("PO-42", "invoice", "open")
    assert bought_at + timedelta(days=30) <= invoice.due_at <= timezone.now() + timedelta(days=30)
    assert not invoice.payments.exists()
    granted = AddOnSubscription.objects.get()
    assert granted.status == AddOnSubscription.Status.ACTIVE and (organization.pk, subscription.product_id) in grant_signals
    assert mail.outbox[-1].subject == f"[Flywheel] Invoice {invoice.number} for Premium support"

    report = lifecycle.lifecycle_tick(now=invoice.due_at + timedelta(days=1))
    assert report.overdue_reminders == 1
    with django_capture_on_commit_callbacks(execute=True):
        report = lifecycle.lifecycle_tick(now=invoice.due_at + timedelta(days=5))
    assert report.suspended == 1
    granted.refresh_from_db()
    subscription.refresh_from_db()
    assert granted.status == AddOnSubscription.Status.SUSPENDED
    assert subscription.status == Subscription.Status.ACTIVE  # the base goes on
    assert not selectors.addons_granting(organization_id=organization.pk).exists()
    assert mail.outbox[-1].subject == "[Flywheel] Premium support is suspended"
    assert "Tracker itself goes on as before" in mail.outbox[-1].body

    invoices.invoice_mark_paid_by_transfer(invoice=invoice, actor=admin)
    granted.refresh_from_db()
    invoice.refresh_from_db()
    assert invoice.status == Invoice.Status.PAID and granted.status == AddOnSubscription.Status.ACTIVE
    assert AddOnSubscription.objects.count() == 1


def test_a_purchase_order_training_pack_is_suspended_when_overdue_and_back_when_paid(localstripe, catalog):
    organization, admin, subscription = paid_organization(localstripe, interval="year")
    BillingAccount.objects.filter(organization=organization).update(collection_method="invoice", po_number="PO-7")
    invoice = addon_buy(subscription=subscription, addon=tracker_addon("training"), actor=admin, request_key=_key())
    pack = TrainingPack.objects.get(invoice=invoice)
    assert (pack.credits, pack.credits_left, pack.suspended_at) == (10, 10, None)
    lifecycle.lifecycle_tick(now=invoice.due_at + timedelta(days=5))
    pack.refresh_from_db()
    assert pack.suspended_at is not None
    invoices.invoice_mark_paid_by_transfer(invoice=invoice, actor=admin)
    pack.refresh_from_db()
    assert pack.suspended_at is None and TrainingPack.objects.count() == 1


def test_a_training_pack_is_bought_whole_on_the_free_edition(localstripe, catalog):
    organization, admin = organization_on("free")
    card_set_up(localstripe, organization, admin, OK_CARD)
    subscription = organization.subscriptions.get()
    invoice = addon_buy(subscription=subscription, addon=tracker_addon("training"), actor=admin, request_key=_key())
    assert invoice.total_minor == 50000
    assert not TrainingPack.objects.exists()
    payments.payment_charge(payment_id=invoice.payments.get().pk)
    pack = TrainingPack.objects.get()
    assert pack.invoice == invoice and pack.credits == 10
    assert timedelta(days=364) < pack.expires_at - pack.granted_at <= timedelta(days=365)
    mail.outbox.clear()
    invoices.invoice_receipt_send(invoice_id=invoice.pk)
    assert "Thank you: Tracker training pack is yours, 10 training credits to use by" in mail.outbox[0].body
    # A second pack is another purchase (credits add up).
    second = addon_buy(subscription=subscription, addon=tracker_addon("training"), actor=admin, request_key=_key())
    payments.payment_charge(payment_id=second.payments.get().pk)
    assert TrainingPack.objects.count() == 2


def test_an_add_on_invoice_is_refunded_like_any_other(localstripe, catalog):
    organization, admin, subscription = paid_organization(localstripe)
    invoice = addon_buy(subscription=subscription, addon=tracker_addon("premium-support"), actor=admin, request_key=_key())
    payments.payment_charge(payment_id=invoice.payments.get().pk)
    payment = invoice.payments.get()
    note = refunds.refund_request(payment=payment, amount_minor=payment.amount_minor, reason="Bought by mistake", actor=None)
    assert refunds.credit_note_refund(credit_note_id=note.pk).done
    note.refresh_from_db()
    assert note.status == CreditNote.Status.ISSUED and note.invoice == invoice and note.number


def test_a_trial_grants_at_once_without_a_card_and_only_once(localstripe, catalog, grant_signals, django_capture_on_commit_callbacks):
    organization, admin = organization_on("standard")
    subscription = organization.subscriptions.get()
    github = tracker_addon("github")
    with django_capture_on_commit_callbacks(execute=True):
        trial = addon_trial_start(subscription=subscription, addon=github, actor=admin)
    assert trial.status == AddOnSubscription.Status.TRIALING
    assert timedelta(days=14) - timedelta(minutes=1) < trial.trial_ends_at - timezone.now() <= timedelta(days=14)
    assert list(selectors.addons_granting(organization_id=organization.pk)) == [trial]
    assert grant_signals == [(organization.pk, subscription.product_id)]
    with pytest.raises(CheckoutInvalid, match="already has GitHub integration"):
        addon_trial_start(subscription=subscription, addon=github, actor=admin)
    addon_remove(addon_subscription=trial, actor=admin)  # a trial ends at once
    trial.refresh_from_db()
    assert trial.status == AddOnSubscription.Status.CANCELED and trial.cancel_reason == REMOVED_BY_ADMIN
    with pytest.raises(CheckoutInvalid, match="has had its GitHub integration trial already; buy it"):
        addon_trial_start(subscription=subscription, addon=github, actor=admin)
    assert not Invoice.objects.filter(kind=Invoice.Kind.ADDON).exists()


def test_buying_during_the_trial_makes_the_same_add_on_active(localstripe, catalog):
    organization, admin, subscription = paid_organization(localstripe)
    github = tracker_addon("github")
    trial = addon_trial_start(subscription=subscription, addon=github, actor=admin)
    invoice = addon_buy(subscription=subscription, addon=github, actor=admin, request_key=_key())
    payments.payment_charge(payment_id=invoice.payments.get().pk)
    trial.refresh_from_db()
    assert (trial.status, trial.trial_ends_at) == (AddOnSubscription.Status.ACTIVE, None)
    assert AddOnSubscription.objects.count() == 1


def test_removing_a_paid_add_on_waits_for_the_period_end_and_keep_undoes_it(
    localstripe, catalog, django_capture_on_commit_callbacks, eager_tasks
):
    organization, admin, subscription = paid_organization(localstripe)
    support = AddOnSubscriptionFactory(subscription=subscription, addon=tracker_addon("premium-support"))
    with django_capture_on_commit_callbacks(execute=True):
        removed = addon_remove(addon_subscription=support, actor=admin)
    assert (removed.status, removed.cancel_at_period_end, removed.cancel_reason) == ("active", True, REMOVED_BY_ADMIN)
    assert mail.outbox[-1].subject.startswith("[Flywheel] Premium support will end on")
    assert addon_remove(addon_subscription=support, actor=admin).cancel_at_period_end  # twice: no change
    with pytest.raises(CheckoutInvalid, match="is being removed on .*: keep it instead"):
        addon_quote(subscription=subscription, addon=support.addon)
    kept = addon_keep(addon_subscription=support, actor=admin)
    assert (kept.cancel_at_period_end, kept.cancel_reason) == (False, "")
    member = UserFactory()
    organization.memberships.create(user=member, role="member")
    with pytest.raises(Exception, match="Only an admin of this organization can manage billing"):
        addon_remove(addon_subscription=support, actor=member)


def test_the_billing_page_offers_each_add_on_with_its_price_and_why_not(localstripe, catalog):
    organization, admin, subscription = paid_organization(localstripe)
    offers = {offer.addon.code: offer for offer in selectors.addon_offers_of(organization=organization)}
    assert set(offers) == {"github", "premium-support", "training"}
    assert offers["github"].price_text == f"{money(150, 'USD')} per seat per month" and offers["github"].buyable and offers["github"].can_try
    assert offers["premium-support"].price_text == f"{money(9900, 'USD')} per month" and not offers["premium-support"].can_try
    assert offers["training"].price_text == f"{money(50000, 'USD')} once" and offers["training"].buyable
    free, free_admin = organization_on("free")
    free_offers = {offer.addon.code: offer for offer in selectors.addon_offers_of(organization=free)}
    assert not free_offers["premium-support"].buyable
    assert free_offers["premium-support"].refusal == "Premium support needs Tracker Standard or above; you are on Free."
    assert free_offers["training"].buyable and free_offers["github"].state is None


def test_an_add_on_is_found_only_by_its_own_organizations_members(localstripe, catalog):
    row = AddOnSubscriptionFactory()
    member = UserFactory()
    row.organization.memberships.create(user=member, role="member")
    assert selectors.addon_subscription_for_user(user=member, public_id=row.public_id) == row
    with pytest.raises(NotFound):
        selectors.addon_subscription_for_user(user=UserFactory(), public_id=row.public_id)


def test_paying_an_old_purchase_order_add_on_invoice_does_not_start_an_ended_add_on_again(localstripe, catalog):
    organization, admin, subscription = paid_organization(localstripe, interval="month")
    BillingAccount.objects.filter(organization=organization).update(collection_method="invoice", po_number="PO-9", net_terms_days=60)
    invoice = addon_buy(subscription=subscription, addon=tracker_addon("premium-support"), actor=admin, request_key=_key())
    granted = AddOnSubscription.objects.get()
    addon_remove(addon_subscription=granted, actor=admin)
    lifecycle.lifecycle_tick(now=subscription.current_period_end + timedelta(minutes=5))
    granted.refresh_from_db()
    assert granted.status == AddOnSubscription.Status.CANCELED and granted.cancel_reason == REMOVED_BY_ADMIN
    renewal = Invoice.objects.get(kind=Invoice.Kind.RENEWAL)
    assert not renewal.lines.filter(addon__isnull=False).exists()
    invoices.invoice_mark_paid_by_transfer(invoice=invoice, actor=admin)
    invoice.refresh_from_db()
    assert invoice.status == Invoice.Status.PAID
    assert not AddOnSubscription.objects.exclude(status=AddOnSubscription.Status.CANCELED).exists()


def test_an_overdue_purchase_order_invoice_stops_further_add_ons_until_it_is_paid(localstripe, catalog):
    organization, admin, subscription = paid_organization(localstripe, interval="year")
    BillingAccount.objects.filter(organization=organization).update(collection_method="invoice", po_number="PO-42", net_terms_days=30)
    training = tracker_addon("training")
    first = addon_buy(subscription=subscription, addon=training, actor=admin, request_key=_key())
    assert addon_quote(subscription=subscription, addon=training).amount_minor == training.one_off_price_minor

    with time_machine.travel(first.due_at + timedelta(days=1), tick=False):
        refusal = f"Invoice {first.number} was due on {first.due_at:%-d %b %Y}: pay it first, then add"
        for addon in (training, tracker_addon("premium-support")):
            with pytest.raises(CheckoutInvalid, match=refusal):
                addon_buy(subscription=subscription, addon=addon, actor=admin, request_key=_key())
        assert TrainingPack.objects.count() == 1 and Invoice.objects.filter(kind=Invoice.Kind.ADDON).count() == 1

        invoices.invoice_mark_paid_by_transfer(invoice=first, actor=admin)
        addon_buy(subscription=subscription, addon=training, actor=admin, request_key=_key())
        assert TrainingPack.objects.count() == 2  # a top-up, once the debt is paid


def test_no_add_on_is_sold_on_a_product_that_is_ending(localstripe, catalog):
    organization, admin, subscription = paid_organization(localstripe)
    Subscription.objects.filter(pk=subscription.pk).update(cancel_at_period_end=True)
    subscription.refresh_from_db()
    for code in ("training", "github"):
        with pytest.raises(CheckoutInvalid, match="Tracker ends on .*: keep it first, then add"):
            addon_quote(subscription=subscription, addon=tracker_addon(code))
