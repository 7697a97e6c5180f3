"""The billing factories build rows the services could have written: valid, and with amounts
and currency that follow the edition's price."""

from billing.models import Invoice, Payment, Subscription

from .factories import InvoiceFactory, PaymentFactory, SubscriptionFactory, tracker


def test_the_factories_build_consistent_rows(catalog):
    trial = SubscriptionFactory()
    assert trial.status == Subscription.Status.TRIALING and trial.trial_ends_at > trial.trial_started_at

    payment = PaymentFactory(succeeded=True, invoice__paid=True, invoice__subscription__paid=True)
    invoice, subscription, standard = payment.invoice, payment.invoice.subscription, tracker()
    for row in (subscription, invoice, payment):
        row.full_clean()
    assert subscription.status == Subscription.Status.ACTIVE and subscription.current_period_end > subscription.current_period_start
    assert invoice.status == Invoice.Status.PAID and invoice.organization == subscription.organization
    assert invoice.total_minor == 5 * standard.monthly_price_minor == sum(line.amount_minor for line in invoice.lines.all())
    assert invoice.currency == payment.currency == standard.currency
    assert (payment.status, payment.amount_minor, payment.organization) == (Payment.Status.SUCCEEDED, invoice.total_minor, invoice.organization)
    assert InvoiceFactory(target_interval="year").total_minor == 5 * standard.annual_price_minor
