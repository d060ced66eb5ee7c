"""What an append is, apart from where it is stored. Pure: shared by every ``EventLog``.

The DynamoDB store (``events.store``) and the in-memory one (``events.memory``) both prepare,
check, link and guard appends with these functions, so they refuse the same input, store
byte-identical items (the same hashes) and answer a repeated idempotency key the same way.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Literal

from events import catalogue
from events.envelope import (
    GENESIS_HASH,
    NewEvent,
    PlannedAppend,
    StoredEvent,
    canonical_json,
    data_json,
    format_time,
    parse_time,
)
from events.errors import (
    EventTooLarge,
    IdempotencyKeyReused,
    InvalidAppend,
    InvalidEventData,
    InvalidExpectedVersion,
    InvalidStreamId,
    TooManyEvents,
)
from events.items import MAX_ITEM_BYTES, Item, chained_item, item_size, utf8_length
from events.stream_catalogue import CATALOGUE_ATTR, catalogue_key

NO_STREAM: Literal["no_stream"] = "no_stream"
ANY: Literal["any"] = "any"
ExpectedVersion = int | Literal["no_stream", "any"]

# One DynamoDB transaction: at most 100 items and 4 MB
# (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/transaction-apis.html).
# Every log keeps these limits, so what the in-memory log accepts DynamoDB accepts too.
MAX_TRANSACTION_ITEMS = 100
MAX_TRANSACTION_BYTES = 4 * 1024 * 1024
# Key attributes of the event table and its indexes (template.yaml: the table's stream/version,
# by-type-shard-time's type_shard/time (and a kept by-type-time's type), by-correlation's
# correlation_id/time, by-id's id) and DynamoDB's limits on their values
# (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Constraints.html#limits-partition-sort-keys):
# checked here, so every log refuses what DynamoDB would, before anything is written.
KEY_LIMITS = {"stream": 2048, "type": 2048, "type_shard": 2048, "correlation_id": 2048, "id": 2048, "time": 1024}
# Idempotency-table key of a stream's head as releases before sealed checkpoints recorded it (still
# read by audits, see events.checkpoints); refused as a caller's key.
HEAD_KEY_PREFIX = "#head:"
IDEMPOTENCY_TTL = timedelta(days=30)


def parse_expected_version(text: str) -> ExpectedVersion:
    """Parse the CLI/HTTP spelling: a non-negative integer, 'none'/'no_stream', or 'any'."""
    lowered = text.strip().lower()
    if lowered in ("none", "no_stream", "no-stream"):
        return NO_STREAM
    if lowered == ANY:
        return ANY
    if lowered.isdigit():
        return int(lowered)
    raise InvalidExpectedVersion(f"invalid expected version {text!r}: use a number >= 0, 'none' or 'any'")


@dataclass(frozen=True, slots=True)
class AppendResult:
    stream: str
    first_version: int
    last_version: int
    event_ids: tuple[str, ...]
    deduplicated: bool = False

    @property
    def versions(self) -> tuple[int, ...]:
        return tuple(range(self.first_version, self.last_version + 1))


def check_expected(expected: ExpectedVersion) -> int | Literal["any"]:
    """The version to append after (0 for "no_stream"), or "any"."""
    if expected == NO_STREAM:
        return 0
    if expected == ANY:
        return ANY
    if isinstance(expected, bool) or not isinstance(expected, int) or expected < 0:
        raise InvalidExpectedVersion(f"invalid expected version {expected!r}: use a number >= 0, 'no_stream' or 'any'")
    return expected


def check_count(events: Sequence[object], key: str | None) -> None:
    """One append is at most one transaction of its events (an idempotency guard is written before
    it, on its own)."""
    limit = MAX_TRANSACTION_ITEMS
    if not events:
        raise TooManyEvents("nothing to append: give at least one event")
    if len(events) > limit:
        raise TooManyEvents(f"{len(events)} events in one append; the limit is {limit} (one transaction)")
    if key is not None and not (0 < len(key) <= 1024):
        raise InvalidStreamId("idempotency key must be 1-1024 characters")
    if key is not None and key.startswith(HEAD_KEY_PREFIX):
        raise InvalidStreamId(f"idempotency keys starting with {HEAD_KEY_PREFIX!r} are reserved for stream heads")


def prepare(stream: str, events: Sequence[NewEvent], key: str | None, now: datetime) -> list[StoredEvent]:
    """New events as they will be stored: validated, in the stream's category, with ids and times."""
    category = catalogue.stream_category(stream)
    check_count(events, key)
    now_text = format_time(now)
    prepared = []
    for event in events:
        spec = catalogue.resolve(event.type)
        if not catalogue.belongs(spec, category):
            raise InvalidStreamId(f"{event.type} belongs in a '{spec.category}:' stream, not {stream!r}")
        data = catalogue.validate(event.type, event.data)
        event_id = event.id or str(uuid.uuid4())
        prepared.append(StoredEvent(
            type=event.type,
            data_text=data_json(data),
            id=event_id,
            source=event.source,
            time_text=now_text if event.time is None else format_time(event.time),
            correlation_id=event.correlation_id or event_id,
            causation_id=event.causation_id,
        ))
    return prepared


