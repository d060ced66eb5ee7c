"""Requests and responses in API Gateway HTTP API (payload format 2.0) shape, and the errors routes raise.

Route code never sees the Lambda event: it gets an ``HttpRequest`` with the raw body bytes (HMACs
are computed over exactly what the sender signed) and lower-cased headers, and returns an
``HttpResponse`` or raises ``ApiError``, which becomes a JSON ``{"error": ...}`` with its status.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:  # pydantic loads with the first body parsed: the console reads requests without it
    from pydantic import BaseModel

M = TypeVar("M", bound="BaseModel")
JSON_HEADERS = {"content-type": "application/json", "cache-control": "no-store"}


MAX_JSON_DEPTH = 64  # the deepest real payload (a Shopify order) is under 10; Python's parser recurses
MAX_KEY_BYTES = 2048  # DynamoDB's partition key limit, in UTF-8 bytes (a sort key holds 1024)
JSON_MEDIA_TYPES = ("application/json",)


class ApiError(Exception):
    def __init__(self, status: int, reason: str, *, headers: Mapping[str, str] | None = None, **extra: Any) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.headers = dict(headers or {})
        self.extra = extra

    def response(self) -> "HttpResponse":
        return HttpResponse(self.status, {"error": self.reason, **self.extra}, self.headers)


def check_key_bytes(what: str, value: str, limit: int = MAX_KEY_BYTES) -> str:
    """``value`` unchanged if it fits a DynamoDB key of ``limit`` UTF-8 bytes; a 400 naming ``what`` otherwise.

    DynamoDB counts key sizes in UTF-8 bytes, not characters: 700 euro signs are 2100 bytes.
    """
    try:
        size = len(value.encode("utf-8"))
    except UnicodeEncodeError:
        raise ApiError(400, f"{what} contains a lone surrogate; it cannot be stored as UTF-8") from None
    if size > limit:
        raise ApiError(400, f"{what} is {size} bytes in UTF-8; DynamoDB keys hold at most {limit} bytes")
    return value


def _reject_constant(name: str) -> Any:
    raise ApiError(400, f"request body is not valid JSON: {name} is not a JSON number (RFC 8259)")


def _finite_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise ApiError(400, f"request body is not valid JSON for us: number {text[:40]!r} is not finite as a double")
    return value


def _check_tree(value: Any) -> None:
    """Every string (keys too) encodable as UTF-8, nesting at most MAX_JSON_DEPTH deep; iterative."""
    pending: list[tuple[Any, int]] = [(value, 1)]
    while pending:
        node, depth = pending.pop()
        if isinstance(node, str):
            strings: Any = (node,)
        elif isinstance(node, dict):
            strings = node.keys()
        else:
            strings = ()
        for text in strings:
            try:
                text.encode("utf-8")
            except UnicodeEncodeError:
                raise ApiError(400, "request body holds a lone surrogate (\\ud800-\\udfff) in a string; "
                                    "it cannot be stored as UTF-8") from None
        if isinstance(node, (dict, list)):
            if depth > MAX_JSON_DEPTH:
                raise ApiError(400, f"request body is nested more than {MAX_JSON_DEPTH} levels deep")
            pending.extend((child, depth + 1) for child in (node.values() if isinstance(node, dict) else node))


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
            value = json.loads(self.body, parse_constant=_reject_constant, parse_float=_finite_float)
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise ApiError(400, f"request body is not valid JSON: {error}") from None
        except RecursionError:
            raise ApiError(400, f"request body is nested more than {MAX_JSON_DEPTH} levels deep") from None
        except ValueError as error:  # Python's int-from-str limit: "Exceeds the limit (4300 digits) ..."
            raise ApiError(400, f"request body holds a number with too many digits ({error})") from None
        _check_tree(value)
        return value

    def require_json(self) -> None:
        """A 415 unless the body is declared as JSON (parameters allowed; a charset must be UTF-8)."""
        given = self.header("content-type")
        if not given:
            raise ApiError(415, "missing Content-Type header; send the body as application/json")
        media, *params = (part.strip() for part in given.split(";"))
        charset = next((p.split("=", 1)[1].strip().strip('"') for p in params
                        if p.lower().startswith("charset=")), "utf-8")
        if media.lower() not in JSON_MEDIA_TYPES or charset.lower() not in ("utf-8", "utf8"):
            raise ApiError(415, f"Content-Type {given[:100]!r} is not accepted; send the body as "
                                "application/json (UTF-8)")

    def parse(self, model: type[M]) -> M:
        """The JSON body validated by ``model``; a 400 naming the first bad field otherwise."""
        return parse_json(model, self.json())


def parse_json(model: type[M], value: Any, where: str = "body") -> M:
    from pydantic import ValidationError

    from events.schema_base import first_problem

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
