"""processors/console/session.py: a session cookie is only what the admin key signed, until it expires."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from processors.console import session as sessions

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
KEY = "the-admin-key"


def test_a_signed_cookie_reads_back_until_it_expires() -> None:
    cookie = sessions.new_cookie(KEY, NOW, hours=8)
    session = sessions.read_cookie(KEY, cookie, NOW + timedelta(hours=7))
    assert session is not None and KEY not in cookie
    assert sessions.read_cookie(KEY, cookie, NOW + timedelta(hours=8, seconds=1)) is None


def test_a_forged_or_rekeyed_cookie_is_no_session() -> None:
    cookie = sessions.new_cookie(KEY, NOW, hours=8)
    body, signature = cookie.split(".")
    assert sessions.read_cookie("a-rotated-key", cookie, NOW) is None  # rotating the key signs everyone out
    assert sessions.read_cookie(KEY, body + "." + "0" * len(signature), NOW) is None
    assert sessions.read_cookie(KEY, body[:-2] + "AA." + signature, NOW) is None
    for junk in (None, "", "x", "a.b.c", "é.é"):
        assert sessions.read_cookie(KEY, junk, NOW) is None


def test_the_csrf_token_belongs_to_one_session() -> None:
    one = sessions.read_cookie(KEY, sessions.new_cookie(KEY, NOW, 8), NOW)
    other = sessions.read_cookie(KEY, sessions.new_cookie(KEY, NOW, 8), NOW)
    assert one is not None and other is not None
    token = sessions.csrf_token(KEY, one)
    assert sessions.csrf_matches(KEY, one, token)
    assert not sessions.csrf_matches(KEY, other, token)
    assert not sessions.csrf_matches(KEY, one, None) and not sessions.csrf_matches(KEY, one, "")


def test_the_cookie_is_http_only_strict_and_secure_off_loopback() -> None:
    header = sessions.set_cookie("v", secure=True, max_age=60)
    assert "HttpOnly" in header and "SameSite=Strict" in header and "Secure" in header and "Path=/console" in header
    assert "Secure" not in sessions.set_cookie("v", secure=False, max_age=60)
    assert sessions.cookie_value("a=1; dynafold_console=abc.def; b=2") == "abc.def"
