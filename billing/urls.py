"""Billing's pages and Stripe's webhook (config/urls.py includes them first)."""

from django.urls import path

from .views import addons, checkout, documents, pages, training, webhook

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
    path("billing/addons/<uuid:subscription_id>/<slug:addon_code>/", addons.addon_buy_page, name="addon_buy"),
    path("billing/addons/<uuid:subscription_id>/<slug:addon_code>/try/", addons.addon_trial, name="addon_trial"),
    path("billing/addon-subscriptions/<uuid:addon_subscription_id>/", addons.addon_manage, name="addon_manage"),
    path("billing/training/", training.training_page, name="training"),
    path("billing/training/assign/", training.training_assign_view, name="training_assign"),
    path("billing/training/assignments/<uuid:assignment_id>/withdraw/", training.training_withdraw_view, name="training_withdraw"),
    path("staff/sales-leads/", pages.sales_leads, name="sales_leads"),
    path("staff/training/", training.staff_training, name="staff_training"),
    path("billing/payments/<uuid:payment_id>/", checkout.payment_status, name="payment_status"),
    path("billing/invoices/<uuid:invoice_id>/", documents.invoice_page, name="invoice"),
    path("billing/invoices/<uuid:invoice_id>.pdf", documents.invoice_pdf, name="invoice_pdf"),
    path("billing/credit-notes/<uuid:credit_note_id>/", documents.credit_note_page, name="credit_note"),
    path("billing/credit-notes/<uuid:credit_note_id>.pdf", documents.credit_note_pdf, name="credit_note_pdf"),
]
