"""Signing in with the admin API key: a signed session cookie and per-session CSRF tokens.

Why a signed cookie and not a server-side session: the console runs on Lambda, where no memory
outlives a container and a session table would be one more thing to write and expire. The cookie
holds no secret (an expiry and a random session id), signed with HMAC-SHA256 under a key derived
from the admin API key, so rotating the key signs every session out. The API key itself is only
compared (in constant time) when it is typed in, never stored in the cookie.

CSRF: each form carries HMAC(key, "csrf" + session id), checked on every POST (403 otherwise);
SameSite=Strict keeps the cookie off cross-site requests as a second line.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

COOKIE = "dynafold_console"
PATH = "/console"
_SESSION_KEY_LABEL = b"dynafold-console-session-v1"


@dataclass(frozen=True)
class Session:
    session_id: str
    expires: int  # epoch seconds


def _key(api_key: str) -> bytes:
    return hmac.new(api_key.encode("utf-8"), _SESSION_KEY_LABEL, hashlib.sha256).digest()


def key_matches(api_key: str, given: str) -> bool:
    return hmac.compare_digest(api_key.encode("utf-8"), given.encode("utf-8"))


def new_cookie(api_key: str, now: datetime, hours: int) -> str:
    payload = {"sid": secrets.token_urlsafe(18), "exp": int((now + timedelta(hours=hours)).timestamp())}
    body = base64.urlsafe_b64encode(json.dumps(payload, separators=(",", ":")).encode()).decode().rstrip("=")
    signature = hmac.new(_key(api_key), body.encode(), hashlib.sha256).hexdigest()
    return f"{body}.{signature}"


def read_cookie(api_key: str, value: str | None, now: datetime) -> Session | None:
    """The session a cookie value stands for; None when absent, forged, damaged or expired."""
    if not value or value.count(".") != 1:
        return None
    body, signature = value.split(".")
    expected = hmac.new(_key(api_key), body.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected.encode(), signature.encode("ascii", "replace")):
        return None
    try:
        payload = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
        session = Session(str(payload["sid"]), int(payload["exp"]))
    except (binascii.Error, ValueError, KeyError, TypeError):
        return None
    return session if session.expires > now.timestamp() else None


def csrf_token(api_key: str, session: Session) -> str:
    return hmac.new(_key(api_key), b"csrf" + session.session_id.encode(), hashlib.sha256).hexdigest()


def csrf_matches(api_key: str, session: Session, given: str | None) -> bool:
    return bool(given) and hmac.compare_digest(csrf_token(api_key, session).encode(),
                                               (given or "").encode("ascii", "replace"))


def set_cookie(value: str, *, secure: bool, max_age: int) -> str:
    """The Set-Cookie header: HttpOnly, SameSite=Strict, under /console; Secure except on loopback http."""
    flags = f"{COOKIE}={value}; Path={PATH}; Max-Age={max_age}; HttpOnly; SameSite=Strict"
    return flags + ("; Secure" if secure else "")


def cookie_value(header: str | None) -> str | None:
    for part in (header or "").split(";"):
        name, _, value = part.strip().partition("=")
        if name == COOKIE:
            return value
    return None
