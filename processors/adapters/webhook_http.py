"""The outbound HTTP adapter: one POST to a checked target, never followed, never re-resolved.

The connection goes to ``ResolvedTarget.address`` (the address the SSRF guard checked), while
the Host header and the TLS server name and certificate check use the URL's host: a DNS answer
that changes after the check cannot send the request anywhere else. Redirects are returned, not
followed (``http.client`` never follows them). Standard library only.
"""

from __future__ import annotations

import contextlib
import http.client
import socket
import ssl
import threading
import time
from collections.abc import Mapping

from events.delivery_policy import HttpOutcome
from processors.adapters.outbound import ResolvedTarget

MAX_ERROR_CHARS = 500
_BODY_EXCERPT_BYTES = 256  # of an error response: enough to say why, never the whole body


class _PinnedHTTPConnection(http.client.HTTPConnection):
    def __init__(self, target: ResolvedTarget, timeout: float) -> None:
        super().__init__(target.host, target.port, timeout=timeout)
        self._address = target.address

    def connect(self) -> None:
        self.sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, target: ResolvedTarget, timeout: float, tls: ssl.SSLContext) -> None:
        super().__init__(target.host, target.port, timeout=timeout, context=tls)
        self._address = target.address
        self._tls = tls

    def connect(self) -> None:
        raw = socket.create_connection((self._address, self.port), self.timeout)
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:  # server_hostname: SNI and the certificate's name check are against the URL's host
            self.sock = self._tls.wrap_socket(raw, server_hostname=self.host)
        except BaseException:
            raw.close()
            raise


class _Deadline:
    """Ends a request at its deadline, whatever it is waiting for: at ``seconds`` after start the
    socket is shut down, so a blocked connect, send or read returns at once. Socket timeouts
    alone bound each operation, not their sum: a target that trickles a byte now and then (or
    slow TLS, then slow headers) would hold the worker for many timeouts."""

    def __init__(self, connection: http.client.HTTPConnection, seconds: float) -> None:
        self._connection = connection
        self.expired = False
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True

    def _expire(self) -> None:
        self.expired = True
        sock = self._connection.sock
        if sock is not None:
            with contextlib.suppress(OSError):  # already closed or never connected: nothing to cut
                sock.shutdown(socket.SHUT_RDWR)  # not close(): the owner closes, no descriptor reuse race

    def __enter__(self) -> "_Deadline":
        self._timer.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._timer.cancel()


def post(target: ResolvedTarget, body: bytes, headers: Mapping[str, str], timeout: float,
         tls: ssl.SSLContext | None = None) -> HttpOutcome:
    """POST ``body``; the outcome carries the status, Retry-After and a bounded error text.

    ``timeout`` is the whole request's deadline: connecting, TLS, sending and reading the answer
    together (the worker's job budget relies on it). ``tls`` defaults to the system trust store
    with hostname checking on; tests pass a context that trusts their own certificate."""
    if target.scheme == "https":
        connection: http.client.HTTPConnection = _PinnedHTTPSConnection(
            target, timeout, tls or ssl.create_default_context())
    else:
        connection = _PinnedHTTPConnection(target, timeout)
    started = time.perf_counter()
    deadline = _Deadline(connection, timeout)
    try:
        with deadline:
            connection.request("POST", target.path, body=body, headers=dict(headers))
            response = connection.getresponse()
            excerpt = b"" if 200 <= response.status < 300 else response.read(_BODY_EXCERPT_BYTES)
        elapsed = _ms(started)
        if deadline.expired:
            return _timed_out(started, timeout, "deadline reached")
        return HttpOutcome(
            status_code=response.status, response_time_ms=elapsed, retry_after=response.getheader("Retry-After"),
            error=None if 200 <= response.status < 300 else _error_text(response, excerpt),
        )
    except TimeoutError as error:  # socket.timeout is TimeoutError
        return _timed_out(started, timeout, str(error))
    except ssl.SSLError as error:  # includes certificate verification failures
        if deadline.expired:
            return _timed_out(started, timeout, "deadline reached")
        return HttpOutcome(None, _ms(started), error=_bounded(f"TLS: {error}"), failure="connection")
    except (OSError, http.client.HTTPException) as error:
        if deadline.expired:  # the shutdown surfaces as a reset or a closed connection
            return _timed_out(started, timeout, "deadline reached")
        return HttpOutcome(None, _ms(started), error=_bounded(f"{type(error).__name__}: {error}"),
                           failure="connection")
    finally:
        connection.close()


def _timed_out(started: float, timeout: float, detail: str) -> HttpOutcome:
    return HttpOutcome(None, _ms(started), error=_bounded(f"timed out after {timeout:g}s ({detail})"),
                       failure="timeout")


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000.0, 3)


def _error_text(response: http.client.HTTPResponse, excerpt: bytes) -> str:
    text = f"HTTP {response.status} {response.reason}".rstrip()
    location = response.getheader("Location")
    if 300 <= response.status < 400 and location:
        text += f" (to {location}; not followed)"
    detail = excerpt.decode("utf-8", errors="replace").strip()
    return _bounded(f"{text}: {detail}" if detail else text)


def _bounded(text: str) -> str:
    return text if len(text) <= MAX_ERROR_CHARS else text[: MAX_ERROR_CHARS - 1] + "…"
