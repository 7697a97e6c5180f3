"""The OpenAPI schema declares every answer an operation can give: 422 (input that does not fit,
a NUL character) on every operation with its body, and 400 where the body cannot be read or a
service refuses (prompts shown and clicked among them)."""

from __future__ import annotations

import json

import pytest
from django.urls import reverse

from accounts import api_keys

METHODS = ("get", "post", "put", "patch", "delete")


@pytest.fixture
def schema(client, db):
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    return response.json()


def _operations(schema):
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            if method in METHODS:
                yield f"{method.upper()} {path}", operation


def _resolve(schema, node):
    while "$ref" in node:
        node = schema["components"]["schemas"][node["$ref"].rsplit("/", 1)[-1]]
    return node


def test_every_operation_declares_its_422_with_the_validation_error_body(schema):
    operations = dict(_operations(schema))
    assert len(operations) >= 9, sorted(operations)
    missing = [name for name, operation in operations.items() if "422" not in operation["responses"]]
    assert not missing, f"no 422 declared for {missing}"
    for name, operation in operations.items():
        body = _resolve(schema, operation["responses"]["422"]["content"]["application/json"]["schema"])
        issue = _resolve(schema, body["properties"]["detail"]["items"])
        assert {"type", "loc", "msg"} <= set(issue["properties"]), name


def test_every_operation_that_reads_a_body_declares_400(schema):
    readers = [name for name, operation in _operations(schema) if "requestBody" in operation]
    assert any(name.endswith("/shown") for name in readers) and any(name.endswith("/clicked") for name in readers)
    missing = [name for name, operation in _operations(schema) if "requestBody" in operation and "400" not in operation["responses"]]
    assert not missing, f"no 400 declared for {missing}"


def test_a_real_422_has_the_declared_shape(client, trial_organization):
    organization, admin = trial_organization
    _, raw = api_keys.api_key_create(organization=organization, actor=admin, name="servers")
    response = client.post(
        "/api/v1/prompts/trial_ending/shown",
        json.dumps({"user": "not-a-uuid"}),
        content_type="application/json",
        headers={"Authorization": f"Bearer {raw}"},
    )
    assert response.status_code == 422
    (issue,) = response.json()["detail"]
    assert issue["loc"][-1] == "user" and issue["msg"] and issue["type"]
    assert reverse("api:openapi-json") == "/api/v1/openapi.json"
