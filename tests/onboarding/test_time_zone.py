"""The browser's time zone is captured at signup, for quiet hours in the user's own time."""

from __future__ import annotations

import pytest
from django.urls import reverse

from accounts.models import User

STRONG = "plum-Orchard-47-kettle"


@pytest.mark.django_db
@pytest.mark.parametrize(("sent", "kept"), [("Europe/Paris", "Europe/Paris"), ("Mars/Olympus_Mons", ""), ("", "")])
def test_signup_keeps_a_known_browser_time_zone(client, catalog, sent, kept):
    page = client.get(reverse("account_signup")).content.decode()
    # static/js/account.js fills the field marked data-browser-time-zone
    assert 'name="time_zone"' in page and "data-browser-time-zone" in page and "/static/js/account.js" in page

    response = client.post(
        reverse("account_signup"),
        {"email": "zoned@example.com", "password1": STRONG, "password2": STRONG, "time_zone": sent},
    )
    assert response.status_code == 302
    assert User.objects.get(email="zoned@example.com").time_zone == kept


def test_a_stored_zone_that_is_no_zone_falls_back_to_the_default(settings):
    from types import SimpleNamespace

    from onboarding.services.quiet_hours import user_zone

    settings.DEFAULT_USER_TIME_ZONE = "Europe/Paris"
    for stored in ("America", "Etc", "Mars/Olympus", "../../etc/passwd", ""):
        assert str(user_zone(SimpleNamespace(time_zone=stored))) == "Europe/Paris"
