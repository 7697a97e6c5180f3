"""Billing's pages and Stripe's webhook (config/urls.py includes them first)."""

from django.urls import path

from .views import checkout, documents, pages, webhook

urlpatterns = [
    # First: Django tries the patterns in order, and Stripe may post a thousand a second.
    path("stripe/webhook", webhook.stripe_webhook, name="stripe_webhook"),
    path("billing/", pages.billing_page, name="billing"),
    path("billing/checkout/<uuid:subscription_id>/", checkout.checkout, name="checkout"),
    path("billing/seats/<uuid:subscription_id>/", checkout.add_seats, name="add_seats"),
    path("billing/edition/<uuid:subscription_id>/", checkout.change_edition, name="change_edition"),
    path("billing/subscriptions/<uuid:subscription_id>/", pages.subscription_manage, name="subscription_manage"),
    path("billing/card/", checkout.card_update, name="card_update"),
    path("billing/try/", pages.product_trial_start, name="product_trial_start"),
    path("billing/terms/", pages.payment_terms, name="payment_terms"),
    path("billing/details/", pages.billing_details, name="billing_details"),
    path("staff/sales-leads/", pages.sales_leads, name="sales_leads"),
    path("billing/payments/<uuid:payment_id>/", checkout.payment_status, name="payment_status"),
    path("billing/invoices/<uuid:invoice_id>/", documents.invoice_page, name="invoice"),
    path("billing/invoices/<uuid:invoice_id>.pdf", documents.invoice_pdf, name="invoice_pdf"),
    path("billing/credit-notes/<uuid:credit_note_id>/", documents.credit_note_page, name="credit_note"),
    path("billing/credit-notes/<uuid:credit_note_id>.pdf", documents.credit_note_pdf, name="credit_note_pdf"),
]
