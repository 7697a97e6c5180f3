"""The forum never shows a member's email address to other members: its domain would say
which organization they belong to, which only staff see (docs/community.md)."""

from django.urls import reverse

from ..conftest import organization_on
from .conftest import ask, established, member


def test_another_organizations_user_does_not_see_the_askers_email_or_domain(client, policies, tracker):
    acme, acme_admin = organization_on("premium")
    established(acme_admin)
    question = ask(acme_admin, tracker, organization=acme)
    outsider = member()  # a user of no organization / any other organization
    client.force_login(outsider)
    page = client.get(reverse("community_question", args=[question.public_id])).content.decode()
    assert question.title in page
    assert acme_admin.email not in page
    assert acme.email_domain not in page
    assert f"asked by Member {acme_admin.public_id.hex[:6]}" in page
    acme_admin.first_name = "Grace"
    acme_admin.save(update_fields=["first_name"])
    assert "asked by Grace" in client.get(reverse("community_question", args=[question.public_id])).content.decode()


def test_revision_history_does_not_show_editor_emails(client, policies, tracker):
    acme, acme_admin = organization_on("premium")
    established(acme_admin)
    question = ask(acme_admin, tracker, organization=acme)
    client.force_login(member())
    page = client.get(reverse("community_revisions", args=[question.public_id])).content.decode()
    assert acme_admin.email not in page
