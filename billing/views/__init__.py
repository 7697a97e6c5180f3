"""Billing's pages, one module per subject (billing/urls.py routes them):

- pages: /billing/ and its forms (edition, seats, cancel, keep, pay now, a trial of another
  product, payment terms, billing details), and the staff's sales leads;
- checkout: the pages where money moves after a price is shown (checkout, added seats, an
  edition change, the card on file) and where a payment lands;
- documents: invoices and credit notes, as pages and PDFs;
- webhook: Stripe's webhook endpoint, as a view and as a bare WSGI application;
- access: who may see them (a member of the current organization, its admin).

Modules import one way: pages, checkout, documents -> access; webhook stands alone. Views parse,
call a service or a selector, and render: no ORM writes, no Stripe.
"""
