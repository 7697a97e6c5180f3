from django.contrib import admin
from django.urls import include, path

from accounts import api_key_views, developer_views, verification_views
from accounts import views as accounts_views
from activity import views as activity_views
from config.api import api as flywheel_api
from experiments import views as experiments_views
from inproduct import launch_views as inproduct_launch_views
from provisioning import views as provisioning_views
from staff import views as staff_views

urlpatterns = [
    # First: billing's, whose first is Stripe's webhook (Django tries the patterns in order, and
    # Stripe may post a thousand a second).
    path("", include("billing.urls")),
    # Second: the kit's, asked on every page load of every product that embeds it (all under
    # kit/, so any other address passes it by at one pattern).
    path("", include("inproduct.urls")),
    path("", include("frontdoor.urls")),
    path("app/members/", accounts_views.members, name="members"),
    path("app/organization/", accounts_views.organization_settings, name="organization_settings"),
    path("app/members/<int:membership_id>/remove/", accounts_views.member_remove, name="member_remove"),
    path("app/members/<int:membership_id>/role/", accounts_views.member_role, name="member_role"),
    path("app/invites/<uuid:invite_id>/revoke/", accounts_views.invite_revoke, name="invite_revoke"),
    path("app/invites/<uuid:invite_id>/resend/", accounts_views.invite_resend, name="invite_resend"),
    path("app/join-by-domain/", accounts_views.join_by_domain_toggle, name="join_by_domain_toggle"),
    path("app/switch/<uuid:organization_id>/", accounts_views.organization_switch, name="organization_switch"),
    path("join/<uuid:organization_id>/", accounts_views.join_by_domain, name="join_by_domain"),
    path("invites/<str:token>/", accounts_views.invite_landing, name="invite_landing"),
    path("environments/<uuid:environment_id>/", provisioning_views.environment_status, name="environment_status"),
    # The builtin workspace opens in the demo product, its own origin (inproduct/launch.py).
    path("w/<uuid:environment_id>/", inproduct_launch_views.workspace_launch, name="builtin_workspace"),
    path("provisioning/callback", provisioning_views.callback, name="provisioning_callback"),
    path("staff/", staff_views.staff_home, name="staff_home"),
    path("staff/funnel/", experiments_views.funnel, name="staff_funnel"),
    path("staff/usage/", activity_views.staff_usage, name="staff_usage"),
    path("staff/partners/", staff_views.staff_partners, name="staff_partners"),
    path("dev/mailbox/", accounts_views.dev_mailbox, name="dev_mailbox"),
    path("dev/mailbox/<str:name>", accounts_views.dev_mailbox, name="dev_mailbox_message"),
    # Before allauth's own: its confirmation page, telling a used link from a broken one, and
    # the question the "check your email" page asks while it waits.
    path("accounts/confirm-email/<str:key>/", verification_views.confirm_email, name="account_confirm_email"),
    path("accounts/verification-status/", verification_views.verification_status, name="account_verification_status"),
    path("accounts/", include("allauth.urls")),
    path("", include("experiments.urls")),
    path("", include("onboarding.urls")),
    path("", include("community.urls")),
    path("", include("feedback.urls")),
    path("", include("partners.urls")),
    path("app/api-keys/", api_key_views.api_keys_page, name="api_keys"),
    path("app/api-keys/<uuid:key_id>/rotate/", api_key_views.api_key_rotate, name="api_key_rotate"),
    path("app/api-keys/<uuid:key_id>/revoke/", api_key_views.api_key_revoke, name="api_key_revoke"),
    # The bare /api/ is a page for developers; django-ninja answers everything under it.
    path("api/", developer_views.developer_home, name="developer_home"),
    path("api/", flywheel_api.urls),
    path("favicon.ico", developer_views.favicon, name="favicon"),
    path("admin/", admin.site.urls),
]
