"""Standard Webhooks signatures (https://www.standardwebhooks.com), for sending and for receiving.

``webhook-signature: v1,<base64 HMAC-SHA256 of "{webhook-id}.{webhook-timestamp}.{body}">``, keyed
with the base64-decoded part of a ``whsec_...`` secret. Several space-separated signatures may be
sent (secret rotation); a receiver accepts the request when any of them matches.

Errors never include the secret: they say which setting is wrong and how, not what it holds.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
from collections.abc import Mapping

from events.errors import DynafoldError

SECRET_PREFIX = "whsec_"  # noqa: S105 - the format's prefix, not a secret
SECRET_ENV = "DYNAFOLD_SIGNING_SECRET"  # noqa: S105 - a variable name, not a secret
MIN_KEY_BYTES = 24  # Standard Webhooks asks for 24-64 random bytes


class SigningSecretError(DynafoldError):
    """The signing secret is missing or malformed: nothing may be sent unsigned."""


def signing_key(secret: str | None, setting: str = SECRET_ENV) -> bytes:
    """The HMAC key of a ``whsec_<base64>`` secret."""
    if not secret or not secret.strip():
        raise SigningSecretError(f"{setting} is not set: webhooks are never sent unsigned")
    text = secret.strip()
    if not text.startswith(SECRET_PREFIX):
        raise SigningSecretError(f"{setting} must start with {SECRET_PREFIX!r} followed by base64")
    try:
        key = base64.b64decode(text[len(SECRET_PREFIX):], validate=True)
    except (binascii.Error, ValueError):
        raise SigningSecretError(f"{setting}: the part after {SECRET_PREFIX!r} is not valid base64") from None
    if len(key) < MIN_KEY_BYTES:
        raise SigningSecretError(f"{setting}: the key must be at least {MIN_KEY_BYTES} bytes, not {len(key)}")
    return key


def new_secret(random_bytes: bytes) -> str:
    """A secret in the ``whsec_`` format from caller-supplied random bytes (e.g. ``os.urandom(32)``)."""
    return SECRET_PREFIX + base64.b64encode(random_bytes).decode("ascii")


def signature(key: bytes, webhook_id: str, timestamp: int, body: bytes) -> str:
    signed = f"{webhook_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode("ascii")


def signed_headers(key: bytes, webhook_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    return {
        "content-type": "application/json",
        "webhook-id": webhook_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature(key, webhook_id, timestamp, body),
    }


TIMESTAMP_TOLERANCE_SECONDS = 300  # Standard Webhooks: reject timestamps more than 5 minutes from now


def verify(key: bytes, headers: Mapping[str, str], body: bytes, *, now: float | None = None,
           tolerance: int = TIMESTAMP_TOLERANCE_SECONDS) -> bool:
    """Whether the request carries a valid v1 signature for this key (constant-time comparison)
    and a ``webhook-timestamp`` within ``tolerance`` seconds of ``now`` (the system clock by
    default), either way: a captured request replayed later, or one dated ahead, does not verify.

    ``headers`` must be case-insensitive or lower-case (http.server's message object is)."""
    webhook_id, timestamp = headers.get("webhook-id"), headers.get("webhook-timestamp")
    if not webhook_id or not timestamp or not (timestamp.isascii() and timestamp.isdigit()) or len(timestamp) > 12:
        return False
    current = time.time() if now is None else now
    if abs(current - int(timestamp)) > tolerance:
        return False
    expected = signature(key, webhook_id, int(timestamp), body)
    offered = (headers.get("webhook-signature") or "").split()
    return any(hmac.compare_digest(expected, candidate) for candidate in offered)
