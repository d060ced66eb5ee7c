"""The OpenAPI document: generated from the route table, committed, served without auth, valid OpenAPI 3."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

from aws_lambda_powertools.event_handler.openapi.models import OpenAPI

from events.shopify import PAYLOADS
from processors.api.app import ROUTES, dispatch
from processors.api.routing import public
from processors.api.deps import ApiSettings
from processors.api.openapi import document, render
from processors.adapters.secrets import Secrets

ROOT = Path(__file__).resolve().parents[2]


def _get(path: str) -> tuple[int, dict, object]:
    deps = SimpleNamespace(settings=ApiSettings(), secrets=Secrets.of())  # no secrets at all: public needs none
    event = {"version": "2.0", "rawPath": path, "headers": {}, "isBase64Encoded": False,
             "requestContext": {"http": {"method": "GET", "path": path}, "requestId": "r-1"}}
    _, response = dispatch(event, deps)  # type: ignore[arg-type]
    return response.status, dict(response.headers), response.body


def test_the_committed_openapi_json_is_what_the_code_generates():
    committed = (ROOT / "openapi.json").read_text(encoding="utf-8")
    assert committed == render(ROUTES), "openapi.json is stale: run `python -m processors.api > openapi.json`"


def test_the_regeneration_command_prints_the_same_document():
    printed = subprocess.run([sys.executable, "-m", "processors.api"], cwd=ROOT, check=True,
                             capture_output=True, text=True).stdout
    assert printed == render(ROUTES)


def test_the_document_is_valid_openapi_3_and_names_every_route_with_its_auth():
    OpenAPI.model_validate(document(ROUTES))  # Powertools' own OpenAPI 3 models
    paths = document(ROUTES)["paths"]
    for route in ROUTES:
        operation = paths[route.template][route.method.lower()]
        assert operation["summary"]
        assert ("security" in operation) == (route.auth is not public), route.template
    assert [r.template for r in ROUTES if r.auth is public] == ["/openapi.json"]
    count = paths["/inventory/{sku}/count"]["put"]
    assert count["requestBody"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/CountBody"}
    assert document(ROUTES)["components"]["schemas"]["CountBody"]["properties"]["physical"]["maximum"] == 100_000_000
    assert set(count["responses"]) >= {"200", "400", "401", "403", "413", "415", "503"}
    shopify = paths["/webhooks/shopify"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert len(shopify["oneOf"]) == len(set(PAYLOADS.values()))  # one body model per topic's shape


def test_get_openapi_json_is_served_without_credentials():
    status, _, body = _get("/openapi.json")
    assert status == 200 and body == document(ROUTES)
    assert json.loads(json.dumps(body)) == json.loads(render(ROUTES))


def test_a_wrong_method_is_405_with_an_allow_header():
    deps = SimpleNamespace(settings=ApiSettings(), secrets=Secrets.of())
    event = {"version": "2.0", "rawPath": "/inventory/P/count", "headers": {}, "isBase64Encoded": False,
             "requestContext": {"http": {"method": "DELETE", "path": "/inventory/P/count"}}}
    _, response = dispatch(event, deps)  # type: ignore[arg-type]
    assert response.status == 405 and response.body["allow"] == ["PUT"]
    assert response.to_api_gateway()["headers"]["allow"] == "PUT"
    assert _get("/nowhere")[0] == 404
