"""Who may call a route: webhook HMACs and the admin API key, all compared in constant time."""

from __future__ import annotations

import base64
import hashlib
import hmac

from processors.api.http import ApiError, HttpRequest
from processors.adapters.secrets import Secrets


def _missing(what: str) -> ApiError:
    return ApiError(503, f"{what} is not configured on this deployment; the route accepts nothing until it is")


def hmac_sha256(secret: str, body: bytes) -> bytes:
    return hmac.new(secret.encode("utf-8"), body, hashlib.sha256).digest()


def verify_shopify(request: HttpRequest, secrets: Secrets) -> None:
    """X-Shopify-Hmac-Sha256 = base64(HMAC-SHA256(app secret, raw body)); the previous secret is
    accepted too while a rotation is under way."""
    candidates = [s for s in (secrets.get("shopify"), secrets.get("shopify_previous")) if s]
    if not candidates:
        raise _missing("the Shopify app secret")
    given = request.header("x-shopify-hmac-sha256")
    if not given:
        raise ApiError(401, "missing X-Shopify-Hmac-Sha256 header")
    try:
        signature = base64.b64decode(given, validate=True)
    except ValueError:
        raise ApiError(401, "X-Shopify-Hmac-Sha256 is not base64") from None
    matches = [hmac.compare_digest(hmac_sha256(secret, request.body), signature) for secret in candidates]
    if not any(matches):
        raise ApiError(401, "X-Shopify-Hmac-Sha256 does not match the body")


def verify_inflow(request: HttpRequest, secrets: Secrets) -> None:
    """X-Inflow-Signature: sha256=<hex HMAC-SHA256(shared secret, raw body)>."""
    secret = secrets.get("inflow")
    if not secret:
        raise _missing("the InFlow webhook secret")
    given = request.header("x-inflow-signature") or ""
    scheme, _, digest = given.partition("=")
    if scheme != "sha256" or not digest:
        raise ApiError(401, "missing or malformed X-Inflow-Signature header (expected sha256=<hex>)")
    expected = hmac_sha256(secret, request.body).hex()
    if not hmac.compare_digest(expected.encode("ascii"), digest.strip().lower().encode("ascii", "replace")):
        raise ApiError(401, "X-Inflow-Signature does not match the body")


def require_api_key(request: HttpRequest, secrets: Secrets) -> None:
    key = secrets.get("admin_api_key")
    if not key:
        raise _missing("the admin API key")
    given = request.header("x-api-key")
    if not given:
        raise ApiError(401, "missing X-Api-Key header")
    if not hmac.compare_digest(key.encode("utf-8"), given.encode("utf-8")):
        raise ApiError(403, "X-Api-Key is not valid")
