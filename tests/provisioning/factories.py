"""Factories for provisioning rows that tests set up without the request service."""

from __future__ import annotations

import factory

from catalog.models import Product
from provisioning.models import Environment

from ..factories import OrganizationFactory


class EnvironmentFactory(factory.django.DjangoModelFactory):
    """An environment nobody scheduled (a lost task, or a state set up by hand). Needs the
    `catalog` fixture."""

    class Meta:
        model = Environment

    organization = factory.SubFactory(OrganizationFactory)
    product = factory.LazyFunction(lambda: Product.objects.get(code="wiki"))
    plan = factory.LazyFunction(lambda: {"edition": "standard", "seat_limit": 100})
