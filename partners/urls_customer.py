"""What a customer sees of its partner, under /app/partner/ (partners/views/customer.py)."""

from django.urls import path

from .views import customer

urlpatterns = [
    path("app/partner/", customer.partner_page, name="customer_partner"),
    path("app/partner/invitations/<uuid:link_id>/", customer.link_answer, name="customer_link_answer"),
    path("app/partner/end/", customer.link_end_page, name="customer_link_end"),
    path("app/partner/directory/", customer.directory, name="customer_directory"),
    path("app/partner/directory/<uuid:partner_id>/ask/", customer.directory_request, name="customer_directory_request"),
    path("app/partner/ask/", customer.ask, name="ask"),
    path("app/partner/ask/<uuid:request_id>/", customer.ask_sent, name="customer_ask_sent"),
    path("app/partner/direct/", customer.direct_page, name="customer_direct"),
    path("app/partner/activity/", customer.activity, name="customer_activity"),
]
