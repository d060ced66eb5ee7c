"""The queue between the reactor (which starts deliveries) and the delivery worker (which makes them).

A job names a delivery stream and the attempt to make. On AWS it is an SQS message (delay up
to SQS's 900 s; the worker re-enqueues a job that is still early); locally it is a file-backed
queue with the SQS semantics the worker relies on: delays, visibility timeout, receive counts,
and a dead-letter file for jobs that keep failing (SQS's redrive policy).
"""

from __future__ import annotations

import hashlib
import json
import math
import threading
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from events import catalogue
from events.envelope import format_time, parse_time
from events.errors import DynafoldError
from processors.adapters.clock import Clock
from processors.adapters.files import append_line, write_atomically

SQS_MAX_DELAY_SECONDS = 900
SQS_MAX_BATCH = 10
QUEUE_URL_ENV = "DELIVERY_QUEUE_URL"


class InvalidDeliveryJob(DynafoldError):
    """A queue message that is not a delivery job; it changes nothing."""


class DeliveryJob(BaseModel):
    """Make attempt ``attempt`` of the delivery in ``stream`` (``delivery:<sender_id>:<message_id>``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    stream: str
    attempt: int = Field(ge=1)
    cause_event_id: str = Field(min_length=1, description="the event that asked for this attempt")
    correlation_id: str | None = None

    @field_validator("stream")
    @classmethod
    def _delivery_stream(cls, stream: str) -> str:
        if catalogue.stream_category(stream) != "delivery":
            raise ValueError(f"{stream!r} is not a delivery stream (delivery:<sender_id>:<message_id>)")
        return stream

    def to_body(self) -> str:
        return self.model_dump_json()

    @classmethod
    def from_body(cls, body: str) -> "DeliveryJob":
        try:
            return cls.model_validate_json(body)
        except ValidationError as error:
            first = error.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "<body>"
            raise InvalidDeliveryJob(f"not a delivery job: {where}: {first['msg']}") from None


class DeliveryQueue(Protocol):
    def send(self, job: DeliveryJob, delay_seconds: float = 0.0) -> None: ...


class SqsQueue:
    """One SQS queue named by a setting. Without the setting only sending fails, so a reactor
    whose deployment lacks it still runs its other rules and reports the delivery records."""

    def __init__(self, client: Any, queue_url: str | None, setting: str) -> None:
        self._client = client
        self.queue_url = queue_url
        self.setting = setting

    @classmethod
    def from_env(cls, client: Any, env: Mapping[str, str], setting: str) -> "SqsQueue":
        return cls(client, env.get(setting, "").strip() or None, setting)

    def send_body(self, body: str, delay_seconds: int = 0) -> None:
        if not self.queue_url:
            raise DynafoldError(f"{self.setting} is not set: no queue to send to")
        self._client.send_message(QueueUrl=self.queue_url, MessageBody=body, DelaySeconds=delay_seconds)


class SqsDeliveryQueue:
    def __init__(self, queue: SqsQueue) -> None:
        self.queue = queue

    def send(self, job: DeliveryJob, delay_seconds: float = 0.0) -> None:
        self.queue.send_body(job.to_body(), sqs_delay(delay_seconds))


def sqs_delay(seconds: float) -> int:
    """SQS delays are whole seconds up to 900; a longer wait is re-enqueued by the worker when it is early."""
    return min(SQS_MAX_DELAY_SECONDS, max(0, math.ceil(seconds)))


# ----------------------------------------------------------------------------- local queue

@dataclass
class LocalMessage:
    message_id: str
    body: str
    sent_at: str
    visible_at: str
    receives: int = 0
    receipt_handle: str | None = None


class LocalDeliveryQueue:
    """A persistent stand-in for the SQS job queue (one JSON file under the local stack's state dir).

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
        now = self._clock.now()
        message = LocalMessage(str(uuid.uuid4()), job.to_body(), format_time(now),
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
