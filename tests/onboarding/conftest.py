import pytest

from onboarding import mail

from . import relays


@pytest.fixture(autouse=True)
def _no_smtp_connection_outlives_its_test():
    """Sending keeps SMTP connections open between chunks: none is left for the next test."""
    yield
    mail.kept_connections_close()


@pytest.fixture
def during_first_send(settings):
    """Send through the locmem backend, and run `action()` while the first email is on its way."""
    settings.EMAIL_BACKEND = f"{relays.__name__}.ActingRelay"
    yield relays.ACTIONS.append
    left, relays.ACTIONS[:] = list(relays.ACTIONS), []
    assert not left, "the action never ran: no email was sent"
