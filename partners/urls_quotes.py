"""Quotes (partner and direct) and what a partner buys on a linked customer's behalf."""

from django.urls import path

from .views import on_behalf, quotes

urlpatterns = [
    path("partner/quotes/", quotes.partner_quotes, name="partner_quotes"),
    path("partner/customers/<uuid:customer_id>/quotes/new/", quotes.partner_quote_new, name="quote_new"),
    path("quotes/<uuid:quote_id>/", quotes.quote_page, name="quote"),
    path("quotes/<uuid:quote_id>.pdf", quotes.quote_pdf_view, name="quote_pdf"),
    path("quotes/<uuid:quote_id>/accept/", quotes.quote_accept_view, name="quote_accept"),
    path("quotes/<uuid:quote_id>/withdraw/", quotes.quote_withdraw_view, name="quote_withdraw"),
    path("app/quotes/", quotes.customer_quotes, name="customer_quotes"),
    path("app/quotes/new/", quotes.direct_quote_new, name="direct_quote_new"),
]

urlpatterns += [
    path("partner/customers/<uuid:customer_id>/manage/", on_behalf.manage, name="on_behalf_manage"),
    path(
        "partner/customers/<uuid:customer_id>/subscriptions/<uuid:subscription_id>/seats/",
        on_behalf.add_seats,
        name="on_behalf_seats",
    ),
    path(
        "partner/customers/<uuid:customer_id>/subscriptions/<uuid:subscription_id>/edition/",
        on_behalf.change_edition,
        name="on_behalf_edition",
    ),
    path("partner/customers/<uuid:customer_id>/try/", on_behalf.start_trial, name="on_behalf_trial"),
]
