"""Refunds against localstripe: staff refund a paid card payment (fully or partly) from the
admin, Stripe refunds it once, and a credit note numbered without gaps records it. Stripe's
refund and dispute events are applied idempotently."""

import io
import threading

import pytest
from django.db import connection, transaction
from django.urls import reverse
from pypdf import PdfReader

from billing import gateway
from billing.documents import DocumentImmutable
from billing.models import CreditNote, Dispute, InvoiceSequence, Payment, WebhookEvent
from billing.services import refunds
from billing.services.refunds import RefundInvalid

from ...conftest import organization_on
from ...factories import UserFactory
from ..helpers import paid_payment, webhook_post, webhook_signed


def _refund(payment, amount_minor, reason="Requested by the customer"):
    note = refunds.refund_request(payment=payment, amount_minor=amount_minor, reason=reason, actor=None)
    assert note.status == CreditNote.Status.PENDING and note.number == ""
    assert refunds.credit_note_refund(credit_note_id=note.pk).done  # the worker's job
    note.refresh_from_db()
    return note


def _stripe_refunds(payment):
    return gateway.refunds_of_payment_intent(payment.stripe_payment_intent_id)


def test_partial_then_full_refund_issues_numbered_credit_notes(localstripe, trial_organization):
    organization, admin = trial_organization
    payment = paid_payment(localstripe, organization, admin)
    assert payment.amount_minor == 4075

    first = _refund(payment, 1000)
    assert first.status == CreditNote.Status.ISSUED and first.number == "FW-CN-000001"
    assert first.stripe_refund_id.startswith("re_") and first.issued_at
    second = _refund(payment, 3075, reason="Cancelled the rest")
    assert second.number == "FW-CN-000002"
    assert sorted(refund.amount for refund in _stripe_refunds(payment)) == [1000, 3075]
    assert {refund.metadata["flywheel_credit_note"] for refund in _stripe_refunds(payment)} == {
        str(first.public_id),
        str(second.public_id),
    }
    assert refunds.payment_refundable_minor(payment) == 0
    # What experiment analysis subtracts from revenue: one event per credit note issued.
    from experiments.models import Event

    given_back = Event.objects.filter(name="payment_refunded", organization=organization).order_by("id")
    assert [(e.properties["amount_minor"], e.properties["currency"], e.properties["source"], e.properties["reference"])
            for e in given_back] == [(1000, "USD", "refund", "FW-CN-000001"), (3075, "USD", "refund", "FW-CN-000002")]

    with pytest.raises(RefundInvalid, match="At most USD 0.00 of invoice FW-000001 is left to refund"):
        refunds.refund_request(payment=payment, amount_minor=1, reason="Once more", actor=None)
    assert CreditNote.objects.count() == 2 and len(_stripe_refunds(payment)) == 2
    payment.refresh_from_db()
    assert payment.status == Payment.Status.SUCCEEDED and payment.invoice.status == "paid"  # paid stays paid

    # Running the job again (a redelivered task) refunds nothing more.
    assert refunds.credit_note_refund(credit_note_id=first.pk).done
    assert len(_stripe_refunds(payment)) == 2


def test_refusals_say_why_and_change_nothing(localstripe, trial_organization):
    organization, admin = trial_organization
    payment = paid_payment(localstripe, organization, admin)
    with pytest.raises(RefundInvalid, match="At most USD 40.75"):
        refunds.refund_request(payment=payment, amount_minor=4076, reason="Too much", actor=None)
    with pytest.raises(RefundInvalid, match="more than nothing"):
        refunds.refund_request(payment=payment, amount_minor=0, reason="Nothing", actor=None)
    with pytest.raises(RefundInvalid, match="Say why"):
        refunds.refund_request(payment=payment, amount_minor=100, reason="  ", actor=None)
    Payment.objects.filter(pk=payment.pk).update(status=Payment.Status.FAILED)
    with pytest.raises(RefundInvalid, match="Only a succeeded card payment can be refunded; this one is failed"):
        refunds.refund_request(payment=payment, amount_minor=100, reason="Failed", actor=None)
    assert not CreditNote.objects.exists()
    assert _stripe_refunds(payment) == []


