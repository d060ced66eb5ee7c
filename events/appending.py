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
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from events import catalogue
from events.chain import RecordedHead
from events.envelope import (
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
from events.items import MAX_ITEM_BYTES, Item, chained_item, item_size
from events.stream_catalogue import catalogue_key

NO_STREAM: Literal["no_stream"] = "no_stream"
ANY: Literal["any"] = "any"
ExpectedVersion = int | Literal["no_stream", "any"]

# One DynamoDB transaction: at most 100 items and 4 MB
# (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/transaction-apis.html).
# Every log keeps these limits, so what the in-memory log accepts DynamoDB accepts too.
MAX_TRANSACTION_ITEMS = 100
MAX_TRANSACTION_BYTES = 4 * 1024 * 1024
# Key attributes of the event table and its indexes (template.yaml: the table's stream/version,
# by-type-time's type/time, by-correlation's correlation_id/time) and DynamoDB's limits on their values
# (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Constraints.html#limits-partition-sort-keys):
# checked here, so every log refuses what DynamoDB would, before anything is written.
KEY_LIMITS = {"stream": 2048, "type": 2048, "correlation_id": 2048, "time": 1024}
HEAD_KEY_PREFIX = "#head:"  # idempotency-table key of a stream's recorded head; refused as a caller's key
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
    """One append is one transaction: its events, the stream's head and the guard, if any."""
    limit = MAX_TRANSACTION_ITEMS - 1 - (1 if key is not None else 0)
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
    prepared = []
    for event in events:
        spec = catalogue.resolve(event.type)
        if spec.category != category:
            raise InvalidStreamId(f"{event.type} belongs in a '{spec.category}:' stream, not {stream!r}")
        data = catalogue.validate(event.type, event.data)
        event_id = event.id or str(uuid.uuid4())
        prepared.append(StoredEvent(
            type=event.type,
            data_text=data_json(data),
            id=event_id,
            source=event.source,
            time_text=format_time(event.time or now),
            correlation_id=event.correlation_id or event_id,
            causation_id=event.causation_id,
        ))
    return prepared


def check_stored(stream: str, event: StoredEvent) -> None:
    """Refuse a stored-form event this store could not have written: an unknown type, a type of
    another category, data that no longer decodes, a time that does not parse."""
    category = catalogue.stream_category(stream)
    spec = catalogue.CURRENT[catalogue.type_name(event.type)]
    if spec.category != category:
        raise InvalidStreamId(f"{event.type} belongs in a '{spec.category}:' stream, not {stream!r}")
    catalogue.decode(event.type, event.data_text)
    try:
        parse_time(event.time_text)
    except ValueError:
        raise InvalidEventData(event.type, "time", f"unparseable time {event.time_text!r}") from None


def check_plans(plans: Sequence[PlannedAppend], key: str) -> None:
    """A multi-stream append: each stream once, and everything (events, a head per stream, the
    guard) in one transaction."""
    streams = [plan.stream for plan in plans]
    if len(set(streams)) != len(streams):
        raise InvalidStreamId("append_streams takes each stream once; merge its events into one plan")
    total = sum(len(plan.events) for plan in plans) + len(plans) + 1
    if not plans or total > MAX_TRANSACTION_ITEMS:
        raise TooManyEvents(f"{total} items (events, one head per stream and the guard) in one append; "
                            f"the limit is {MAX_TRANSACTION_ITEMS} (one transaction)")
    check_count([event for plan in plans for event in plan.events][:1], key)


def link(stream: str, prepared: Sequence[StoredEvent], base: int, prev_hash: str) -> list[Item]:
    """The items of ``prepared`` at versions ``base + 1...``, each chained to the one before."""
    items = []
    for offset, event in enumerate(prepared, start=1):
        item = chained_item(stream, base + offset, event, prev_hash)
        for name, limit in KEY_LIMITS.items():
            length = len(item[name]["S"].encode("utf-8"))
            if length > limit:
                raise InvalidAppend(stream, f"{name} is {length} bytes; a key value may have at most {limit}")
        size = item_size(item)
        if size > MAX_ITEM_BYTES:
            raise EventTooLarge(stream, size, MAX_ITEM_BYTES)
        items.append(item)
        prev_hash = item["hash"]["S"]
    if len(items) > 1 and sum(map(item_size, items)) > MAX_TRANSACTION_BYTES:
        raise EventTooLarge(stream, sum(map(item_size, items)), MAX_TRANSACTION_BYTES)
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


def guard_item(key: str, digest: str, results: Sequence[AppendResult], now: datetime, ttl: timedelta,
               *, multi: bool = False) -> Item:
    """The idempotency guard of an append (of ``results[0]``; of all ``results`` for a
    ``multi``-stream one): what the key wrote, and which request it was, until it expires."""
    first = results[0]
    guard: Item = {
        "key": {"S": key},
        "stream": {"S": first.stream},
        "first_version": {"N": str(first.first_version)},
        "last_version": {"N": str(first.last_version)},
        "event_ids": {"L": [{"S": i} for i in first.event_ids]},
        "request_hash": {"S": digest},
        "created_at": {"S": format_time(now)},
        "expires_at": {"N": str(int((now + ttl).timestamp()))},
    }
    if multi:
        guard["appends"] = {"S": canonical_json([[r.stream, r.first_version, r.last_version, list(r.event_ids)]
                                                 for r in results])}
    return guard


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
    return [AppendResult(stream, first, last, tuple(ids), deduplicated=True)
            for stream, first, last, ids in json.loads(guard["appends"]["S"])]


def original(key: str, digest: str, guard: Item) -> AppendResult:
    """A repeated key's original answer; a different request under a used key is refused."""
    if guard["request_hash"]["S"] != digest:
        raise IdempotencyKeyReused(key)
    return guard_result(guard)


def head_item(stream: str, version: int, digest: str, time: str) -> Item:
    """A stream's recorded head, kept in the idempotency table: the event table stays append-only
    (and its change stream, which the projector and reactor read, carries only events). No TTL.

    It also enters the stream in the stream catalogue (``events.stream_catalogue``): its category,
    sharded, and the time of its last event are the keys of the table's ``by-category`` index."""
    return {"key": {"S": HEAD_KEY_PREFIX + stream}, "stream": {"S": stream},
            "head_version": {"N": str(version)}, "head_hash": {"S": digest},
            "catalogue": {"S": catalogue_key(stream)}, "head_time": {"S": time}}


def head_of(result: AppendResult, items: Sequence[Item]) -> Item:
    """The head item after appending ``items`` (the linked items of ``result``)."""
    last = items[-1]
    return head_item(result.stream, result.last_version, last["hash"]["S"], last["time"]["S"])


def recorded_head(item: Item) -> RecordedHead:
    return RecordedHead(int(item["head_version"]["N"]), item["head_hash"]["S"])
