"""Appending what a route decided, and the answer the caller gets (the same on a retry)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import datetime
from collections.abc import Iterable
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from events.envelope import PlannedAppend
from events.ports import EventLog
from events.appending import check_appendable
from events.store import ANY, AppendResult, ExpectedVersion
from processors.api.http import check_key_bytes
from processors.api.telemetry import SERVICE, logger, metrics
from processors.telemetry.emf import count_by


def answer(result: AppendResult) -> dict[str, Any]:
    return {
        "stream": result.stream,
        "version": result.last_version,
        "versions": list(result.versions),
        "event_id": result.event_ids[0],
        "event_ids": list(result.event_ids),
        "deduplicated": result.deduplicated,
    }


def count_appended(event_types: Iterable[str]) -> None:
    """EventsAppended by type: one EMF line a type (the dashboard sums them)."""
    for event_type, count in Counter(event_types).items():
        count_by("EventsAppended", SERVICE, {"event_type": event_type}, count)


def append_planned(store: EventLog, plan: PlannedAppend, expected: ExpectedVersion = ANY) -> dict[str, Any]:
    # Both are partition keys (events, idempotency): DynamoDB counts them in UTF-8 bytes.
    check_key_bytes("stream id", plan.stream)
    if plan.idempotency_key is not None:
        check_key_bytes("idempotency key", plan.idempotency_key)
    result = store.append(plan.stream, list(plan.events), expected, idempotency_key=plan.idempotency_key)
    if result.deduplicated:
        metrics.add_metric(name="AppendsDeduplicated", unit=MetricUnit.Count, value=1)
    else:
        count_appended(event.type for event in plan.events)
        logger.info("appended", extra={"stream": result.stream, "versions": list(result.versions),
                                       "event_ids": list(result.event_ids),
                                       "types": [e.type for e in plan.events]})
    return answer(result)


def append_atomically(store: EventLog, plans: list[PlannedAppend], key: str) -> list[dict[str, Any]]:
    """Several streams' appends as one transaction under one key (a webhook's whole decision)."""
    if not plans:
        return []
    for plan in plans:
        check_key_bytes("stream id", plan.stream)
    check_key_bytes("idempotency key", key)
    results = store.append_streams(plans, key)
    if results and results[0].deduplicated:
        metrics.add_metric(name="AppendsDeduplicated", unit=MetricUnit.Count, value=1)
        return [answer(result) for result in results]
    count_appended(event.type for plan in plans for event in plan.events)
    logger.info("appended", extra={"key": key, "streams": [r.stream for r in results],
                                   "event_ids": [i for r in results for i in r.event_ids]})
    return [answer(result) for result in results]


def check_parts(parts: Sequence[tuple[str, Sequence[PlannedAppend]]], now: datetime) -> None:
    """Every part of a decision too big for one transaction checked before the first is appended:
    a bad line in the last part refuses the whole decision, nothing is left half written."""
    for key, plans in parts:
        for plan in plans:
            check_key_bytes("stream id", plan.stream)
        check_key_bytes("idempotency key", key)
        check_appendable(plans, key, now)