def test_a_refund_stripe_refuses_fails_without_taking_a_number(localstripe, trial_organization):
    organization, admin = trial_organization
    payment = paid_payment(localstripe, organization, admin)
    note = refunds.refund_request(payment=payment, amount_minor=500, reason="Goodwill", actor=None)
    Payment.objects.filter(pk=payment.pk).update(stripe_payment_intent_id="pi_unknown_to_stripe")
    assert refunds.credit_note_refund(credit_note_id=note.pk).done
    note.refresh_from_db()
    assert note.status == CreditNote.Status.FAILED and note.number == "" and note.failure_message
    assert not InvoiceSequence.objects.filter(name="credit_note").exclude(next_number=1).exists()
    Payment.objects.filter(pk=payment.pk).update(stripe_payment_intent_id=payment.stripe_payment_intent_id)
    assert refunds.payment_refundable_minor(payment) == 4075  # a failed refund gave nothing back
    assert _refund(payment, 500).number == "FW-CN-000001"


def test_stripe_down_then_a_crash_after_stripe_answered_still_refunds_once(localstripe, trial_organization, settings):
    organization, admin = trial_organization
    payment = paid_payment(localstripe, organization, admin)
    note = refunds.refund_request(payment=payment, amount_minor=700, reason="Goodwill", actor=None)
    real_base = settings.STRIPE_API_BASE
    settings.STRIPE_API_BASE = "http://127.0.0.1:9"  # nothing listens there
    outcome = refunds.credit_note_refund(credit_note_id=note.pk)
    assert not outcome.done and outcome.retry_in > 0
    settings.STRIPE_API_BASE = real_base
    note.refresh_from_db()
    assert note.status == CreditNote.Status.PENDING and "did not answer" in note.failure_message

    # The next attempt reached Stripe, but the worker died before recording the answer.
    gateway.refund_create(
        payment_intent_id=payment.stripe_payment_intent_id,
        amount=700,
        metadata={"flywheel_credit_note": str(note.public_id)},
        idempotency_key=f"flywheel-refund-{note.public_id}",
    )
    assert refunds.credit_note_refund(credit_note_id=note.pk).done
    note.refresh_from_db()
    assert note.status == CreditNote.Status.ISSUED and note.attempts == 2
    assert [refund.amount for refund in _stripe_refunds(payment)] == [700]  # adopted, not refunded twice


def test_staff_refund_from_the_admin(client, localstripe, trial_organization, django_capture_on_commit_callbacks):
    organization, admin = trial_organization
    payment = paid_payment(localstripe, organization, admin)
    staff = UserFactory(is_staff=True, is_superuser=True)
    client.force_login(staff)
    changelist = reverse("admin:billing_payment_changelist")
    form = client.post(changelist, {"action": "refund", "_selected_action": [payment.pk]})
    assert form.status_code == 200
    page = form.content.decode()
    assert 'id="refundable">USD 40.75<' in page and "Refund invoice FW-000001" in page

    too_much = client.post(
        changelist,
        {"action": "refund", "_selected_action": [payment.pk], "apply": "Refund", "amount": "41.00",
         "reason_code": "requested_by_customer", "note": ""},
    )
    assert 'id="refund-error">At most USD 40.75' in too_much.content.decode()
    assert not CreditNote.objects.exists()

    with django_capture_on_commit_callbacks() as callbacks:
        done = client.post(
            changelist,
            {"action": "refund", "_selected_action": [payment.pk], "apply": "Refund", "amount": "12.50",
             "reason_code": "service_issue", "note": "Outage on 3 Nov"},
        )
    assert done.status_code == 302
    note = CreditNote.objects.get()
    assert (note.amount_minor, note.reason, note.created_by) == (1250, "Service problem: Outage on 3 Nov", staff)
    assert len(callbacks) == 1  # the refund job, sent once the transaction commits
    refunds.credit_note_refund(credit_note_id=note.pk)
    note.refresh_from_db()
    assert note.status == CreditNote.Status.ISSUED and note.number == "FW-CN-000001"

    # The same action from the invoice list refunds that invoice's payment.
    invoice_form = client.post(
        reverse("admin:billing_invoice_changelist"), {"action": "refund", "_selected_action": [payment.invoice_id]}
    )
    assert 'id="refundable">USD 28.25<' in invoice_form.content.decode()

    # Staff without the right to issue credit notes do not get the action.
    client.force_login(UserFactory(is_staff=True))
    assert client.post(changelist, {"action": "refund", "_selected_action": [payment.pk]}).status_code in (302, 403)
    assert CreditNote.objects.count() == 1


