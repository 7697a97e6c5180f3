"""Partners' pages. Three groups, each in its own module: the partner's own pages (apply,
dashboard, customers, links, requests), quotes (partner and direct), and what a customer sees of
its partner (directory, link answers, ask, move to direct, audit log)."""

from django.urls import include, path

app_name = "partners"

urlpatterns = [
    path("", include("partners.urls_partner")),
    path("", include("partners.urls_quotes")),
    path("", include("partners.urls_customer")),
]
