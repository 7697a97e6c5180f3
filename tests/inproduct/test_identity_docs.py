"""docs/in-product.md's token snippets, run exactly as written (Python with PyJWT, Node with
node:crypto only), mint tokens that the exchange accepts."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from django.conf import settings

DOCS = Path(settings.BASE_DIR) / "docs" / "in-product.md"
# `make test` installs Node when it is missing (scripts/browser.sh): never skipped.
NODE = shutil.which("node") or "/usr/bin/node"


def snippet(marker: str) -> str:
    """The fenced block right after `<!-- marker -->` in the docs."""
    found = re.search(rf"<!-- {marker} -->\n```[a-z]+\n(.*?)\n```", DOCS.read_text(encoding="utf-8"), re.S)
    assert found, f"docs/in-product.md has no block marked {marker}"
    return found.group(1)


@pytest.fixture
def product_server_env(tracker_secret, monkeypatch):
    """The product server's configuration, as `kit_secret issue` printed it."""
    kit_secret, value = tracker_secret
    monkeypatch.setenv("FLYWHEEL_KIT_SECRET_TRACKER", value)
    monkeypatch.setenv("FLYWHEEL_KIT_KID_TRACKER", kit_secret.key_id)


def test_the_python_snippet_mints_an_accepted_token(product_server_env, acme, exchange):
    organization, admin, _member = acme
    namespace: dict = {}
    exec(compile(snippet("mint-python"), "docs/in-product.md (mint-python)", "exec"), namespace)  # noqa: S102 - the docs' own code

    token = namespace["flywheel_kit_token"](str(admin.public_id), str(organization.public_id))

    response = exchange(token)
    assert response.status_code == 200, response.json()
    assert response.json()["product"] == {"code": "tracker", "name": "Tracker"}


def test_the_node_snippet_mints_an_accepted_token(product_server_env, acme, exchange, tmp_path):
    organization, _admin, member = acme
    script = tmp_path / "mint.mjs"
    script.write_text(
        snippet("mint-node") + "\nconsole.log(flywheelKitToken(process.argv[2], process.argv[3]));\n", encoding="utf-8"
    )

    minted = subprocess.run(  # noqa: S603 - our own script, no shell
        [NODE, str(script), str(member.public_id), str(organization.public_id)],
        capture_output=True, text=True, timeout=30, check=True,
    )

    response = exchange(minted.stdout.strip())
    assert response.status_code == 200, response.json()
    assert response.json()["user"]["is_admin"] is False


def test_each_node_token_is_new(product_server_env, acme, exchange, tmp_path):
    """The snippet's jti is random: two tokens minted in one second are both accepted."""
    organization, admin, _member = acme
    script = tmp_path / "mint.mjs"
    script.write_text(
        snippet("mint-node")
        + "\nconsole.log(flywheelKitToken(process.argv[2], process.argv[3]));"
        + "\nconsole.log(flywheelKitToken(process.argv[2], process.argv[3]));\n",
        encoding="utf-8",
    )
    minted = subprocess.run(  # noqa: S603
        [NODE, str(script), str(admin.public_id), str(organization.public_id)],
        capture_output=True, text=True, timeout=30, check=True,
    )
    first, second = minted.stdout.split()
    assert exchange(first).status_code == 200
    assert exchange(second).status_code == 200