def test_credit_note_page_pdf_and_the_invoice_shows_the_refund(client, localstripe, trial_organization):
    organization, admin = trial_organization
    payment = paid_payment(localstripe, organization, admin)
    note = _refund(payment, 1000, reason="Requested by the customer")
    client.force_login(admin)
    page = client.get(reverse("credit_note", args=[note.public_id])).content.decode()
    assert "Credit note" in page and note.number in page and "USD 10.00" in page
    assert payment.invoice.number in page
    invoice_page = client.get(reverse("invoice", args=[payment.invoice.public_id])).content.decode()
    assert 'id="document-refunded">USD 10.00<' in invoice_page and note.number in invoice_page
    pdf = client.get(reverse("credit_note_pdf", args=[note.public_id])).content
    assert pdf.startswith(b"%PDF")
    assert f"Credit note {note.number}" in PdfReader(io.BytesIO(pdf)).pages[0].extract_text()
    _, stranger = organization_on("standard")
    client.force_login(stranger)
    assert client.get(reverse("credit_note", args=[note.public_id])).status_code == 404


def test_an_issued_credit_note_cannot_be_changed(localstripe, trial_organization):
    organization, admin = trial_organization
    payment = paid_payment(localstripe, organization, admin)
    note = _refund(payment, 1000)
    note.amount_minor = 1
    with pytest.raises(DocumentImmutable, match="amount_minor"), transaction.atomic():
        note.save()
    with pytest.raises(DocumentImmutable), transaction.atomic():
        CreditNote.objects.get(pk=note.pk).delete()
    assert CreditNote.objects.get(pk=note.pk).amount_minor == 1000


def _charge_event(event_id, payment, kind="charge.refunded"):
    """Stripe's event about the refunded charge (the charge behind the payment's PaymentIntent)."""
    charge = _stripe_refunds(payment)[0].charge_id
    assert charge.startswith("ch_")
    return {"id": event_id, "object": "event", "type": kind, "data": {"object": {"id": charge, "object": "charge"}}}


def _deliver(client, event):
    payload, signature = webhook_signed(event)
    assert webhook_post(client, payload, signature).status_code == 200
    stored = WebhookEvent.objects.get(stripe_event_id=event["id"])
    refunds.webhook_apply(event_type=stored.type, payload=stored.payload)


def test_a_refund_made_in_stripe_becomes_a_credit_note_once(client, localstripe, trial_organization):
    organization, admin = trial_organization
    payment = paid_payment(localstripe, organization, admin)
    ours = _refund(payment, 500)
    # Someone refunds from Stripe's dashboard: no Flywheel metadata.
    outside = gateway.refund_create(
        payment_intent_id=payment.stripe_payment_intent_id, amount=1500, metadata={}, idempotency_key="dashboard-1"
    )
    event = _charge_event("evt_refunded_1", payment)
    for _ in range(3):  # duplicates and a redelivery
        _deliver(client, {**event, "id": f"evt_refunded_{_}"})
    notes = list(CreditNote.objects.order_by("number"))
    assert [(note.number, note.amount_minor, note.source) for note in notes] == [
        (ours.number, 500, CreditNote.Source.STAFF),
        ("FW-CN-000002", 1500, CreditNote.Source.STRIPE),
    ]
    assert notes[1].stripe_refund_id == outside.id and notes[1].reason == "Refunded in Stripe"
    assert refunds.payment_refundable_minor(payment) == 4075 - 2000


def test_a_refund_event_finishes_a_credit_note_whose_worker_died(client, localstripe, trial_organization):
    organization, admin = trial_organization
    payment = paid_payment(localstripe, organization, admin)
    note = refunds.refund_request(payment=payment, amount_minor=900, reason="Goodwill", actor=None)
    gateway.refund_create(
        payment_intent_id=payment.stripe_payment_intent_id,
        amount=900,
        metadata={"flywheel_credit_note": str(note.public_id)},
        idempotency_key=f"flywheel-refund-{note.public_id}",
    )
    _deliver(client, _charge_event("evt_refunded_late", payment))
    note.refresh_from_db()
    assert note.status == CreditNote.Status.ISSUED and note.number == "FW-CN-000001"
    assert refunds.credit_note_refund(credit_note_id=note.pk).done  # the retried job: nothing to do
    assert CreditNote.objects.count() == 1 and len(_stripe_refunds(payment)) == 1


