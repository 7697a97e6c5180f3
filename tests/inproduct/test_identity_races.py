"""Exchanges racing each other: two tabs opening at once join one kit session, and one token
sent twice at once is exchanged once."""

from __future__ import annotations

import json
import threading
import time

import pytest
from django.db import connection
from django.test import Client

from inproduct.models import KitSession, KitTokenUse


def at_once(tokens: list[str], origin: str) -> list[int]:
    """POST each token to the exchange from its own thread (and database connection), all
    released together; their statuses."""
    barrier = threading.Barrier(len(tokens))
    statuses: list[int] = [0] * len(tokens)

    def send(index: int, token: str) -> None:
        try:
            barrier.wait(10)
            response = Client().post(
                "/kit/v1/session", data=json.dumps({"token": token}), content_type="application/json", HTTP_ORIGIN=origin
            )
            statuses[index] = response.status_code
        finally:
            connection.close()

    threads = [threading.Thread(target=send, args=(index, token)) for index, token in enumerate(tokens)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return statuses


@pytest.fixture
def slow_exchange(monkeypatch):
    """Hold each exchange a moment between spending its token and looking for the person's
    session: without the lock on the membership, every racing tab would then start its own."""
    manager = KitTokenUse.objects
    create = manager.create

    def slow_create(**fields):
        used = create(**fields)
        time.sleep(0.3)
        return used

    monkeypatch.setattr(manager, "create", slow_create)


@pytest.mark.django_db(transaction=True)
def test_tabs_opening_at_once_join_one_session(mint, demo_origin, slow_exchange):
    statuses = at_once([mint() for _ in range(4)], demo_origin)
    assert statuses == [200] * 4
    assert KitSession.objects.count() == 1
    assert KitTokenUse.objects.count() == 4


@pytest.mark.django_db(transaction=True)
def test_one_token_sent_twice_at_once_is_exchanged_once(mint, demo_origin):
    token = mint()
    statuses = at_once([token, token, token], demo_origin)
    assert sorted(statuses) == [200, 401, 401]
    assert KitSession.objects.count() == 1
    assert KitTokenUse.objects.count() == 1
