"""Quotes (partner and direct) and what a partner buys on a linked customer's behalf."""

from django.urls import path

from .views import quotes

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