def check_stored(stream: str, event: StoredEvent) -> None:
    """Refuse a stored-form event this store could not have written: an unknown type, a type of
    another category, data that no longer decodes, a time that does not parse."""
    category = catalogue.stream_category(stream)
    spec = catalogue.CURRENT[catalogue.type_name(event.type)]
    if not catalogue.belongs(spec, category):
        raise InvalidStreamId(f"{event.type} belongs in a '{spec.category}:' stream, not {stream!r}")
    catalogue.decode(event.type, event.data_text)
    try:
        parse_time(event.time_text)
    except ValueError:
        raise InvalidEventData(event.type, "time", f"unparseable time {event.time_text!r}") from None


def check_plans(plans: Sequence[PlannedAppend], key: str) -> None:
    """A multi-stream append: each stream once, and every stream's events in one transaction."""
    streams = [plan.stream for plan in plans]
    if len(set(streams)) != len(streams):
        raise InvalidStreamId("append_streams takes each stream once; merge its events into one plan")
    total = sum(len(plan.events) for plan in plans)
    if not plans or total > MAX_TRANSACTION_ITEMS:
        raise TooManyEvents(f"{total} events in one append; the limit is {MAX_TRANSACTION_ITEMS} "
                            "(one transaction)")
    check_count([event for plan in plans for event in plan.events][:1], key)


def check_appendable(plans: Sequence[PlannedAppend], key: str, now: datetime) -> None:
    """Refuse, before anything is written, what ``append_streams(plans, key)`` would refuse for its
    input (not for the log's state): the transaction's size, each stream id and category, each
    event's type and data, key sizes and item sizes. For a decision appended in several parts, so
    that a bad part refuses the whole decision rather than leaving the parts before it written."""
    check_plans(plans, key)
    for plan in plans:
        link(plan.stream, prepare(plan.stream, plan.events, None, now), 0, GENESIS_HASH)


def link(stream: str, prepared: Sequence[StoredEvent], base: int, prev_hash: str) -> list[Item]:
    """The items of ``prepared`` at versions ``base + 1...``, each chained to the one before; a
    stream's first also enters it in the stream catalogue (``events.stream_catalogue``)."""
    items = []
    total = 0
    for offset, event in enumerate(prepared, start=1):
        item = chained_item(stream, base + offset, event, prev_hash)
        if base + offset == 1:
            item[CATALOGUE_ATTR] = {"S": catalogue_key(stream)}
        for name, limit in KEY_LIMITS.items():
            length = utf8_length(item[name]["S"])
            if length > limit:
                raise InvalidAppend(stream, f"{name} is {length} bytes; a key value may have at most {limit}")
        size = item_size(item)
        if size > MAX_ITEM_BYTES:
            raise EventTooLarge(stream, size, MAX_ITEM_BYTES)
        items.append(item)
        total += size
        prev_hash = item["hash"]["S"]
    if len(items) > 1 and total > MAX_TRANSACTION_BYTES:
        raise EventTooLarge(stream, total, MAX_TRANSACTION_BYTES)
    return items


def linked_result(stream: str, prepared: Sequence[StoredEvent], base: int) -> AppendResult:
    return AppendResult(stream, base + 1, base + len(prepared), tuple(event.id for event in prepared))


def request_hash(stream: str, prepared: Sequence[StoredEvent]) -> str:
    """What makes two appends 'the same request': stream, types and data (not generated ids/times)."""
    body = canonical_json({"stream": stream, "events": [[p.type, p.data_text] for p in prepared]})
    return hashlib.sha256(body.encode("utf-8")).hexdigest()


def streams_request_hash(prepared: Sequence[tuple[str, Sequence[StoredEvent]]]) -> str:
    """The same for a multi-stream append: every stream's request, in order."""
    return hashlib.sha256("".join(request_hash(stream, events) for stream, events in prepared)
                          .encode("ascii")).hexdigest()


# ----------------------------------------------------------------------------- idempotency guards
#
# A keyed append writes its guard first, on its own, then its events: two conditional writes, one
# write unit each for a small event, where one transaction of both costs two units per item. The
# guard says what the key will append: per stream the versions, and the ids and times the append
# generated. Whoever finds the guard (the writer itself after a conflict, a retry after a crash
# between the two writes, a concurrent caller with the same key) settles it the same way, by
# looking at the log where the plan's first event belongs (``plan_state``):
#   realized - the event with the planned id is there: the key's answer, nothing more written;
#   pending  - every planned version is free: write the planned events (the planned ids and times,
#              so whoever writes them writes the same events, and a conditional put lets one win);
#   lost     - another event holds a planned version: the plan can never be written (the log is
#              immutable), so it moves to the stream's head (same ids and times), conditionally on
#              the guard still holding the lost plan, so only one caller re-plans.
# At most one plan of a key is ever realized: a plan is only replaced once it is lost, and a lost
# plan stays lost. A transaction writes all of a plan's events or none, so its first event tells.


