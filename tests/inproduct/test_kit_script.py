"""GET /kit/v1/kit.js: the kit's ES module, for any page (ACAO *), cacheable and revalidated
by ETag; a 404 naming the file while it is missing."""

from __future__ import annotations

import pytest

from inproduct import identity_views

SCRIPT = b"export const kit = 'flywheel';\n"


@pytest.fixture
def script_file(tmp_path, monkeypatch):
    path = tmp_path / "kit.js"
    path.write_bytes(SCRIPT)
    monkeypatch.setattr(identity_views, "KIT_SCRIPT", path)
    return path


def test_the_script_is_served_to_any_origin(client, script_file):
    response = client.get("/kit/v1/kit.js", HTTP_ORIGIN="https://anyone.example")
    assert response.status_code == 200
    assert response.content == SCRIPT
    assert response["Content-Type"] == "text/javascript; charset=utf-8"
    assert response["Access-Control-Allow-Origin"] == "*"
    assert response["Cache-Control"] == "public, max-age=300"
    assert response["ETag"].startswith('"')


def test_the_script_is_revalidated_by_its_etag(client, script_file):
    etag = client.get("/kit/v1/kit.js")["ETag"]
    again = client.get("/kit/v1/kit.js", HTTP_IF_NONE_MATCH=etag)
    assert again.status_code == 304
    assert again.content == b""

    script_file.write_bytes(SCRIPT + b"// changed, and longer\n")
    changed = client.get("/kit/v1/kit.js", HTTP_IF_NONE_MATCH=etag)
    assert changed.status_code == 200
    assert changed["ETag"] != etag


def test_a_missing_script_is_a_404_naming_the_file(client, tmp_path, monkeypatch):
    monkeypatch.setattr(identity_views, "KIT_SCRIPT", tmp_path / "absent.js")
    response = client.get("/kit/v1/kit.js")
    assert response.status_code == 404
    assert response.json() == {"detail": "The kit's script is not available: static/kit/v1/kit.js is missing."}


def test_the_script_is_only_read(client, script_file):
    response = client.post("/kit/v1/kit.js")
    assert response.status_code == 405
    assert response.json() == {"detail": "The kit's script is read with GET."}


def test_the_script_is_gzipped_for_browsers_that_take_it(client, script_file):
    import gzip

    plain = client.get("/kit/v1/kit.js")
    zipped = client.get("/kit/v1/kit.js", HTTP_ACCEPT_ENCODING="gzip, deflate, br")
    assert "Content-Encoding" not in plain
    assert zipped["Content-Encoding"] == "gzip"
    assert gzip.decompress(zipped.content) == SCRIPT
    assert "Accept-Encoding" in zipped["Vary"] and "Accept-Encoding" in plain["Vary"]
    assert zipped["ETag"] != plain["ETag"]
    assert client.get("/kit/v1/kit.js", HTTP_ACCEPT_ENCODING="gzip;q=0").get("Content-Encoding") is None
    assert client.get("/kit/v1/kit.js", HTTP_ACCEPT_ENCODING="gzip", HTTP_IF_NONE_MATCH=zipped["ETag"]).status_code == 304


def test_another_kit_address_is_a_json_404(client, catalog, settings):
    for path in ("/kit/v1/nothing", "/kit/v2/session", "/kit/v1/session/", "/kit/"):
        response = client.post(path, HTTP_ORIGIN=settings.DEMO_PRODUCT_URL)
        assert response.status_code == 404, path
        assert response.json() == {"detail": f"There is no kit endpoint at {path}."}
        assert response["Access-Control-Allow-Origin"] == settings.DEMO_PRODUCT_URL
    assert "Access-Control-Allow-Origin" not in client.get("/kit/v1/x", HTTP_ORIGIN="https://evil.example")


def test_the_real_script_is_served_whole(client):
    """static/kit/v1/kit.js itself: one ES module, served byte for byte (and gzipped the same)."""
    import gzip

    source = identity_views.KIT_SCRIPT.read_bytes()
    response = client.get("/kit/v1/kit.js")
    assert response.status_code == 200
    assert response.content == source
    zipped = client.get("/kit/v1/kit.js", HTTP_ACCEPT_ENCODING="gzip")
    assert gzip.decompress(zipped.content) == source
    assert len(zipped.content) < 15 * 1024, f"kit.js is {len(zipped.content):,} bytes gzipped: over its 15 KB budget"
