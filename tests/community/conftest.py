"""Community fixtures: the default policies, members with reputation, support engineers."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from catalog.models import Product
from community.defaults import community_defaults_ensure
from community.models import Member
from community.services.escalations import support_engineer_set
from community.services.posts import question_ask

from ..factories import UserFactory

BODY = "Here is what I tried so far, and what happened instead of what I expected."


@pytest.fixture
def policies(catalog):
    """The default calendar (UTC, Monday to Friday 9-17) and the four tier policies."""
    community_defaults_ensure()


@pytest.fixture
def tracker(catalog):
    return Product.objects.get(code="tracker")


def established(user, *, reputation: int = 100):
    """Make `user` an established member: joined long ago, with some reputation."""
    user.date_joined = timezone.now() - timedelta(days=60)
    user.save(update_fields=["date_joined"])
    Member.objects.update_or_create(user=user, defaults={"reputation": reputation})
    return user


def member(*, reputation: int = 1, **user_fields):
    """A user in the community with the given reputation (old enough not to be a new account)."""
    user = UserFactory(**user_fields)
    user.date_joined = timezone.now() - timedelta(days=60)
    user.save(update_fields=["date_joined"])
    Member.objects.update_or_create(user=user, defaults={"reputation": reputation})
    return user


def engineer(*, cap: int = 10, on_duty: bool = True, is_lead: bool = False, **user_fields):
    user = UserFactory(is_staff=True, **user_fields)
    return support_engineer_set(user=user, on_duty=on_duty, cap=cap, is_lead=is_lead)


def ask(author, product, *, organization=None, title="How do I move a card between boards?", body=BODY, tags=()):
    return question_ask(author=author, organization=organization, product=product, title=title, body=body, tags=tags)
