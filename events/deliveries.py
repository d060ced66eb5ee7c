"""Webhook notification delivery (seeds 001, 002)."""

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

