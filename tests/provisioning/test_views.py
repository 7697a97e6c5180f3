"""The "your workspace is being prepared" page, its htmx polling, and the tenant wall."""

from __future__ import annotations

import pytest

from accounts.models import Membership
from provisioning import services
from provisioning.models import Environment

from ..conftest import organization_on
from ..factories import MembershipFactory

WORKSPACE_URL = "https://tracker.example.test/acme"
HTMX = {"HX-Request": "true"}


@pytest.fixture
def member_and_environment(catalog):
    """A plain member of an organization whose Tracker trial environment is still requested
    (nothing runs the task in these tests)."""
    organization, _ = organization_on("standard")
    member = MembershipFactory(organization=organization, role=Membership.Role.MEMBER).user
    return member, Environment.objects.get(organization=organization)


def _status_url(environment: Environment) -> str:
    return f"/environments/{environment.public_id}/"


def test_a_requested_environment_shows_the_spinner_and_polls(client, member_and_environment):
    member, environment = member_and_environment
    client.force_login(member)

    response = client.get(_status_url(environment))

    assert response.status_code == 200
    page = response.content.decode()
    assert "<html" in page
    assert "Your Tracker workspace" in page
    assert 'class="spinner"' in page
    assert "Your workspace is being prepared" in page
    assert "this page moves on by itself" in page
    assert f'hx-get="/environments/{environment.public_id}/?follow=1"' in page
    assert 'hx-trigger="every 1s"' in page
    assert 'data-status="requested"' in page
    assert "HX-Redirect" not in response


def test_the_poll_answers_a_fragment_until_the_environment_is_active(
    client, member_and_environment
):
    member, environment = member_and_environment
    client.force_login(member)
    Environment.objects.filter(pk=environment.pk).update(
        status=Environment.Status.PROVISIONING, attempts=2
    )

    response = client.get(_status_url(environment), {"follow": "1"}, headers=HTMX)

    assert response.status_code == 200
    assert "HX-Redirect" not in response
    fragment = response.content.decode()
    assert "<html" not in fragment
    assert "Your workspace is being prepared (attempt 2)" in fragment
    assert 'data-status="provisioning"' in fragment
    assert "hx-get=" in fragment


def test_the_poll_redirects_to_the_workspace_once_active(client, member_and_environment):
    member, environment = member_and_environment
    client.force_login(member)
    services.environment_activate(environment_id=environment.pk, url=WORKSPACE_URL)

    followed = client.get(_status_url(environment), {"follow": "1"}, headers=HTMX)
    assert followed.status_code == 200
    assert followed["HX-Redirect"] == WORKSPACE_URL

    # Without ?follow=1 the fragment shows the link; a plain visit shows the page, no polling.
    fragment = client.get(_status_url(environment), headers=HTMX)
    assert "HX-Redirect" not in fragment
    assert f'href="{WORKSPACE_URL}"' in fragment.content.decode()
    page = client.get(_status_url(environment), {"follow": "1"})
    assert "HX-Redirect" not in page
    text = page.content.decode()
    assert "Your workspace is ready." in text
    assert f'<a class="button" id="open-workspace" href="{WORKSPACE_URL}">Open Tracker</a>' in text
    assert "hx-get=" not in text


def test_a_failed_environment_shows_the_reason_and_polls_slowly_for_a_retry(client, member_and_environment):
    member, environment = member_and_environment
    client.force_login(member)
    services.environment_fail(
        environment_id=environment.pk, reason="Tracker refused the request (400): no region"
    )

    response = client.get(_status_url(environment))

    assert response.status_code == 200
    page = response.content.decode()
    assert "We could not prepare your workspace." in page
    assert "Reason: Tracker refused the request (400): no region" in page
    assert 'data-status="failed"' in page
    assert "Our team has been told" not in page and "logged as an error for our team" in page
    assert 'hx-trigger="every 30s"' in page  # staff may start it again: the page shows it when ready
    htmx_response = client.get(_status_url(environment), {"follow": "1"}, headers=HTMX)
    assert "HX-Redirect" not in htmx_response
    assert "Reason: Tracker refused the request (400): no region" in htmx_response.content.decode()


def test_the_builtin_workspace_opens_for_members_once_active(client, member_and_environment):
    member, environment = member_and_environment
    client.force_login(member)
    workspace_url = f"/w/{environment.public_id}/"

    waiting = client.get(workspace_url)
    assert waiting.status_code == 200
    assert "Your workspace is being prepared" in waiting.content.decode()

    services.environment_provision(environment_id=environment.pk)
    environment.refresh_from_db()
    assert environment.url.endswith(workspace_url)
    ready = client.get(workspace_url)
    assert ready.status_code == 200
    page = ready.content.decode()
    assert 'id="workspace"' in page
    assert f"Tracker · {environment.organization.name}" in page


def test_another_organizations_user_gets_404(client, member_and_environment):
    _, environment = member_and_environment
    services.environment_activate(environment_id=environment.pk, url=WORKSPACE_URL)
    _, outsider = organization_on("standard")
    client.force_login(outsider)

    assert client.get(_status_url(environment)).status_code == 404
    assert client.get(_status_url(environment), {"follow": "1"}, headers=HTMX).status_code == 404
    assert client.get(f"/w/{environment.public_id}/").status_code == 404


def test_a_malformed_id_is_404(client, member_and_environment):
    member, _ = member_and_environment
    client.force_login(member)

    assert client.get("/environments/not-a-uuid/").status_code == 404
    assert client.get("/w/not-a-uuid/").status_code == 404


def test_anonymous_visitors_are_sent_to_log_in(client, member_and_environment):
    _, environment = member_and_environment

    for url in (_status_url(environment), f"/w/{environment.public_id}/"):
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith("/accounts/login/")
