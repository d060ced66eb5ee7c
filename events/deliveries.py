"""Webhook notification delivery (seeds 001, 002) and the targets deliveries go to."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import AwareDatetime, Field

from events.schema_base import EventData

OutcomeCategory = Literal[
    "SUCCESS", "CLIENT_ERROR", "SERVER_ERROR", "RATE_LIMITED", "TIMEOUT", "CONNECTION_ERROR", "REDIRECT", "REFUSED"
]


class MessageReceived(EventData):
    sender_id: str = Field(min_length=1)
    message_id: str = Field(min_length=1)
    target_url: str = Field(min_length=1)
    payload: dict[str, Any] = Field(default_factory=dict)


class DeliveryAttempted(EventData):
    attempt: int = Field(ge=1)
    success: bool
    category: OutcomeCategory
    retryable: bool = False
    status_code: int | None = None
    response_time_ms: float = Field(ge=0)
    error: str | None = None


class RetryScheduled(EventData):
    attempt: int = Field(ge=1, description="the attempt that failed")
    next_retry_at: AwareDatetime
    delay_seconds: float = Field(ge=0)
    exponential_delay: float = Field(ge=0)
    jitter: float = Field(ge=0)


class DeliverySucceeded(EventData):
    attempt: int = Field(ge=1)
    status_code: int
    response_time_ms: float = Field(ge=0)


class DeadLettered(EventData):
    attempts: int = Field(ge=0)
    reason: str


RedriveKind = Literal["redrive", "retry_now"]


class RedriveRequested(EventData):
    """An operator asked for attempt ``attempt`` now (``dynafold deliveries redrive``, or the admin route).

    ``redrive``: the delivery had been dead-lettered; it gets a fresh retry budget counted from
    ``attempt``. ``retry_now``: a retry was scheduled; it is brought forward, and the budget is
    unchanged. Either way nothing is edited: the delivery-status view folds this event (a retry due
    at its time), and the reactor enqueues the job for ``attempt``, as for any scheduled retry.
    """

    attempt: int = Field(ge=1, description="the attempt it makes due now (attempts made + 1)")
    kind: RedriveKind
    previous_status: str = Field(min_length=1, description="the delivery's status when it was asked")
    dead_letter_reason: str | None = Field(default=None, description="why it had been dead-lettered")
    requested_by: str | None = Field(default=None, max_length=200)
    reason: str | None = Field(default=None, max_length=500)


class TargetDisabled(EventData):
    """Deliveries to this URL stop: later messages dead-letter at once, without a request.

    Lives in the target's own stream (``target:<hash of the URL>``), so one delivery's outcome
    can disable a target for every sender, and re-enabling it is one more event there.
    """

    target_url: str = Field(min_length=1)
    reason: str = Field(min_length=1)
    status_code: int | None = None
    cause_stream: str | None = Field(default=None, description="the delivery whose outcome disabled the target")


class TargetEnabled(EventData):
    target_url: str = Field(min_length=1)
    reason: str | None = None
    enabled_by: str | None = None
