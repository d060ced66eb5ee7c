"""The queue between the reactor (which starts deliveries) and the delivery worker (which makes them).

A job names a delivery stream and the attempt to make. On AWS it is an SQS message (delay up
to SQS's 900 s; the worker re-enqueues a job that is still early); locally it is a file-backed
queue with the SQS semantics the worker relies on: delays, visibility timeout, receive counts,
and a dead-letter file for jobs that keep failing (SQS's redrive policy).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from events import catalogue
from events.errors import DynafoldError

SQS_MAX_DELAY_SECONDS = 900
SQS_MAX_BATCH = 10
QUEUE_URL_ENV = "DELIVERY_QUEUE_URL"


class InvalidDeliveryJob(DynafoldError):
    """A queue message that is not a delivery job; it changes nothing."""


class DeliveryJob(BaseModel):
    """Make attempt ``attempt`` of the delivery in ``stream`` (``delivery:<sender_id>:<message_id>``)."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

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
