"""A scripted webhook receiver on loopback: verifies Standard Webhooks signatures, answers from a script.

For the tests and the demo. Each path answers its scripted replies in order (the last one
repeats): 200, 500, 503, 429 with Retry-After, 410, a reply slower than the sender's timeout,
a redirect. A request whose signature does not verify gets 401 whatever the script says, as a
real receiver would answer. Everything received is recorded.

    with WebhookReceiver(secret) as receiver:
        receiver.script("/flaky", Reply.status(503), Reply.ok())
        url = receiver.url("/flaky")          # http://127.0.0.1:<port>/flaky
        ...
        receiver.received("/flaky")           # [Received(...), Received(...)]
"""

from __future__ import annotations

import json
import ssl
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from processors.adapters.webhook_signing import signing_key, verify

_HOLD_LIMIT_SECONDS = 10.0  # a Reply.wait_for_requests gate never hangs a test for longer


@dataclass(frozen=True)
class Reply:
    status_code: int = 200
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""
    delay_seconds: float = 0.0  # answer this late: past the sender's timeout, it is a timeout
    wait_for_requests: int = 0  # hold the answer until this many requests reached the path (races)

    @classmethod
    def ok(cls, **kwargs: Any) -> "Reply":
        return cls(200, body=b'{"ok":true}', **kwargs)

    @classmethod
    def status(cls, code: int, **kwargs: Any) -> "Reply":
        return cls(code, **kwargs)

    @classmethod
    def retry_after(cls, retry_after: str | int, code: int = 429) -> "Reply":
        return cls(code, headers={"Retry-After": str(retry_after)})

    @classmethod
    def gone(cls) -> "Reply":
        return cls(410, body=b"this endpoint was removed")

    @classmethod
    def slow(cls, seconds: float) -> "Reply":
        return cls(200, delay_seconds=seconds)

    @classmethod
    def redirect(cls, location: str, code: int = 302) -> "Reply":
        return cls(code, headers={"Location": location})


@dataclass(frozen=True)
class Received:
    path: str
    headers: Mapping[str, str]  # lower-case names
    body: bytes
    signature_valid: bool
    answered: int

    @property
    def webhook_id(self) -> str | None:
        return self.headers.get("webhook-id")

    @property
    def timestamp(self) -> int | None:
        text = self.headers.get("webhook-timestamp")
        return int(text) if text and text.isdigit() else None

    def json(self) -> Any:
        return json.loads(self.body)


class WebhookReceiver:
    def __init__(self, secret: str, host: str = "127.0.0.1", port: int = 0, tls: ssl.SSLContext | None = None,
                 clock: Callable[[], float] | None = None) -> None:
        """``clock`` (epoch seconds, the system clock by default) is what signature timestamps are
        checked against: a sender on a fast-forwarded test clock passes the same clock."""
        self._key = signing_key(secret, "receiver secret")
        self._clock = clock
        self._scripts: dict[str, list[Reply]] = {}
        self._received: list[Received] = []
        self._arrivals: dict[str, int] = {}
        self._changed = threading.Condition()
        self._stopping = threading.Event()
        self._host = host  # the name we bound; server_address types its host as str | bytes
        self._server = _Server((host, port), _handler_for(self))
        if tls is not None:
            self._server.socket = tls.wrap_socket(self._server.socket, server_side=True)
        self._scheme = "https" if tls is not None else "http"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="webhook-receiver", daemon=True)

    # --- lifecycle

    def start(self) -> "WebhookReceiver":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        with self._changed:
            self._changed.notify_all()
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> "WebhookReceiver":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- script and record

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def url(self, path: str, host: str | None = None) -> str:
        """The URL of a path; ``host`` names the server differently (e.g. for a TLS certificate's name)."""
        return f"{self._scheme}://{host or self._host}:{self.port}{path}"

    def script(self, path: str, *replies: Reply) -> None:
        if not replies:
            raise ValueError("script at least one reply")
        with self._changed:
            self._scripts[path] = list(replies)

    def received(self, path: str | None = None) -> list[Received]:
        with self._changed:
            return [r for r in self._received if path is None or r.path == path]

    # --- serving (called on the server's threads)

    def _answer(self, path: str, signature_valid: bool) -> Reply:
        """The reply to one request; a request that fails verification does not use up the script."""
        with self._changed:
            self._arrivals[path] = self._arrivals.get(path, 0) + 1
            self._changed.notify_all()
            if not signature_valid:
                return Reply(401, body=b"invalid webhook signature")
            script = self._scripts.get(path)
            if not script:
                return Reply(404, body=b"no script for this path")
            return script.pop(0) if len(script) > 1 else script[0]

    def _hold(self, path: str, reply: Reply) -> None:
        if reply.wait_for_requests:
            with self._changed:
                self._changed.wait_for(lambda: self._stopping.is_set()
                                       or self._arrivals.get(path, 0) >= reply.wait_for_requests,
                                       timeout=_HOLD_LIMIT_SECONDS)
        if reply.delay_seconds:
            self._stopping.wait(reply.delay_seconds)

    def _record(self, received: Received) -> None:
        with self._changed:
            self._received.append(received)

    def _verify(self, headers: Mapping[str, str], body: bytes) -> bool:
        return verify(self._key, headers, body, now=None if self._clock is None else self._clock())


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # a slow reply still sleeping must not hold up stop()

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a sender that timed out and hung up is the expected end of a slow reply


def _handler_for(receiver: WebhookReceiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:  # http.server's naming
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            headers = {name.lower(): value for name, value in self.headers.items()}
            path = self.path
            valid = receiver._verify(headers, body)
            reply = receiver._answer(path, valid)
            receiver._record(Received(path, headers, body, valid, reply.status_code))
            receiver._hold(path, reply)
            self.send_response(reply.status_code)
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(reply.body)))
            self.end_headers()
            self.wfile.write(reply.body)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet: tests read records
            pass

    return Handler