def test_a_dispute_is_recorded_once(client, localstripe, trial_organization):
    organization, admin = trial_organization
    payment = paid_payment(localstripe, organization, admin)
    _refund(payment, 100)
    charge_id = _stripe_refunds(payment)[0].charge_id
    dispute = {
        "id": "dp_test_1", "object": "dispute", "charge": charge_id, "amount": 4075, "currency": "usd",
        "reason": "fraudulent", "status": "needs_response", "evidence_details": {"due_by": 1798761600},
    }
    for number in range(2):
        _deliver(client, {"id": f"evt_dispute_{number}", "object": "event", "type": "charge.dispute.created",
                          "data": {"object": dispute}})
    recorded = Dispute.objects.get()
    assert (recorded.payment, recorded.amount_minor, recorded.currency, recorded.reason) == (payment, 4075, "USD", "fraudulent")
    assert recorded.evidence_due_by.year == 2027


@pytest.mark.django_db(transaction=True)
def test_concurrent_refunds_never_give_back_more_than_was_paid(localstripe, catalog):
    organization, admin = organization_on("standard")
    payment = paid_payment(localstripe, organization, admin)
    outcomes: list[str] = []

    def ask() -> None:
        try:
            refunds.refund_request(payment=payment, amount_minor=1500, reason="Race", actor=None)
            outcomes.append("ok")
        except RefundInvalid:
            outcomes.append("refused")
        finally:
            connection.close()

    threads = [threading.Thread(target=ask) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["ok", "ok"] + ["refused"] * 4  # 2 x 15.00 fit in 40.75, a third does not
    assert sum(note.amount_minor for note in CreditNote.objects.all()) == 3000


def test_a_dispute_is_followed_to_its_outcome_in_any_event_order(client, localstripe, trial_organization):
    from experiments.models import Event

    organization, admin = trial_organization
    payment = paid_payment(localstripe, organization, admin)
    _refund(payment, 100)
    charge_id = _stripe_refunds(payment)[0].charge_id

    def deliver(number: int, kind: str, status: str, created: int, dispute_id: str = "dp_follow") -> None:
        dispute = {"id": dispute_id, "object": "dispute", "charge": charge_id, "amount": 4075, "currency": "usd",
                   "reason": "product_not_received", "status": status, "evidence_details": {"due_by": 1798761600}}
        _deliver(client, {"id": f"evt_{dispute_id}_{number}", "object": "event", "type": kind, "created": created,
                          "data": {"object": dispute}})

    deliver(1, "charge.dispute.created", "needs_response", 1_000)
    deliver(2, "charge.dispute.updated", "under_review", 1_100)
    deliver(3, "charge.dispute.updated", "needs_response", 1_050)  # late: older than the last one
    assert Dispute.objects.get().status == "under_review" and Dispute.objects.get().closed_at is None
    deliver(4, "charge.dispute.closed", "lost", 1_200)
    deliver(5, "charge.dispute.updated", "under_review", 1_300)  # a closed dispute never reopens
    deliver(4, "charge.dispute.closed", "lost", 1_200)  # a duplicate delivery
    record = Dispute.objects.get()
    assert record.status == "lost" and record.closed_at is not None
    closed = Event.objects.get(name="dispute_closed")
    assert closed.properties["outcome"] == "lost" and closed.properties["invoice"] == payment.invoice.number
    # The money a lost dispute took back, once, beside the 100 refunded before.
    lost = Event.objects.get(name="payment_refunded", properties__source="dispute")
    assert (lost.properties["amount_minor"], lost.properties["currency"], lost.properties["reference"]) == (4075, "USD", "dp_follow")
    assert Event.objects.filter(name="payment_refunded").count() == 2

    # Reordered from the start: the outcome arrives before the dispute was ever announced.
    deliver(1, "charge.dispute.closed", "won", 2_000, dispute_id="dp_reordered")
    deliver(2, "charge.dispute.created", "needs_response", 1_900, dispute_id="dp_reordered")
    reordered = Dispute.objects.get(stripe_dispute_id="dp_reordered")
    assert reordered.status == "won" and reordered.closed_at is not None
    assert Event.objects.filter(name="dispute_closed").count() == 2
    assert Event.objects.filter(name="payment_refunded").count() == 2  # a dispute won gives nothing back
