"""Typed errors of the write side. Each carries what a caller needs to react (or print)."""

from __future__ import annotations


class DynafoldError(Exception):
    """Base class: every error dynafold raises on purpose derives from it."""


class UnknownEventType(DynafoldError):
    def __init__(self, event_type: str) -> None:
        super().__init__(f"unknown event type {event_type!r} (see `dynafold types`)")
        self.event_type = event_type


class InvalidEventData(DynafoldError):
    """The data does not match the event type's model; `field` names the first bad field."""

    def __init__(self, event_type: str, field: str, reason: str) -> None:
        super().__init__(f"invalid data for {event_type}: field {field!r}: {reason}")
        self.event_type = event_type
        self.field = field
        self.reason = reason


class InvalidStreamId(DynafoldError):
    pass


class InvalidExpectedVersion(DynafoldError):
    pass


class EventTooLarge(DynafoldError):
    def __init__(self, stream: str, size: int, limit: int) -> None:
        super().__init__(
            f"event for stream {stream!r} would be a {size}-byte item; DynamoDB's limit is "
            f"{limit // 1024} KB ({limit} bytes): store large payloads elsewhere and reference them"
        )
        self.size = size
        self.limit = limit


class TooManyEvents(DynafoldError):
    pass


class InvalidAppend(DynafoldError):
    """DynamoDB refused the append's items as invalid (e.g. an item or key too large): bad input,
    never worth a retry. ``reason`` is DynamoDB's own message."""

    def __init__(self, stream: str, reason: str) -> None:
        super().__init__(f"append to {stream!r} refused by DynamoDB as invalid: {reason}")
        self.stream = stream
        self.reason = reason


class VersionConflict(DynafoldError):
    """The stream is not at the version the caller expected."""

    def __init__(self, stream: str, expected: object, actual: int) -> None:
        super().__init__(f"stream {stream!r} is at version {actual}, expected {expected}")
        self.stream = stream
        self.expected = expected
        self.actual = actual


class StreamContended(DynafoldError):
    """So many writers raced on the stream that the append did not land within its time bound.
    Nothing was written; the stream is busy, not wrong: retry later (HTTP 503)."""

    def __init__(self, stream: str, waited: float, attempts: int) -> None:
        super().__init__(
            f"stream {stream!r} is contended: the append lost {attempts} races in {waited:.1f} s; "
            "nothing was written, retry later"
        )
        self.stream = stream
        self.waited = waited
        self.attempts = attempts


class IdempotencyKeyReused(DynafoldError):
    """The same idempotency key was used earlier for a different append."""

    def __init__(self, key: str) -> None:
        super().__init__(
            f"idempotency key {key!r} was already used for a different append (other stream, types or data)"
        )
        self.key = key


class NotFound(DynafoldError):
    """What was asked for does not exist (a stream, an event, an order, a SKU, a delivery). Never
    success: the HTTP API answers 404, the CLI prints one line and exits 4 (EXIT_NOT_FOUND)."""

    def __init__(self, what: str) -> None:
        super().__init__(f"not found: {what}")
        self.what = what
