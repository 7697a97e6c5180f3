"""HMAC-SHA256 request signing shared by provisioning requests and callbacks (docs/provisioning.md).

    Flywheel-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>
"""

from __future__ import annotations

import hashlib
import hmac
import time

SIGNATURE_HEADER = "Flywheel-Signature"


def sign(secret: str, body: bytes, *, timestamp: int | None = None) -> str:
    timestamp = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def verify(secret: str, body: bytes, header: str, *, tolerance_seconds: int, now: float | None = None) -> str | None:
    """None if `header` is a valid, fresh signature of `body`; otherwise what is wrong."""
    if not header:
        return f"the {SIGNATURE_HEADER} header is missing"
    pairs = [part.strip().split("=", 1) for part in header.split(",") if "=" in part]
    timestamps = [value for key, value in pairs if key == "t"]
    if len(timestamps) != 1 or not (timestamps[0].isascii() and timestamps[0].isdigit() and len(timestamps[0]) <= 12):
        return f"the {SIGNATURE_HEADER} header needs exactly one t= timestamp in unix seconds"
    timestamp = int(timestamps[0])
    signatures = [value.encode("latin-1", "replace") for key, value in pairs if key == "v1"]
    if not signatures:
        return f"the {SIGNATURE_HEADER} header has no v1= signature"
    now = time.time() if now is None else now
    if abs(now - timestamp) > tolerance_seconds:
        return "the signature timestamp is too old or in the future (check the clock)"
    expected = sign(secret, body, timestamp=timestamp).split("v1=", 1)[1].encode()
    if not any(hmac.compare_digest(expected, candidate) for candidate in signatures):
        return "the signature does not match the body"
    return None
