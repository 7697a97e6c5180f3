"""The partner's own pages, under /partner/ (partners/views/partner.py)."""

from django.urls import path

from .views import partner as views

urlpatterns = [
    path("partner/", views.partner_home, name="partner_home"),
    path("partner/apply/", views.partner_apply, name="partner_apply"),
    path("partner/invite/", views.partner_invite, name="partner_invite"),
    path("partner/customers/<uuid:customer_id>/", views.partner_customer, name="partner_customer"),
    path("partner/customers/<uuid:customer_id>/end/", views.partner_link_end, name="partner_link_end"),
    path("partner/links/<uuid:link_id>/", views.partner_link_answer, name="partner_link_answer"),
    path("partner/requests/", views.partner_requests, name="partner_requests"),
    path("partner/requests/<uuid:request_id>/answer/", views.partner_request_answer, name="partner_request_answer"),
]
