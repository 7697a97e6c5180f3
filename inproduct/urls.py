"""The kit's URLs under /kit/v1/ (docs/in-product.md)."""

from django.urls import include, path, re_path

from . import identity_views, message_views

urlpatterns = [
    path("kit/v1/", include(identity_views.urlpatterns + message_views.urlpatterns)),
    # Last: any other address under /kit/ is a JSON 404, not the site's HTML page.
    re_path(r"^kit/(?P<rest>.*)$", identity_views.kit_not_found),
]
