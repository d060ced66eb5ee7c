"""The delivery worker stays inside its function timeout: each POST has an overall deadline, and
jobs that the time left cannot cover are not started but handed back to SQS.

Targets are loopback socket servers (127.0.0.1 only): one that accepts and never answers, one
that trickles its answer a byte at a time, each byte within the socket timeout.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from processors.adapters.outbound import ResolvedTarget
from processors.adapters.webhook_http import post
from processors.handlers import delivery_worker as function
from processors.local.stream_runner import LambdaContext
from processors.services.delivery_worker import DeliverySettings


class Server:
    """Accepts on 127.0.0.1; ``answer(conn)`` runs per connection until the test ends."""

    def __init__(self, answer) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.port = self.sock.getsockname()[1]
        self.stop = threading.Event()
        self.sent = 0
        self._answer = answer
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        self.sock.settimeout(0.1)
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            with conn:
                self._answer(self, conn)

    def close(self) -> None:
        self.stop.set()
        self._thread.join(timeout=5)
        self.sock.close()

    def target(self) -> ResolvedTarget:
        return ResolvedTarget(f"http://127.0.0.1:{self.port}/hook", "http", "127.0.0.1", self.port, "/hook",
                              "127.0.0.1")


def silent(server: Server, conn: socket.socket) -> None:
    server.stop.wait()  # accepted, never answers


def trickle(server: Server, conn: socket.socket) -> None:
    answer = b"HTTP/1.1 200 OK\r\nX-Slow: " + b"a" * 200 + b"\r\nContent-Length: 0\r\n\r\n"
    for byte in answer:  # a byte every 0.1 s: each read is quick, the whole answer takes 20 s
        if server.stop.wait(0.1):
            return
        try:
            conn.sendall(bytes([byte]))
        except OSError:
            return
        server.sent += 1


@pytest.fixture
def servers() -> Iterator[list[Server]]:
    started: list[Server] = []
    yield started
    for server in started:
        server.close()


def test_a_silent_target_times_out_at_the_deadline(servers):
    server = Server(silent)
    servers.append(server)
    outcome = post(server.target(), b"{}", {"Content-Type": "application/json"}, timeout=0.5)
    assert (outcome.status_code, outcome.failure) == (None, "timeout")


def test_a_trickling_target_is_cut_off_at_the_overall_deadline(servers):
    server = Server(trickle)
    servers.append(server)
    started = time.monotonic()
    outcome = post(server.target(), b"{}", {"Content-Type": "application/json"}, timeout=1.0)
    elapsed = time.monotonic() - started
    # Before the deadline existed each byte reset the 1 s socket timeout: 20 s and a 200.
    assert (outcome.status_code, outcome.failure) == (None, "timeout"), outcome
    assert elapsed < 5 and server.sent < 100


class Worker:
    """The DeliveryWorker's surface the handler uses, recording which jobs ran."""

    def __init__(self, timeout_seconds: float) -> None:
        self.settings = DeliverySettings(timeout_seconds=timeout_seconds)
        self.ran: list[str] = []

    def run(self, job: Any) -> Any:
        self.ran.append(job.stream)
        raise RuntimeError("stop here: the job ran")


def job_record(message_id: str, n: int) -> dict[str, Any]:
    body = f'{{"stream": "delivery:s1:m{n}", "attempt": 1, "cause_event_id": "e{n}"}}'
    return {"messageId": message_id, "receiptHandle": "r", "body": body, "attributes": {}, "messageAttributes": {},
            "md5OfBody": "", "eventSource": "aws:sqs", "awsRegion": "us-east-1",
            "eventSourceARN": "arn:aws:sqs:us-east-1:000000000000:jobs"}


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize("remaining_seconds,started", [(14.9, 0), (15.0, 5)])
def test_jobs_the_time_left_cannot_cover_are_not_started(remaining_seconds, started):
    worker = Worker(timeout_seconds=10)  # a job's budget: 10 s deadline + 5 s of appends
    handler = function.make_handler(worker)  # type: ignore[arg-type] - duck-typed worker
    clock = Clock()
    context = LambdaContext("dynafold-delivery-worker", "req", "arn:aws:lambda:us-east-1:0:function:w",
                            clock.now + remaining_seconds, monotonic=clock)
    records = [job_record(f"m-{n}", n) for n in range(5)]
    response = handler({"Records": records}, context)
    assert len(worker.ran) == started
    # Every job failed here (not started, or the stub's error): all five go back to SQS.
    assert [f["itemIdentifier"] for f in response["batchItemFailures"]] == [f"m-{n}" for n in range(5)]
