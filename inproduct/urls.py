"""The kit's URLs under /kit/v1/ (docs/in-product.md)."""

from django.urls import include, path

from . import identity_views, message_views

urlpatterns = [
    path("kit/v1/", include(identity_views.urlpatterns + message_views.urlpatterns)),
]
