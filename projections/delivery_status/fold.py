"""The webhook delivery status view (seeds 001, 002): one row per delivery ("<sender_id>:<message_id>").

Status: ``PENDING`` when the message is received; ``FAILED`` after a failed attempt;
``RETRY_SCHEDULED`` with ``next_retry_at`` when a retry is scheduled (and a ``retry_history`` entry
built from the failed attempt's result and the backoff: delay, exponential part, jitter);
``SUCCESS`` with ``delivered_at`` once delivered; ``MAX_RETRIES_EXCEEDED`` (or ``FAILED`` for any
other reason) when dead-lettered. A redrive (``redrive requested``) is a retry due at once:
``RETRY_SCHEDULED`` with ``next_retry_at`` its time and ``redriven_at``; a redrive of a dead
letter clears ``dead_letter_reason`` and starts a new round at its attempt (``round_start``: the
retries and the backoff count from there), a retry brought forward keeps its round.

Decisions:
- A successful ``DeliveryAttempted`` already sets ``SUCCESS`` and ``delivered_at`` (seed 002:
  "successful deliveries result in SUCCESS with deliveredAt"); the ``DeliverySucceeded`` that
  follows confirms it and keeps that ``delivered_at``. A ``DeliverySucceeded`` without a recorded
  successful attempt sets both itself.
- An attempt clears ``next_retry_at``: the retry it was waiting for has happened.
- ``attempts`` is the number of the last attempt; ``DeadLettered`` never lowers it.
- ``dead_letter_reason`` keeps why delivery gave up.

``due_at`` is ``next_retry_at`` while a retry is scheduled and ``updated_at`` otherwise: it is the
sort key of the ``by-status`` index, so "retries due before T" is one range query per bucket.

``by-status`` and ``by-sender`` are keyed by ``status_shard`` and ``sender_shard``, the status and the
sender with the delivery's bucket (``STATUS_INDEX``, ``SENDER_INDEX``): there are five statuses, one
sender (the storefront broadcaster) may send most messages, and every delivery outcome moves its row
between two status values, more writes than one key value takes at 10,000 events/s.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from decimal import Decimal
from typing import overload

from events.deliveries import (
    DeadLettered, DeliveryAttempted, DeliverySucceeded, MessageReceived, RedriveRequested, RetryScheduled,
)
from events.envelope import RecordedEvent, format_time
from events.sharding import ShardedKey
from projections.view import View, ViewRow, single_row_view

PENDING, FAILED, RETRY_SCHEDULED, SUCCESS = "PENDING", "FAILED", "RETRY_SCHEDULED", "SUCCESS"
MAX_RETRIES_EXCEEDED = "MAX_RETRIES_EXCEEDED"
STATUSES = (PENDING, SUCCESS, FAILED, RETRY_SCHEDULED, MAX_RETRIES_EXCEEDED)

Number = int | float
# Buckets from the delivery id, so a delivery keeps its bucket as its status changes.
STATUS_INDEX = ShardedKey("by-status", "status_shard", "due_at", buckets=8)
SENDER_INDEX = ShardedKey("by-sender", "sender_shard", "updated_at", buckets=16)


@overload
def _number(value: Number) -> Number: ...
@overload
def _number(value: None) -> None: ...
@overload
def _number(value: Number | None) -> Number | None: ...
def _number(value: Number | None) -> Number | None:
    """A number exactly as the view table gives it back (integral values as int)."""
    if value is None or isinstance(value, int):
        return value
    number = Decimal(repr(value))
    return int(number) if number == number.to_integral_value() else float(number)


@dataclass(frozen=True, slots=True)
class AttemptResult:
    success: bool
    category: str
    status_code: int | None
    response_time_ms: Number
    error: str | None
    time: str


@dataclass(frozen=True, slots=True)
class RetryEntry:
    attempt: int
    time: str  # when the failed attempt was made (the schedule's time if it is not known)
    category: str | None
    status_code: int | None
    response_time_ms: Number | None
    error: str | None
    delay_seconds: Number
    exponential_delay: Number
    jitter: Number
    next_retry_at: str


@dataclass(frozen=True, kw_only=True)
class DeliveryStatus(ViewRow):
    """One delivery: the fold's state, the stored row (plus ``due_at``) and what the delivery queries return."""

    delivery_id: str  # "<sender>:<message>"
    sender_id: str | None = None
    message_id: str | None = None
    target_url: str | None = None
    status: str | None = None
    attempts: int = 0
    next_retry_at: str | None = None
    retry_history: tuple[RetryEntry, ...] = ()
    last_result: AttemptResult | None = None
    delivered_at: str | None = None
    last_attempt_at: str | None = None
    dead_letter_reason: str | None = None
    round_start: int = 1  # the attempt the current round of retries began with (a redrive's)
    redriven_at: str | None = None
    created_at: str | None = None
    updated_at: str | None = None

    derived = ("due_at", "status_shard", "sender_shard")
    sharded = (STATUS_INDEX, SENDER_INDEX)

    @property
    def due_at(self) -> str | None:
        return self.next_retry_at if self.status == RETRY_SCHEDULED else self.updated_at

    @property
    def status_shard(self) -> str | None:
        """The by-status partition key: "<status>#<bucket>"."""
        return None if self.status is None else STATUS_INDEX.value(self.status, (self.delivery_id,))

    @property
    def sender_shard(self) -> str | None:
        """The by-sender partition key: "<sender_id>#<bucket>"."""
        return None if self.sender_id is None else SENDER_INDEX.value(self.sender_id, (self.delivery_id,))


