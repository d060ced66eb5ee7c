"""The outbound HTTP adapter: one POST to a checked target, never followed, never re-resolved.

The connection goes to ``ResolvedTarget.address`` (the address the SSRF guard checked), while
the Host header and the TLS server name and certificate check use the URL's host: a DNS answer
that changes after the check cannot send the request anywhere else. Redirects are returned, not
followed (``http.client`` never follows them). Standard library only.
"""

from __future__ import annotations

import http.client
import socket
import ssl
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


def post(target: ResolvedTarget, body: bytes, headers: Mapping[str, str], timeout: float,
         tls: ssl.SSLContext | None = None) -> HttpOutcome:
    """POST ``body``; the outcome carries the status, Retry-After and a bounded error text.

    ``timeout`` bounds connecting and each read. ``tls`` defaults to the system trust store with
    hostname checking on; tests pass a context that trusts their own certificate."""
    if target.scheme == "https":
        connection: http.client.HTTPConnection = _PinnedHTTPSConnection(
            target, timeout, tls or ssl.create_default_context())
    else:
        connection = _PinnedHTTPConnection(target, timeout)
    started = time.perf_counter()
    try:
        connection.request("POST", target.path, body=body, headers=dict(headers))
        response = connection.getresponse()
        excerpt = b"" if 200 <= response.status < 300 else response.read(_BODY_EXCERPT_BYTES)
        elapsed = _ms(started)
        return HttpOutcome(
            status_code=response.status, response_time_ms=elapsed, retry_after=response.getheader("Retry-After"),
            error=None if 200 <= response.status < 300 else _error_text(response, excerpt),
        )
    except TimeoutError as error:  # socket.timeout is TimeoutError
        return HttpOutcome(None, _ms(started), error=_bounded(f"timed out after {timeout:g}s ({error})"),
                           failure="timeout")
    except ssl.SSLError as error:  # includes certificate verification failures
        return HttpOutcome(None, _ms(started), error=_bounded(f"TLS: {error}"), failure="connection")
    except (OSError, http.client.HTTPException) as error:
        return HttpOutcome(None, _ms(started), error=_bounded(f"{type(error).__name__}: {error}"),
                           failure="connection")
    finally:
        connection.close()


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
