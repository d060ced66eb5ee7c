"""The loopback API Gateway stand-in (issue 12 defect 11): concurrency, HEAD/OPTIONS, bad Content-Length.

The router behind it is the real one; the routes used here (404/405, /openapi.json, auth) need no
tables, so no engine is started.
"""

from __future__ import annotations

import http.client
import json
import socket
import threading
from types import SimpleNamespace

import pytest

from processors.api.app import make_handler
from processors.api.deps import ApiSettings
from processors.local.http_server import LocalApiServer
from processors.adapters.secrets import Secrets


@pytest.fixture
def server():
    deps = SimpleNamespace(settings=ApiSettings(), secrets=Secrets.of(admin_api_key="k"))
    with LocalApiServer(make_handler(deps)) as running:  # type: ignore[arg-type]
        yield running


def _address(server: LocalApiServer) -> tuple[str, int]:
    host, port = server.url.removeprefix("http://").split(":")
    return host, int(port)


def _request(server: LocalApiServer, method: str, path: str, body: bytes | None = None,
             headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    connection = http.client.HTTPConnection(*_address(server), timeout=10)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()


def test_sixty_four_simultaneous_clients_all_get_answers(server):
    clients = 64  # issue 12 saw resets at 16 (listen backlog 5)
    start = threading.Barrier(clients)
    answers: list[object] = []

    def client() -> None:
        try:
            start.wait(timeout=10)
            status, _, body = _request(server, "GET", "/openapi.json")
            answers.append((status, json.loads(body)["openapi"]))
        except Exception as error:  # noqa: BLE001 - the assertion lists what went wrong
            answers.append(error)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert answers == [(200, "3.1.0")] * clients


def test_clients_arriving_while_the_accept_loop_is_busy_are_queued_not_dropped():
    """64 connections land before the server accepts any (as when its loop is busy): with the
    default backlog of 5 the kernel drops the rest (a reset, or a SYN retried a second later);
    all must connect at once and get answers when the loop runs."""
    clients = 64
    deps = SimpleNamespace(settings=ApiSettings(), secrets=Secrets.of())
    server = LocalApiServer(make_handler(deps))  # type: ignore[arg-type]  # bound and listening, not accepting
    sockets: list[socket.socket] = []
    try:
        for _ in range(clients):
            sockets.append(socket.create_connection(_address(server), timeout=0.5))
            sockets[-1].sendall(b"GET /openapi.json HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        with server:
            for connection in sockets:
                connection.settimeout(30)
                assert connection.recv(12) == b"HTTP/1.1 200"
    finally:
        for connection in sockets:
            connection.close()
        server._server.server_close()


@pytest.mark.parametrize("method, path, status, allow", [
    ("OPTIONS", "/messages", 405, "POST"),
    ("OPTIONS", "/inventory/P/count", 405, "PUT"),
    ("HEAD", "/alerts", 405, "GET"),
    ("OPTIONS", "/nowhere", 404, None),
    ("HEAD", "/nowhere", 404, None),
])
def test_head_and_options_go_through_the_router_as_api_gateway_sends_them(server, method, path, status, allow):
    got, headers, body = _request(server, method, path)
    assert got == status and headers.get("allow") == allow
    assert headers["content-type"] == "application/json"
    if method == "HEAD":
        assert body == b""  # a HEAD answer has no body, but says how long it would be
        assert int(headers["content-length"]) > 0
    else:
        assert "error" in json.loads(body)


def test_a_wrong_method_answer_carries_allow_over_http(server):
    status, headers, body = _request(server, "DELETE", "/inventory/P/count", headers={"x-api-key": "k"})
    assert status == 405 and headers["allow"] == "PUT" and json.loads(body)["allow"] == ["PUT"]


@pytest.mark.parametrize("length", ["abc", "-5", "1e3", "12, 12"])
def test_a_bad_content_length_is_a_400_json_answer(server, length):
    with socket.create_connection(_address(server), timeout=10) as raw:
        raw.sendall(f"POST /messages HTTP/1.1\r\nHost: x\r\nContent-Length: {length}\r\n\r\n{{}}".encode())
        reply = b""
        while chunk := raw.recv(65536):
            reply += chunk
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400"), reply
    assert "Content-Length" in json.loads(body)["error"]


def test_the_server_keeps_serving_after_a_bad_request(server):
    with socket.create_connection(_address(server), timeout=10) as raw:
        raw.sendall(b"POST /messages HTTP/1.1\r\nHost: x\r\nContent-Length: zz\r\n\r\n")
        raw.recv(65536)
    assert _request(server, "GET", "/openapi.json")[0] == 200
