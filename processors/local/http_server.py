"""The HTTP API on a loopback port: API Gateway's stand-in for `dynafold up`, the demo and tests.

Each request becomes the HTTP API payload v2 event API Gateway would send, goes to the very
handler Lambda runs, and its response is written back. Bodies are passed base64-encoded, so the
handler sees the exact bytes the client signed.
"""

from __future__ import annotations

import base64
import json
import threading
import time
import urllib.parse
import uuid
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from processors.local.engine import PortInUse
from processors.local.stream_runner import LambdaContext

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]
MAX_REQUEST_BYTES = 10 * 1024 * 1024  # API Gateway's payload limit
_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding"}


def api_gateway_event(method: str, target: str, headers: dict[str, str], body: bytes, source_ip: str) -> dict[str, Any]:
    path, _, query = target.partition("?")
    params = urllib.parse.parse_qs(query, keep_blank_values=True)
    now = time.time()
    # Payload v2 moves the Cookie header into `cookies`, one entry per cookie.
    cookie_header = headers.pop("cookie", "")
    cookies = [part.strip() for part in cookie_header.replace(",", ";").split(";") if part.strip()]
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": query,
        "headers": headers,
        "queryStringParameters": {k: ",".join(v) for k, v in params.items()} or None,
        "requestContext": {
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": source_ip,
                     "userAgent": headers.get("user-agent", "")},
            "requestId": str(uuid.uuid4()),
            "routeKey": "$default",
            "stage": "$default",
            "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
            "timeEpoch": int(now * 1000),
        },
        "body": base64.b64encode(body).decode("ascii"),
        "isBase64Encoded": True,
    }
    if cookies:
        event["cookies"] = cookies
    return event


def _request_handler(handler: Handler, function_name: str) -> type[BaseHTTPRequestHandler]:
    invocation = threading.Lock()

    class ApiRequestHandler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "dynafold-local-api"

        def _serve(self) -> None:
            given = (self.headers.get("content-length") or "0").strip()
            if not (given.isascii() and given.isdigit()):  # the body's end is unknown: answer, then close
                self._refuse(400, f"Content-Length {given[:40]!r} is not a number of bytes")
                return
            length = int(given)
            if length > MAX_REQUEST_BYTES:
                self._refuse(413, "request too large for API Gateway (10 MB)")
                return
            body = self.rfile.read(length) if length else b""
            headers: dict[str, str] = {}
            for name, value in self.headers.items():
                key = name.lower()
                headers[key] = f"{headers[key]},{value}" if key in headers else value
            event = api_gateway_event(self.command, self.path, headers, body, self.client_address[0])
            context = LambdaContext.local(function_name, 30, event["requestContext"]["requestId"])
            # Connections are accepted at once (a thread each), but one execution environment runs
            # one invocation at a time, as on Lambda: the handler's module state (Powertools'
            # metrics and logger) is never shared by two requests in flight.
            with invocation:
                response = handler(event, context)
            self._reply(response)

        # HEAD and OPTIONS too: API Gateway's catch-all route hands them to the function like any
        # method, so the router answers (404, or 405 with Allow), not this server. The names are
        # http.server's contract (BaseHTTPRequestHandler dispatches to do_<METHOD>).
        do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _serve  # noqa: N815

        def _refuse(self, status: int, reason: str) -> None:
            self._reply({"statusCode": status, "headers": {"content-type": "application/json"},
                         "body": json.dumps({"error": reason})})
            self.close_connection = True

        def _reply(self, response: dict[str, Any]) -> None:
            raw = response.get("body") or ""
            payload = base64.b64decode(raw) if response.get("isBase64Encoded") else raw.encode("utf-8")
            self.send_response(int(response.get("statusCode", 200)))
            for name, value in (response.get("headers") or {}).items():
                if name.lower() not in _HOP_BY_HOP and name.lower() != "content-length":
                    self.send_header(name, str(value))
            for cookie in response.get("cookies") or ():  # payload v2: each becomes a Set-Cookie
                self.send_header("set-cookie", str(cookie))
            self.send_header("content-length", str(len(payload)))
            self.end_headers()
            if self.command != "HEAD":  # a HEAD answer says how long the body is, without it
                self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the handler logs requests
            pass

    return ApiRequestHandler


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # The default listen backlog (5) drops connections beyond it while the accept loop is busy:
    # 16 simultaneous clients saw resets. API Gateway queues them; so does this.
    request_queue_size = 128


class LocalApiServer:
    """Serves ``handler`` on 127.0.0.1:<port> (0 = a free port), a thread a connection, in a background thread."""

    def __init__(self, handler: Handler, port: int = 0, function_name: str = "dynafold-ingest") -> None:
        try:
            self._server = _Server(("127.0.0.1", port), _request_handler(handler, function_name))
        except OSError as error:  # EADDRINUSE, EACCES (a privileged port): one line, not a traceback
            raise PortInUse(f"the HTTP API cannot listen on 127.0.0.1:{port}: {error.strerror} "
                            "(choose another --api-port, or none)") from None
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="local-api", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> "LocalApiServer":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
