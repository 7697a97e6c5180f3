"""Billing's writes, one module per subject. Modules import one way, down this list (a module
imports only from the modules below it, never from one on its own line or above), and no name
starting with "_" crosses a module. Nothing is re-exported here: import from the module.

    lifecycle        the clocks only: trial reminders and ends, renewal, dunning, overdue
                     purchase orders, stalled charges and refunds resumed (the beat's tick)
    subscriptions    start a trial, change the edition, cancel and keep, pay what is owed now
    checkout         price and pay a trial (or Free, or a suspended subscription) into a paid one
    quoted           buy what a quote priced: a fresh term, by card or against a purchase order
    payer            a partner's billing ending at renewal or starting; the customer taking over now
    seats            the seat policy accounts asks; add seats (prorated), remove seats
    webhooks         Stripe's webhook intake and the drain that applies stored events
    reconciliation   nightly: payments against Stripe's PaymentIntents
    payments         start, charge, fail (dunning starts), apply a PaymentIntent, pay an invoice now
    invoices         issue, mark paid and apply (once), paid by transfer, the receipt email
    billing_account  Stripe customer, card on file, invoice details, billing emails, PO terms
    refunds          refunds, credit notes, and Stripe's refund and dispute events

Below the package: billing.pricing (pure price and period arithmetic, shown-price tokens),
billing.gateway (every Stripe call), billing.models, and billing.tasks (whose tasks import their
service inside the task body, so services may enqueue any task).
"""
