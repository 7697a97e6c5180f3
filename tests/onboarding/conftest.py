import pytest

from onboarding import mail


@pytest.fixture(autouse=True)
def _no_smtp_connection_outlives_its_test():
    """Sending keeps SMTP connections open between chunks: none is left for the next test."""
    yield
    mail.kept_connections_close()