@dataclass(frozen=True, slots=True)
class GuardPlan:
    """What a key promises to append to one stream: the versions, the events' ids and times."""

    stream: str
    first_version: int
    last_version: int
    event_ids: tuple[str, ...]
    times: tuple[str, ...]

    def result(self, deduplicated: bool) -> AppendResult:
        return AppendResult(self.stream, self.first_version, self.last_version, self.event_ids, deduplicated)


PlanState = Literal["realized", "pending", "lost"]


def plan_at(stream: str, prepared: Sequence[StoredEvent], base: int) -> GuardPlan:
    """The plan of appending ``prepared`` after version ``base``."""
    return GuardPlan(stream, base + 1, base + len(prepared), tuple(p.id for p in prepared),
                     tuple(p.time_text for p in prepared))


def adopt(prepared: Sequence[StoredEvent], plan: GuardPlan) -> list[StoredEvent]:
    """The request's events with the ids and times its key's plan promised (a correlation id that
    defaulted to the event's own id follows it)."""
    if len(prepared) != len(plan.event_ids):
        raise ValueError(f"{plan.stream}: {len(prepared)} events for a plan of {len(plan.event_ids)}")
    return [replace(event, id=event_id, time_text=time_text,
                    correlation_id=event_id if event.correlation_id == event.id else event.correlation_id)
            for event, event_id, time_text in zip(prepared, plan.event_ids, plan.times, strict=True)]


def plan_state(plans: Sequence[GuardPlan], firsts: Sequence[Item | None]) -> PlanState:
    """Where a key's plans stand, given the stored item at each plan's first version (None: free)."""
    found = [(plan, item) for plan, item in zip(plans, firsts, strict=True) if item is not None]
    if any(item["id"]["S"] == plan.event_ids[0] for plan, item in found):
        return "realized"
    return "lost" if found else "pending"


def moved(lost: Sequence[GuardPlan], fresh: Sequence[GuardPlan]) -> list[GuardPlan]:
    """A lost plan again at new versions (``fresh``), its events keeping the ids and times the key
    promised first (none of them was ever written: a plan is written whole or not at all)."""
    return [replace(new, event_ids=old.event_ids, times=old.times) for old, new in zip(lost, fresh, strict=True)]


def replan_refused(plans: Sequence[GuardPlan], expected: int | Literal["any"]) -> bool:
    """A lost plan is re-planned at the head, unless the request named the version the plan was
    made after: then that version is stale, a version conflict like any other."""
    return expected != ANY and plans[0].first_version == expected + 1


def guard_item(key: str, digest: str, plans: Sequence[GuardPlan], now: datetime, ttl: timedelta) -> Item:
    """The idempotency guard of a keyed append (of one stream, or of several: ``append_streams``):
    which request it was, what it appends stream by stream, until it expires."""
    first = plans[0]
    return {
        "key": {"S": key},
        "stream": {"S": first.stream},
        "first_version": {"N": str(first.first_version)},
        "last_version": {"N": str(first.last_version)},
        "event_ids": {"L": [{"S": i} for i in first.event_ids]},
        "request_hash": {"S": digest},
        "created_at": {"S": format_time(now)},
        "expires_at": {"N": str(int((now + ttl).timestamp()))},
        "appends": {"S": canonical_json([[p.stream, p.first_version, p.last_version, list(p.event_ids),
                                          list(p.times)] for p in plans])},
    }


def guard_plans(guard: Item) -> list[GuardPlan] | None:
    """A guard's plans; None for a guard written in one transaction with its events (by releases
    before the two-write append), which is realized by construction."""
    if "appends" not in guard:
        return None
    entries = json.loads(guard["appends"]["S"])
    if any(len(entry) < 5 for entry in entries):
        return None
    return [GuardPlan(stream, first, last, tuple(ids), tuple(times)) for stream, first, last, ids, times in entries]


def guard_result(guard: Item) -> AppendResult:
    """What the guard's key appended (to its first stream), as a repeat's answer."""
    return AppendResult(
        stream=guard["stream"]["S"],
        first_version=int(guard["first_version"]["N"]),
        last_version=int(guard["last_version"]["N"]),
        event_ids=tuple(v["S"] for v in guard["event_ids"]["L"]),
        deduplicated=True,
    )


def guard_results(guard: Item) -> list[AppendResult]:
    """Everything the guard's key appended, stream by stream."""
    if "appends" not in guard:
        return [guard_result(guard)]
    return [AppendResult(entry[0], entry[1], entry[2], tuple(entry[3]), deduplicated=True)
            for entry in json.loads(guard["appends"]["S"])]


def original(key: str, digest: str, guard: Item) -> AppendResult:
    """A repeated key's original answer; a different request under a used key is refused."""
    if guard["request_hash"]["S"] != digest:
        raise IdempotencyKeyReused(key)
    return guard_result(guard)
