"""How the products' API authenticates: an organization API key (accounts/api_keys.py) as a
bearer token. config/api.py makes it every operation's default; docs/api.md describes it."""

from __future__ import annotations

from django.http import HttpRequest
from ninja.security import HttpBearer

from .api_keys import ApiPrincipal, api_key_authenticate, api_key_resolve


class ApiKeyAuth(HttpBearer):
    """`Authorization: Bearer fw_live_<prefix>_<secret>`; 401 for a missing, unknown or revoked key.

    With `marker_read_by_operation`, a key this process remembers is let through to the
    operation, which must read its revocation marker (in its own round trip to Redis) and
    answer 401 when the key turns out revoked; the entitlements operation does.
    """

    def __init__(self, *, marker_read_by_operation: bool = False) -> None:
        super().__init__()
        self.marker_read_by_operation = marker_read_by_operation

    def authenticate(self, request: HttpRequest, token: str) -> ApiPrincipal | None:
        if self.marker_read_by_operation:
            return api_key_resolve(token)
        return api_key_authenticate(token)
