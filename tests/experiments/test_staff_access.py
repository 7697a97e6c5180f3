"""Every staff page (/staff/...): staff get in; a signed-out visitor gets the normal sign-in page
with `next=`; a signed-in customer gets a plain "staff only" page, never Django's admin login."""

from __future__ import annotations

import uuid

import pytest
from django.urls import URLPattern, URLResolver, get_resolver

from ..factories import MembershipFactory

PLACEHOLDERS = {"uuid": str(uuid.uuid4()), "int": "1", "slug": "some-experiment", "str": "x", "path": "x"}


def staff_paths() -> list[str]:
    """Every URL under /staff/, its parameters filled in with placeholders."""
    found: list[str] = []

    def walk(patterns, prefix: str) -> None:
        for pattern in patterns:
            route = prefix + str(pattern.pattern)
            if isinstance(pattern, URLResolver):
                walk(pattern.url_patterns, route)
            elif isinstance(pattern, URLPattern) and route.startswith("staff/"):
                path = route
                for converter, value in PLACEHOLDERS.items():
                    while f"<{converter}:" in path:
                        start = path.index(f"<{converter}:")
                        path = path[:start] + value + path[path.index(">", start) + 1 :]
                found.append("/" + path)

    walk(get_resolver().url_patterns, "")
    return sorted(set(found))


def test_the_staff_pages_are_all_found():
    paths = staff_paths()
    for expected in (
        "/staff/funnel/",
        "/staff/experiments/",
        "/staff/feedback/",
        "/staff/community/queue/",
        "/staff/community/metrics/",
        "/staff/community/moderation/",
        "/staff/sales-leads/",
    ):
        assert expected in paths


@pytest.mark.parametrize("path", staff_paths())
def test_a_signed_out_visitor_is_sent_to_the_normal_sign_in_page(client, db, path):
    response = client.get(path)

    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/?next=")
    assert "/admin/" not in response["Location"]


@pytest.mark.parametrize("path", staff_paths())
def test_a_customer_is_told_staff_only_not_shown_the_admin_login(client, db, path):
    client.force_login(MembershipFactory().user)

    response = client.get(path)

    assert response.status_code == 403
    page = response.content.decode()
    assert "<h1>Staff only</h1>" in page
    assert "not a staff account" in page
    assert "Django administration" not in page and "not authorized to access this page" not in page
