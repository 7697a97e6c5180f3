"""The kit's message endpoints: the message due now and what the person did with it."""

from __future__ import annotations

from django.urls import URLPattern

urlpatterns: list[URLPattern] = []
