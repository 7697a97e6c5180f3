"""The kit's identity endpoints: the token exchange and the script itself (identity.py)."""

from __future__ import annotations

from django.urls import URLPattern

urlpatterns: list[URLPattern] = []
