"""Provisioner backends: how an environment is set up for a product.

`builtin` makes no outside call; `http` asks the product's own endpoint (docs/provisioning.md).
This module is the only one that talks to a product's provisioning endpoint.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from urllib.parse import urlparse

import requests
import urllib3
from django.conf import settings
from django.urls import reverse

from catalog.models import Product

from .exceptions import PermanentProvisioningError, TransientProvisioningError
from .models import Environment
from .signing import SIGNATURE_HEADER, sign


def attempt_time_limit() -> int:
    """A hard bound on one attempt, whatever the product does, in seconds: the HTTP call has its
    own deadline (PROVISIONING_HTTP_TIMEOUT) and the rest is a few statements. The worker's
    task is killed past it (a killed attempt counts as one), and an attempt's lease on its
    environment lasts a little longer."""
    return max(60, int(4 * settings.PROVISIONING_HTTP_TIMEOUT))


@dataclass(frozen=True)
class Provisioned:
    url: str
    external_id: str


@dataclass(frozen=True)
class Accepted:
    """The product took the request and will call back when the environment is ready."""


Outcome = Provisioned | Accepted


def builtin_provision(environment: Environment) -> Outcome:
    """An environment served by Flywheel itself: a record and its URL, nothing else.

    The URL is a path on Flywheel's own site, so it stays right whatever address the site is
    reached at (and whatever SITE_URL the worker was started with)."""
    return Provisioned(
        url=reverse("builtin_workspace", args=[environment.public_id]),
        external_id=f"builtin-{environment.public_id}",
    )


def product_secret(product: Product) -> str:
    secret = os.environ.get(product.provisioning_secret_env or "", "")
    if not secret:
        raise PermanentProvisioningError(
            f"The provisioning secret for {product.name} is not configured: set the environment "
            f"variable {product.provisioning_secret_env or '(none named in the catalog)'}."
        )
    return secret


def http_request_body(environment: Environment) -> bytes:
    admin = environment.requested_by
    return json.dumps(
        {
            "environment_id": str(environment.public_id),
            "product": environment.product.code,
            "plan": environment.plan,
            "organization": {
                "id": str(environment.organization.public_id),
                "name": environment.organization.name,
            },
            "admin": {"id": str(admin.public_id), "email": admin.email} if admin else None,
            "callback_url": f"{settings.SITE_URL}/provisioning/callback",
        },
        sort_keys=True,
        separators=(",", ":"),
    ).encode()


MAX_ANSWER_BYTES = 64 * 1024  # a product's answer to the provisioning request


def valid_workspace_url(url: object) -> bool:
    if not isinstance(url, str) or len(url) > 500 or any(ord(character) < 32 or ord(character) == 127 for character in url):
        return False  # control characters (a NUL cannot even be stored)
    parsed = urlparse(url)
    return parsed.scheme in ("http", "https") and bool(parsed.netloc)


def http_provision(environment: Environment) -> Outcome:
    """POST the signed request; 2xx with a url is done, 202 waits for the callback.

    Timeouts, connection errors and 5xx are transient; any 4xx is permanent.
    """
    product = environment.product
    secret = product_secret(product)
    body = http_request_body(environment)
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "Flywheel-Provisioner/1",
        "Idempotency-Key": str(environment.public_id),
        SIGNATURE_HEADER: sign(secret, body),
    }
    late = TransientProvisioningError(f"{product.name} did not answer within {settings.PROVISIONING_HTTP_TIMEOUT:g} s.")
    deadline = time.monotonic() + settings.PROVISIONING_HTTP_TIMEOUT
    try:
        # requests' timeout bounds each wait for a byte, not the whole answer: read it against
        # a deadline of our own, so that a product trickling bytes cannot hold a worker.
        with requests.post(
            product.provisioning_url, data=body, headers=headers, timeout=settings.PROVISIONING_HTTP_TIMEOUT, stream=True
        ) as response:
            content = bytearray()
            while chunk := response.raw.read1(8192, decode_content=True):  # what one read on the socket gives
                content += chunk
                if time.monotonic() > deadline:
                    raise late
                if len(content) > MAX_ANSWER_BYTES:
                    raise PermanentProvisioningError(f"{product.name} answered more than {MAX_ANSWER_BYTES:,} bytes.")
    except (requests.Timeout, urllib3.exceptions.TimeoutError):
        raise late from None
    except (requests.RequestException, urllib3.exceptions.HTTPError) as error:
        raise TransientProvisioningError(f"{product.name} could not be reached: {error}") from None
    text = bytes(content).decode(response.encoding or "utf-8", errors="replace")
    snippet = text[:500]
    if response.status_code >= 500 or response.status_code == 429:
        raise TransientProvisioningError(f"{product.name} answered {response.status_code}: {snippet}")
    if response.status_code >= 400:
        raise PermanentProvisioningError(f"{product.name} refused the request ({response.status_code}): {snippet}")
    if response.status_code == 202:
        return Accepted()
    if not 200 <= response.status_code < 300:
        raise PermanentProvisioningError(f"{product.name} answered an unexpected {response.status_code}.")
    try:
        data = json.loads(text)
    except ValueError:
        raise PermanentProvisioningError(f"{product.name} answered {response.status_code} without JSON.") from None
    url = data.get("url") if isinstance(data, dict) else None
    if not valid_workspace_url(url):
        raise PermanentProvisioningError(f"{product.name} answered without a valid http(s) url: {snippet}")
    return Provisioned(url=url, external_id=str(data.get("external_id") or "")[:200])


BACKENDS = {
    Product.Provisioner.BUILTIN: builtin_provision,
    Product.Provisioner.HTTP: http_provision,
}


def provision(environment: Environment) -> Outcome:
    try:
        backend = BACKENDS[environment.product.provisioner]
    except KeyError:
        raise PermanentProvisioningError(
            f"{environment.product.name} has an unknown provisioner {environment.product.provisioner!r}."
        ) from None
    return backend(environment)
