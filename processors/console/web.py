"""The console's HTTP layer: pages and files out in API Gateway's payload v2 shape, with the
security headers every answer carries, and the static files it serves itself."""

from __future__ import annotations

import base64
import mimetypes
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

STATIC_DIR = Path(__file__).resolve().parent / "static"
STATIC_PREFIX = "/console/static/"
# No inline script or style anywhere, nothing from another origin; forms post only here; no framing.
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
       "font-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
SECURITY_HEADERS = {
    "content-security-policy": CSP,
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "same-origin",
    "cross-origin-opener-policy": "same-origin",
    "cross-origin-resource-policy": "same-origin",
}
_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8",
          ".svg": "image/svg+xml", ".png": "image/png", ".txt": "text/plain; charset=utf-8"}
MAX_FORM_BYTES = 16 * 1024


class PageError(Exception):
    """A page that cannot be shown: 400 (bad parameter), 404 (unknown id), 403, 401, 503."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass(frozen=True)
class Page:
    status: int
    body: bytes
    headers: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def html(cls, status: int, text: str, headers: Mapping[str, str] | None = None) -> "Page":
        return cls(status, text.encode("utf-8"), {"content-type": "text/html; charset=utf-8",
                                                  "cache-control": "no-store", **(headers or {})})

    @classmethod
    def redirect(cls, location: str, headers: Mapping[str, str] | None = None) -> "Page":
        return cls(303, b"", {"location": location, "cache-control": "no-store", **(headers or {})})

    def to_api_gateway(self) -> dict[str, Any]:
        headers = {**SECURITY_HEADERS, **self.headers}
        cookies = [value for name, value in headers.items() if name == "set-cookie"]
        answer: dict[str, Any] = {
            "statusCode": self.status,
            "headers": {name: value for name, value in headers.items() if name != "set-cookie"},
            "body": base64.b64encode(self.body).decode("ascii"),
            "isBase64Encoded": True,
        }
        if cookies:
            answer["cookies"] = cookies  # payload v2: Set-Cookie values go in `cookies`
        return answer


def form(body: bytes, content_type: str | None) -> dict[str, str]:
    """An application/x-www-form-urlencoded body (what the console's forms send)."""
    if len(body) > MAX_FORM_BYTES:
        raise PageError(413, f"form body is {len(body)} bytes; the limit is {MAX_FORM_BYTES}")
    media = (content_type or "").split(";")[0].strip().lower()
    if body and media != "application/x-www-form-urlencoded":
        raise PageError(415, "forms are sent as application/x-www-form-urlencoded")
    try:
        pairs = urllib.parse.parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
    except UnicodeDecodeError:
        raise PageError(400, "form body is not UTF-8") from None
    return dict(pairs)


def static_file(path: str) -> Page:
    """A file under static/ (vendor libraries, the console's own script and style); 404 otherwise."""
    relative = path[len(STATIC_PREFIX):]
    target = (STATIC_DIR / relative).resolve()
    if not relative or STATIC_DIR not in target.parents or not target.is_file() or target.name == "vendor.json":
        raise PageError(404, f"no file {relative[:100]!r}")
    kind = _TYPES.get(target.suffix) or mimetypes.guess_type(target.name)[0] or "application/octet-stream"
    return Page(200, target.read_bytes(), {"content-type": kind, "cache-control": "public, max-age=300"})
