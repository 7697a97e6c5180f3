"""The development mailbox holds every verification and reset link: only this machine (never
through a proxy or tunnel) or staff may read it, and only while DEBUG is on."""

from django.urls import reverse

from ..factories import UserFactory


def test_dev_mailbox_is_only_for_this_machine_or_staff(client, settings, db):
    settings.DEBUG = True
    settings.EMAIL_BACKEND = "accounts.mail.MaildirBackend"
    assert client.get(reverse("dev_mailbox"), REMOTE_ADDR="127.0.0.1").status_code == 200
    assert client.get(reverse("dev_mailbox"), REMOTE_ADDR="203.0.113.9").status_code == 404
    # Through a tunnel or proxy on this machine: from loopback, but passed on from elsewhere.
    for header in ("HTTP_X_FORWARDED_FOR", "HTTP_FORWARDED", "HTTP_X_REAL_IP"):
        assert client.get(reverse("dev_mailbox"), REMOTE_ADDR="127.0.0.1", **{header: "203.0.113.9"}).status_code == 404
    client.force_login(UserFactory(email="ops@flywheel.example", is_staff=True))
    assert client.get(reverse("dev_mailbox"), REMOTE_ADDR="203.0.113.9").status_code == 200
    settings.DEBUG = False
    assert client.get(reverse("dev_mailbox"), REMOTE_ADDR="127.0.0.1").status_code == 404
