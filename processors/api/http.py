"""Requests and responses in API Gateway HTTP API (payload format 2.0) shape, and the errors routes raise.

Route code never sees the Lambda event: it gets an ``HttpRequest`` with the raw body bytes (HMACs
are computed over exactly what the sender signed) and lower-cased headers, and returns an
``HttpResponse`` or raises ``ApiError``, which becomes a JSON ``{"error": ...}`` with its status.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from events.schema_base import first_problem

M = TypeVar("M", bound=BaseModel)
JSON_HEADERS = {"content-type": "application/json", "cache-control": "no-store"}


class ApiError(Exception):
    def __init__(self, status: int, reason: str, **extra: Any) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.extra = extra

    def response(self) -> "HttpResponse":
        return HttpResponse(self.status, {"error": self.reason, **self.extra})


@dataclass(frozen=True)
class HttpRequest:
    method: str
    path: str
    headers: Mapping[str, str]  # lower-cased names
    query: Mapping[str, str]
    body: bytes
    request_id: str = ""
    source_ip: str = ""
    path_params: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_api_gateway(cls, event: Mapping[str, Any]) -> "HttpRequest":
        """An HTTP API payload v2 event (what API Gateway sends Lambda, and what the local server builds)."""
        context = event.get("requestContext") or {}
        http = context.get("http") or {}
        raw = event.get("body") or ""
        if event.get("isBase64Encoded"):
            try:
                body = base64.b64decode(raw, validate=True)
            except (binascii.Error, ValueError):
                raise ApiError(400, "body is not valid base64") from None
        else:
            body = raw.encode("utf-8")
        headers = {str(k).lower(): str(v) for k, v in (event.get("headers") or {}).items()}
        return cls(
            method=str(http.get("method") or "GET").upper(),
            path=str(event.get("rawPath") or http.get("path") or "/"),
            headers=headers,
            query={str(k): str(v) for k, v in (event.get("queryStringParameters") or {}).items()},
            body=body,
            request_id=str(context.get("requestId") or ""),
            source_ip=str(http.get("sourceIp") or ""),
        )

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    def json(self) -> Any:
        if not self.body:
            raise ApiError(400, "request body is empty; send a JSON object")
        try:
            return json.loads(self.body)
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise ApiError(400, f"request body is not valid JSON: {error}") from None

    def parse(self, model: type[M]) -> M:
        """The JSON body validated by ``model``; a 400 naming the first bad field otherwise."""
        return parse_json(model, self.json())


def parse_json(model: type[M], value: Any, where: str = "body") -> M:
    if not isinstance(value, dict):
        raise ApiError(400, f"{where} must be a JSON object")
    try:
        return model.model_validate(value)
    except ValidationError as error:
        name, reason = first_problem(error)
        raise ApiError(400, f"{where}: field {name or where!r}: {reason}", field=name or where) from None


@dataclass(frozen=True)
class HttpResponse:
    status: int
    body: Any
    headers: Mapping[str, str] = field(default_factory=dict)

    def to_api_gateway(self) -> dict[str, Any]:
        return {
            "statusCode": self.status,
            "headers": {**JSON_HEADERS, **self.headers},
            "body": json.dumps(self.body, default=str, ensure_ascii=False, separators=(",", ":")),
            "isBase64Encoded": False,
        }
