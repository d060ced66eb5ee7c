"""The HTTP API's OpenAPI 3.1 document, generated from the route table and its pydantic models.

Served at ``GET /openapi.json`` and committed as ``openapi.json`` at the repository root (a unit
test keeps the two equal). Regenerate the committed copy with::

    python -m processors.api > openapi.json

Only the ``/openapi.json`` route imports this module, so the ingest function's cold start does
not pay for it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from processors.api.auth import require_api_key, verify_inflow, verify_shopify
from processors.api.deps import DEFAULT_MAX_BODY_BYTES
from processors.api.routing import MAX_PATH_PARAM_BYTES, Auth, Route, public

TITLE = "dynafold HTTP API"
VERSION = "1"
_SECURITY: dict[Auth, tuple[str, dict[str, str]]] = {  # each route's auth function -> its security scheme
    require_api_key: ("ApiKey", {"type": "apiKey", "in": "header", "name": "X-Api-Key",
                                 "description": "the admin API key"}),
    verify_shopify: ("ShopifyHmac", {"type": "apiKey", "in": "header", "name": "X-Shopify-Hmac-Sha256",
                                     "description": "base64 HMAC-SHA256 of the raw body with the app secret"}),
    verify_inflow: ("InflowSignature", {
        "type": "apiKey", "in": "header", "name": "X-Inflow-Signature",
        "description": "sha256=<hex HMAC-SHA256 of the raw body with the shared secret>"}),
}
_ERROR_REF = {"$ref": "#/components/schemas/Error"}


def _error(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ERROR_REF}}}


def _operation(route: Route, refs: dict[type[BaseModel], dict[str, Any]]) -> dict[str, Any]:
    parameters: list[dict[str, Any]] = [
        {"name": name, "in": "path", "required": True,
         "schema": {"type": "string", "minLength": 1, "description": f"at most {MAX_PATH_PARAM_BYTES} bytes in UTF-8"}}
        for name in route.path_names]
    parameters += [{"name": p.name, "in": "query", "required": p.required, "description": p.description,
                    "schema": dict(p.schema)} for p in route.query]
    parameters += [{"name": p.name, "in": "header", "required": p.required, "description": p.description,
                    "schema": dict(p.schema)} for p in route.headers]
    operation: dict[str, Any] = {"operationId": f"{route.method.lower()}{_camel(route.template)}",
                                 "summary": route.summary}
    if parameters:
        operation["parameters"] = parameters
    responses: dict[str, Any] = {str(status): {"description": text, "content": {"application/json": {
        "schema": {"type": "object"}}}} for status, text in sorted(route.ok.items())}
    errors = {400: "bad request: the reason names the field, parameter or header"}
    if route.body:
        schemas = [refs[model] for model in route.body]
        operation["requestBody"] = {"required": route.body_required, "content": {"application/json": {
            "schema": schemas[0] if len(schemas) == 1 else {"oneOf": schemas}}}}
        errors |= {413: f"body over the limit ({DEFAULT_MAX_BODY_BYTES} bytes by default)",
                   415: "Content-Type is not application/json"}
    if route.auth is not public:
        scheme = _SECURITY[route.auth][0]
        operation["security"] = [{scheme: []}]
        errors |= {401: "missing or wrong credentials", 503: "the route's secret is not configured"}
        if route.auth is require_api_key:
            errors[403] = "X-Api-Key is not valid"
    for status, text in {**errors, **route.errors}.items():
        responses[str(status)] = _error(text)
    operation["responses"] = dict(sorted(responses.items()))
    return operation


def _camel(template: str) -> str:
    words = [w for w in template.replace("{", "").replace("}", "").replace(".", "/").replace("-", "/").split("/") if w]
    return "".join(w[:1].upper() + w[1:] for w in words)


def document(routes: Sequence[Route]) -> dict[str, Any]:
    """The document of ``routes`` (the app's route table), built once per table."""
    key = id(routes)
    if key not in _DOCUMENTS:
        _DOCUMENTS[key] = (routes, _document(routes))  # the table is kept with it: its id stays its own
    return _DOCUMENTS[key][1]


_DOCUMENTS: dict[int, tuple[Sequence[Route], dict[str, Any]]] = {}


def _document(routes: Sequence[Route]) -> dict[str, Any]:
    models = list(dict.fromkeys(model for route in routes for model in route.body))
    refs_by_key, definitions = models_json_schema([(model, "validation") for model in models],
                                                  ref_template="#/components/schemas/{model}")
    refs = {model: refs_by_key[(model, "validation")] for model in models}
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        paths.setdefault(route.template, {})[route.method.lower()] = _operation(route, refs)
    schemes = {name: scheme for name, scheme in (_SECURITY[r.auth] for r in routes if r.auth is not public)}
    schemas = dict(sorted({**definitions.get("$defs", {}), "Error": {
        "type": "object", "required": ["error"], "additionalProperties": True,
        "properties": {"error": {"type": "string", "description": "what is wrong"},
                       "field": {"type": "string", "description": "the body field at fault, when there is one"},
                       "allow": {"type": "array", "items": {"type": "string"},
                                 "description": "on a 405: the methods the path has (also the Allow header)"}}},
    }.items()))
    return {
        "openapi": "3.1.0",
        "info": {"title": TITLE, "version": VERSION,
                 "description": "InFlow and Shopify webhooks, message submission, inventory admin and read routes "
                                "over the views. Every error is JSON {\"error\": reason} with a 4xx status (503 "
                                "when a secret is missing); a rejected request appends nothing."},
        "paths": dict(sorted(paths.items())),
        "components": {"schemas": schemas, "securitySchemes": dict(sorted(schemes.items()))},
    }


def render(routes: Sequence[Route]) -> str:
    """The committed file's exact text."""
    return json.dumps(document(routes), indent=2, sort_keys=False, ensure_ascii=False) + "\n"
