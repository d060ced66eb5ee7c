"""SQS's local stand-ins: the delivery job queue and the dead-letter sink, as files under the state dir.

The job queue keeps the SQS semantics the worker relies on: delays, visibility timeout, receive
counts, and a dead-letter file for jobs that keep failing (SQS's redrive policy).
"""

from __future__ import annotations

import hashlib
import json
import threading
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from events.envelope import format_time, parse_time
from processors.adapters.clock import Clock
from processors.adapters.delivery_queue import SQS_MAX_BATCH, DeliveryJob
from processors.local.files import append_line, read_json_lines, write_atomically


@dataclass
class LocalMessage:
    message_id: str
    body: str
    sent_at: str
    visible_at: str
    receives: int = 0
    receipt_handle: str | None = None


class LocalSqsQueue:
    """A persistent stand-in for an SQS queue (one JSON file under the local stack's state dir): the
    delivery job queue, and the stream failure queue the stream runners send on-failure records to.

    ``receive`` hands out due messages and hides them for ``visibility_timeout``; a message not
    deleted by then comes back, and after ``max_receives`` receives it moves to the dead-letter
    file instead, as SQS's redrive policy would do. Delays are exact (no 900 s limit) but the
    worker's early-job path is the same either way.
    """

    def __init__(self, path: Path, clock: Clock, *, visibility_timeout: float = 60.0, max_receives: int = 5,
                 queue_name: str = "dynafold-delivery-jobs") -> None:
        self.path = path
        self.dead_letter_path = path.with_name(path.stem + "-dlq.jsonl")
        self.queue_name = queue_name
        self._clock = clock
        self._visibility = timedelta(seconds=visibility_timeout)
        self._max_receives = max_receives
        self._lock = threading.Lock()

    def send(self, job: DeliveryJob, delay_seconds: float = 0.0) -> None:
        self.send_body(job.to_body(), delay_seconds)

    def send_body(self, body: str, delay_seconds: float = 0.0) -> None:
        now = self._clock.now()
        message = LocalMessage(str(uuid.uuid4()), body, format_time(now),
                               format_time(now + timedelta(seconds=max(0.0, delay_seconds))))
        with self._lock:
            messages = self._load()
            messages.append(message)
            self._save(messages)

    def receive(self, max_messages: int = SQS_MAX_BATCH) -> list[LocalMessage]:
        now = self._clock.now()
        with self._lock:
            messages = self._load()
            taken: list[LocalMessage] = []
            kept: list[LocalMessage] = []
            for message in messages:
                if len(taken) < max_messages and parse_time(message.visible_at) <= now:
                    if message.receives >= self._max_receives:
                        append_line(self.dead_letter_path, json.dumps(message.__dict__, sort_keys=True))
                        continue
                    message.receives += 1
                    message.receipt_handle = str(uuid.uuid4())
                    message.visible_at = format_time(now + self._visibility)
                    taken.append(message)
                kept.append(message)
            if taken or len(kept) != len(messages):
                self._save(kept)
            return taken

    def delete(self, receipt_handle: str) -> bool:
        """Remove a received message; a stale handle (the message was received again since) deletes nothing."""
        with self._lock:
            messages = self._load()
            kept = [m for m in messages if m.receipt_handle != receipt_handle]
            if len(kept) != len(messages):
                self._save(kept)
            return len(kept) != len(messages)

    def waiting(self) -> list[LocalMessage]:
        """Every message not yet deleted, visible or not (what SQS counts in the oldest message's age)."""
        with self._lock:
            return self._load()

    def next_visible_at(self) -> datetime | None:
        with self._lock:
            times = [parse_time(m.visible_at) for m in self._load()]
        return min(times) if times else None

    def __len__(self) -> int:
        with self._lock:
            return len(self._load())

    def to_sqs_record(self, message: LocalMessage, region: str) -> dict[str, Any]:
        """The record Lambda's SQS event source mapping would hand the worker."""
        sent = int(parse_time(message.sent_at).timestamp() * 1000)
        return {
            "messageId": message.message_id,
            "receiptHandle": message.receipt_handle,
            "body": message.body,
            "attributes": {
                "ApproximateReceiveCount": str(message.receives),
                "SentTimestamp": str(sent),
                "SenderId": "local",
                "ApproximateFirstReceiveTimestamp": str(sent),
            },
            "messageAttributes": {},
            "md5OfBody": hashlib.md5(message.body.encode("utf-8")).hexdigest(),  # noqa: S324 - as SQS does
            "eventSource": "aws:sqs",
            "eventSourceARN": f"arn:aws:sqs:{region}:000000000000:{self.queue_name}",
            "awsRegion": region,
        }

    def _load(self) -> list[LocalMessage]:
        if not self.path.exists():
            return []
        return [LocalMessage(**m) for m in json.loads(self.path.read_text(encoding="utf-8"))["messages"]]

    def _save(self, messages: list[LocalMessage]) -> None:
        write_atomically(self.path, json.dumps({"version": 1, "messages": [m.__dict__ for m in messages]},
                                               indent=1, sort_keys=True))


class LocalDeadLetters:
    def __init__(self, path: Path) -> None:
        self.path = path

    def send(self, message: Mapping[str, Any]) -> None:
        append_line(self.path, json.dumps(message, sort_keys=True, ensure_ascii=False))

    def read(self) -> list[dict[str, Any]]:
        return read_json_lines(self.path)