def initial(delivery_id: str) -> DeliveryStatus:
    return DeliveryStatus(delivery_id=delivery_id)


def apply(state: DeliveryStatus, event: RecordedEvent) -> DeliveryStatus:
    data = event.data
    at = format_time(event.time)
    if isinstance(data, MessageReceived):
        return replace(state, sender_id=data.sender_id, message_id=data.message_id, target_url=data.target_url,
                       status=state.status or PENDING, created_at=state.created_at or at, updated_at=at)
    if isinstance(data, DeliveryAttempted):
        result = AttemptResult(data.success, data.category, data.status_code, _number(data.response_time_ms),
                               data.error, at)
        if data.success:
            return replace(state, status=SUCCESS, attempts=data.attempt, last_result=result, last_attempt_at=at,
                           delivered_at=state.delivered_at or at, next_retry_at=None, updated_at=at)
        return replace(state, status=FAILED, attempts=data.attempt, last_result=result, last_attempt_at=at,
                       next_retry_at=None, updated_at=at)
    if isinstance(data, RetryScheduled):
        failed = state.last_result if state.attempts == data.attempt else None
        next_retry_at = format_time(data.next_retry_at)
        entry = RetryEntry(
            attempt=data.attempt,
            time=at if failed is None else failed.time,
            category=None if failed is None else failed.category,
            status_code=None if failed is None else failed.status_code,
            response_time_ms=None if failed is None else failed.response_time_ms,
            error=None if failed is None else failed.error,
            delay_seconds=_number(data.delay_seconds),
            exponential_delay=_number(data.exponential_delay),
            jitter=_number(data.jitter),
            next_retry_at=next_retry_at,
        )
        return replace(state, status=RETRY_SCHEDULED, next_retry_at=next_retry_at,
                       retry_history=(*state.retry_history, entry), updated_at=at)
    if isinstance(data, DeliverySucceeded):
        confirmed = state.last_result if state.last_result is not None and state.last_result.success else None
        result = confirmed if confirmed is not None else AttemptResult(
            True, "SUCCESS", data.status_code, _number(data.response_time_ms), None, at)
        return replace(state, status=SUCCESS, attempts=max(state.attempts, data.attempt), last_result=result,
                       last_attempt_at=state.last_attempt_at if confirmed is not None else at,
                       delivered_at=state.delivered_at or at, next_retry_at=None, updated_at=at)
    if isinstance(data, DeadLettered):
        status = MAX_RETRIES_EXCEEDED if data.reason == MAX_RETRIES_EXCEEDED else FAILED
        return replace(state, status=status, attempts=max(state.attempts, data.attempts), next_retry_at=None,
                       dead_letter_reason=data.reason, updated_at=at)
    if isinstance(data, RedriveRequested):
        return replace(state, status=RETRY_SCHEDULED, next_retry_at=at, dead_letter_reason=None, redriven_at=at,
                       round_start=data.attempt if data.kind == "redrive" else state.round_start, updated_at=at)
    return state


DeliveryStatusProjection: View[DeliveryStatus] = single_row_view(
    name="delivery-status",
    table="delivery-status",
    category="delivery",
    key_attr="delivery_id",
    row_type=DeliveryStatus,
    initial=initial,
    apply=apply,
    shown=lambda state: state.updated_at is not None,
)
