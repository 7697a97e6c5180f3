"""The design system as a person meets it: one header (a Menu button on phones) on every page,
labels above fields on allauth's pages, a favicon, a page for developers at /api/, each member's
user id on the Members page, and colours that pass WCAG 2.1 AA."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.conf import settings
from django.urls import reverse

from ..conftest import organization_on
from ..factories import PASSWORD, MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db

CSS = Path(settings.BASE_DIR, "static", "css", "flywheel.css")
STAFF_MENU = [
    ("Funnel", "staff_funnel"),
    ("Product usage", "staff_usage"),
    ("Experiments", "staff_experiments"),
    ("Onboarding emails", "staff_onboarding"),
    ("NPS", "feedback_staff_report"),
    ("Follow-ups", "feedback_follow_ups"),
    ("Support queue", "community_support_queue"),
    ("Community metrics", "community_metrics"),
    ("Moderation", "community_moderation"),
    ("Sales leads", "sales_leads"),
    ("Partners", "staff_partners"),
    ("Training usage", "staff_training"),
    ("Admin", "admin:index"),
]


def _header(html: str) -> str:
    match = re.search(r'<header class="site-header[^"]*".*?</header>', html, re.S)
    assert match, "no site header"
    return match.group(0)


def _assert_collapsible_header(html: str) -> None:
    header = _header(html)
    # The Menu button controls the navigation, starts collapsed, and is hidden until the script
    # takes it over: without JavaScript every link stays in the page.
    assert re.search(r'<button[^>]*class="menu-toggle"[^>]*aria-expanded="false"[^>]*aria-controls="site-nav"', header)
    assert 'id="site-nav"' in header
    assert '<a class="skip-link" href="#main">Skip to content</a>' in html and '<main id="main">' in html
    assert re.search(r'<script src="/static/js/site\.js" defer></script>', html)
    # The layout itself has no inline script: a strict Content-Security-Policy comes later.
    layout = re.sub(r'<main id="main">.*</main>', "", html, flags=re.S)
    # (allauth's JSON data blocks are not scripts a browser runs.)
    assert not re.search(r"<script(?![^>]*\b(?:src=|type=\"application/json\"))[^>]*>", layout)
    assert '<footer class="site-footer">' in html


@pytest.fixture
def admin_client(client, catalog):
    organization, admin = organization_on("standard", members=3)
    client.login(email=admin.email, password=PASSWORD)
    client.organization, client.user = organization, admin
    return client


@pytest.mark.parametrize("path", ["/", "/accounts/login/", "/accounts/signup/", "/accounts/password/reset/", "/api/"])
def test_pages_for_visitors_have_the_collapsible_header(client, catalog, path):
    response = client.get(path)
    assert response.status_code == 200
    html = response.content.decode()
    _assert_collapsible_header(html)
    assert "Start free trial" in _header(html) and "Sign in" in _header(html)


@pytest.mark.parametrize("name", ["members", "billing", "community", "api_keys", "developer_home", "account_email", "account_change_password"])
def test_pages_for_an_admin_have_the_collapsible_header_with_the_admin_menu(admin_client, name):
    response = admin_client.get(reverse(name))
    assert response.status_code == 200
    html = response.content.decode()
    _assert_collapsible_header(html)
    header = _header(html)
    for label, url_name in (("Members", "members"), ("Billing", "billing"), ("Feedback", "feedback_report"), ("API keys", "api_keys")):
        assert re.search(rf'href="{reverse(url_name)}"[^>]*>{label}</a>', header), label
    # The organization's name and the user's email are truncated on screen, whole in the title.
    assert f'<span class="truncate" title="{admin_client.organization.name}">' in header
    assert f'<span class="truncate" title="{admin_client.user.email}">{admin_client.user.email}</span>' in header


def test_a_member_has_no_admin_links_and_no_staff_menu(client, catalog):
    organization, _ = organization_on("standard")
    member = MembershipFactory(organization=organization).user
    client.login(email=member.email, password=PASSWORD)
    header = _header(client.get(reverse("members")).content.decode())
    for url_name in ("billing", "feedback_report", "api_keys", "staff_funnel"):
        assert f'href="{reverse(url_name)}"' not in header, url_name
    assert f'href="{reverse("members")}"' in header


def test_the_staff_menu_is_a_dropdown_panel_with_every_staff_page(client, catalog):
    staff = UserFactory(is_staff=True)
    client.login(email=staff.email, password=PASSWORD)
    html = client.get(reverse("community")).content.decode()
    _assert_collapsible_header(html)
    panel = re.search(r'<details class="menu staff-menu".*?<summary>Staff</summary>\s*<div class="menu-panel" id="staff-menu">(.*?)</div>\s*</details>', html, re.S)
    assert panel, "no Staff dropdown"
    links = re.findall(r'<a class="nav-link" href="([^"]+)">([^<]+)</a>', panel.group(1))
    expected = [(reverse(url_name), label) for label, url_name in STAFF_MENU]
    assert sorted(link for link in links if link[1] != "Staff home") == sorted(expected)
    assert links[-1] == (reverse("admin:index"), "Admin")


def test_the_favicon_answers_at_the_root_and_is_linked_from_every_page(client):
    response = client.get("/favicon.ico")
    assert response.status_code == 302
    icon = client.get(response["Location"])
    assert icon.status_code == 200
    assert b"".join(icon.streaming_content if icon.streaming else [icon.content])[:4] == b"\x00\x00\x01\x00"
    html = client.get(reverse("account_login")).content.decode()
    for href in re.findall(r'<link rel="(?:icon|apple-touch-icon)" href="([^"]+)"', html):
        assert client.get(href).status_code == 200, href
    assert 'href="/static/favicon.svg" type="image/svg+xml"' in html


def test_api_answers_with_a_page_for_developers_and_the_api_still_answers(admin_client):
    response = admin_client.get("/api/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "<h1>Flywheel API</h1>" in html
    assert f'href="{reverse("api:openapi-view")}"' in html and f'href="{reverse("api_keys")}"' in html
    assert "/api/v1/entitlements" in html and "/api/v1/prompts" in html
    assert admin_client.get("/api/v1/ping").json() == {"ok": True}
    assert admin_client.get(reverse("api:openapi-view")).status_code == 200
    assert admin_client.get("/api/v1/entitlements").status_code == 401


def test_the_members_page_shows_each_members_user_id_to_an_admin(admin_client):
    html = admin_client.get(reverse("members")).content.decode()
    memberships = admin_client.organization.memberships.select_related("user")
    assert memberships.count() == 3
    for membership in memberships:
        public_id = str(membership.user.public_id)
        assert f"<code>{public_id}</code>" in html
        assert f'data-copy="{public_id}"' in html


def test_a_member_does_not_see_user_ids(client, catalog):
    organization, admin = organization_on("standard")
    member = MembershipFactory(organization=organization).user
    client.login(email=member.email, password=PASSWORD)
    html = client.get(reverse("members")).content.decode()
    assert member.email in html and str(admin.public_id) not in html


def test_the_api_keys_page_explains_what_a_key_is_for(admin_client):
    html = admin_client.get(reverse("api_keys")).content.decode()
    assert "lets your product's servers ask Flywheel what" in html
    assert '<label for="api-key-name">Name</label>' in html


@pytest.mark.parametrize(
    ("path", "fields"),
    [
        ("/accounts/login/", ["login", "password"]),
        ("/accounts/password/reset/", ["email"]),
    ],
)
def test_allauth_pages_put_each_label_above_its_field(client, path, fields):
    html = client.get(path).content.decode()
    assert re.search(r'class="[^"]*\bentrance\b', html)
    for name in fields:
        assert re.search(
            rf'<div class="field">\s*<label for="id_{name}">[^<]+</label>\s*<input[^>]*name="{name}"', html
        ), name
    assert "<p><label" not in html


def test_allauth_signup_puts_each_label_above_its_field(client, catalog):
    html = client.get("/accounts/signup/").content.decode()
    assert re.search(r'<div class="field">\s*<label for="id_email">[^<]+</label>\s*<input[^>]*name="email"', html)
    assert re.search(r'<div class="field">\s*<label for="id_password1">[^<]+</label>\s*<input[^>]*name="password1"', html)
    assert "<p><label" not in html


# ---------------------------------------------------------------- colour contrast (WCAG 2.1 AA)

TEXT = 4.5  # normal text
UI = 3.0  # borders of controls, focus rings (1.4.11)
PAIRS = [
    ("ink", "bg", TEXT),
    ("ink", "surface", TEXT),
    ("ink", "surface-sunken", TEXT),
    ("ink", "highlight", TEXT),
    ("muted", "surface", TEXT),
    ("muted", "bg", TEXT),
    ("muted", "surface-sunken", TEXT),
    ("placeholder", "surface", TEXT),
    ("brand", "surface", TEXT),  # links, link buttons
    ("brand", "bg", TEXT),
    ("brand-strong", "brand-soft", TEXT),  # community tags
    ("badge-ink", "surface-sunken", TEXT),  # plain .status
    ("success", "success-soft", TEXT),  # .status.active, .banner.success
    ("warning", "warning-soft", TEXT),
    ("danger", "danger-soft", TEXT),
    ("info", "info-soft", TEXT),
    ("danger", "surface", TEXT),  # a secondary danger button, error text
    ("control", "surface", UI),
    ("focus", "surface", UI),
    ("focus", "bg", UI),
]
WHITE_ON = ["brand", "brand-strong", "danger", "danger-strong"]  # primary and danger buttons


def _tokens() -> dict[str, str]:
    return dict(re.findall(r"--color-([a-z-]+):\s*(#[0-9a-fA-F]{6})", CSS.read_text()))


def _luminance(hex_colour: str) -> float:
    channels = [int(hex_colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def _contrast(foreground: str, background: str) -> float:
    lighter, darker = sorted((_luminance(foreground), _luminance(background)), reverse=True)
    return (lighter + 0.05) / (darker + 0.05)


def test_the_contrast_formula_matches_known_values():
    assert round(_contrast("#000000", "#ffffff"), 1) == 21.0
    assert round(_contrast("#767676", "#ffffff"), 2) == 4.54


@pytest.mark.parametrize(("foreground", "background", "minimum"), PAIRS)
def test_every_colour_pair_of_the_design_system_passes_aa(foreground, background, minimum):
    tokens = _tokens()
    ratio = _contrast(tokens[foreground], tokens[background])
    assert ratio >= minimum, f"{foreground} on {background}: {ratio:.2f} < {minimum}"


@pytest.mark.parametrize("background", WHITE_ON)
def test_white_text_on_buttons_passes_aa(background):
    ratio = _contrast("#ffffff", _tokens()[background])
    assert ratio >= TEXT, f"white on {background}: {ratio:.2f}"


def test_buttons_and_the_header_use_the_tokens_that_are_checked():
    css = CSS.read_text()
    button = re.search(r"button, a\.button, input\[type=submit\], input\[type=button\] \{(.*?)\}", css, re.S).group(1)
    assert "color: #fff" in button and "background: var(--color-brand)" in button
    assert re.search(r":focus-visible \{ outline: 3px solid var\(--color-focus\)", css)
    assert "@media (prefers-reduced-motion: reduce)" in css
