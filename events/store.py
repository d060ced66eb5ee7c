"""The event store: append-only, conditional, idempotent, hash-chained, on DynamoDB.

This module and the view stores in ``projections/`` are the only places that talk to DynamoDB.
No code path here updates or deletes an event item; the template's IAM denies it too.
"""

from __future__ import annotations

import hashlib
import random
import threading
import time as _time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Literal

from botocore.exceptions import ClientError

from events import catalogue
from events.chain import ChainReport, verify_items
from events.envelope import (
    GENESIS_HASH,
    NewEvent,
    RecordedEvent,
    StoredEvent,
    canonical_json,
    data_json,
    format_time,
    parse_time,
)
from events.errors import (
    EventTooLarge,
    IdempotencyKeyReused,
    InvalidEventData,
    InvalidExpectedVersion,
    InvalidStreamId,
    TooManyEvents,
    VersionConflict,
)
from events.items import MAX_ITEM_BYTES, Item, chained_item, from_item, item_size
from events.scan import parallel_scan

NO_STREAM: Literal["no_stream"] = "no_stream"
ANY: Literal["any"] = "any"
ExpectedVersion = int | Literal["no_stream", "any"]

MAX_TRANSACTION_ITEMS = 100
MAX_TRANSACTION_BYTES = 4 * 1024 * 1024
IDEMPOTENCY_TTL = timedelta(days=30)
_HEAD_CACHE_SIZE = 10_000
_MAX_ATTEMPTS = 8  # for "any" races and transaction conflicts; conflicts are not retried past it


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


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


class EventStore:
    """Append to and read from the event table.

    ``client`` is a low-level boto3 DynamoDB client. Heads of streams this process has written or
    read are cached by (stream, version): events are immutable, so a cached hash never goes stale,
    and an append at a known version costs exactly one conditional write.
    """

    def __init__(
        self,
        client: Any,
        events_table: str,
        idempotency_table: str,
        *,
        clock: Callable[[], datetime] = utcnow,
        idempotency_ttl: timedelta = IDEMPOTENCY_TTL,
    ) -> None:
        self._client = client
        self.events_table = events_table
        self.idempotency_table = idempotency_table
        self._clock = clock
        self._idempotency_ttl = idempotency_ttl
        self._hashes: OrderedDict[tuple[str, int], str] = OrderedDict()
        self._hashes_lock = threading.Lock()

    # ----------------------------------------------------------------- append

    def append(
        self,
        stream: str,
        events: Sequence[NewEvent],
        expected_version: ExpectedVersion = ANY,
        idempotency_key: str | None = None,
    ) -> AppendResult:
        """Append events to one stream atomically; see DESIGN.md correctness rules 1-4."""
        return self._append_prepared(stream, self._prepare(stream, events, idempotency_key),
                                     expected_version, idempotency_key)

    def append_stored(
        self,
        stream: str,
        events: Sequence[StoredEvent],
        expected_version: ExpectedVersion = ANY,
        idempotency_key: str | None = None,
    ) -> AppendResult:
        """Append events exactly as another log stored them (an import): id, stored type, data
        text, time, source, correlation and causation are kept byte for byte; only the versions
        and chain links are this store's. The data must still decode (upcasting old types) and
        each type must belong in the stream's category."""
        self._check_count(events, idempotency_key)
        for event in events:
            check_stored(stream, event)
        return self._append_prepared(stream, list(events), expected_version, idempotency_key)

    def _append_prepared(
        self, stream: str, prepared: list[StoredEvent], expected_version: ExpectedVersion, idempotency_key: str | None
    ) -> AppendResult:
        request_hash = _request_hash(stream, prepared) if idempotency_key else ""
        expected = _check_expected(expected_version)
        for attempt in range(_MAX_ATTEMPTS):
            base_version, prev_hash = self._base(stream, expected)
            items = self._link(stream, prepared, base_version, prev_hash)
            result = AppendResult(
                stream, base_version + 1, base_version + len(items), tuple(p.id for p in prepared)
            )
            outcome = self._write(items, idempotency_key, request_hash, result)
            if isinstance(outcome, AppendResult):
                return outcome
            if outcome == "written":
                self._remember(stream, result.last_version, items[-1]["hash"]["S"])
                return result
            if outcome == "conflict" and expected != ANY:
                raise VersionConflict(stream, expected_version, self.stream_version(stream))
            _time.sleep(random.uniform(0.005, 0.02) * (attempt + 1))  # noqa: S311 - jitter: a race, let the winner finish
        raise VersionConflict(stream, expected_version, self.stream_version(stream))

    def _prepare(self, stream: str, events: Sequence[NewEvent], key: str | None) -> list[StoredEvent]:
        category = catalogue.stream_category(stream)
        self._check_count(events, key)
        now = self._clock()
        prepared = []
        for event in events:
            spec = catalogue.resolve(event.type)
            if spec.category != category:
                raise InvalidStreamId(
                    f"{event.type} belongs in a '{spec.category}:' stream, not {stream!r}"
                )
            data = catalogue.validate(event.type, event.data)
            event_id = event.id or str(uuid.uuid4())
            prepared.append(
                StoredEvent(
                    type=event.type,
                    data_text=data_json(data),
                    id=event_id,
                    source=event.source,
                    time_text=format_time(event.time or now),
                    correlation_id=event.correlation_id or event_id,
                    causation_id=event.causation_id,
                )
            )
        return prepared

    @staticmethod
    def _check_count(events: Sequence[object], key: str | None) -> None:
        limit = MAX_TRANSACTION_ITEMS - (1 if key is not None else 0)
        if not events:
            raise TooManyEvents("nothing to append: give at least one event")
        if len(events) > limit:
            raise TooManyEvents(f"{len(events)} events in one append; the limit is {limit} (one transaction)")
        if key is not None and not (0 < len(key) <= 1024):
            raise InvalidStreamId("idempotency key must be 1-1024 characters")

    def _base(self, stream: str, expected: int | Literal["any"]) -> tuple[int, str]:
        """The version to append after and its hash."""
        if expected == ANY:
            head = self._head(stream)
            return (0, GENESIS_HASH) if head is None else head
        if expected == 0:
            return 0, GENESIS_HASH
        cached = self._cached_hash(stream, expected)
        if cached is not None:
            return expected, cached
        item = self._client.get_item(
            TableName=self.events_table,
            Key={"stream": {"S": stream}, "version": {"N": str(expected)}},
            ProjectionExpression="#h",
            ExpressionAttributeNames={"#h": "hash"},
            ConsistentRead=True,
        ).get("Item")
        if item is None:
            raise VersionConflict(stream, expected, self.stream_version(stream))
        self._remember(stream, expected, item["hash"]["S"])
        return expected, item["hash"]["S"]

    def _link(self, stream: str, prepared: list[StoredEvent], base: int, prev_hash: str) -> list[Item]:
        items = []
        for offset, p in enumerate(prepared, start=1):
            item = chained_item(stream, base + offset, p, prev_hash)
            digest = item["hash"]["S"]
            size = item_size(item)
            if size > MAX_ITEM_BYTES:
                raise EventTooLarge(stream, size, MAX_ITEM_BYTES)
            items.append(item)
            prev_hash = digest
        if len(items) > 1 and sum(map(item_size, items)) > MAX_TRANSACTION_BYTES:
            raise EventTooLarge(stream, sum(map(item_size, items)), MAX_TRANSACTION_BYTES)
        return items

    def _write(
        self, items: list[Item], key: str | None, request_hash: str, result: AppendResult
    ) -> str | AppendResult:
        """Write; returns "written", "conflict", "retry", or the original result of a repeated key."""
        condition = {
            "ConditionExpression": "attribute_not_exists(#v)",
            "ExpressionAttributeNames": {"#v": "version"},
        }
        if len(items) == 1 and key is None:
            try:
                self._client.put_item(TableName=self.events_table, Item=items[0], **condition)
                return "written"
            except ClientError as error:
                if error.response["Error"]["Code"] == "ConditionalCheckFailedException":
                    return "conflict"
                raise
        transact = [{"Put": {"TableName": self.events_table, "Item": item, **condition}} for item in items]
        if key is not None:
            transact.append({"Put": {
                "TableName": self.idempotency_table,
                "Item": self._guard_item(key, request_hash, result),
                "ConditionExpression": "attribute_not_exists(#k)",
                "ExpressionAttributeNames": {"#k": "key"},
                "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
            }})
        try:
            self._client.transact_write_items(TransactItems=transact)
            return "written"
        except ClientError as error:
            if error.response["Error"]["Code"] != "TransactionCanceledException":
                raise
            reasons = error.response.get("CancellationReasons") or []
            codes = [r.get("Code", "None") for r in reasons]
            if key is not None and len(codes) == len(transact) and codes[-1] == "ConditionalCheckFailed":
                return self._original(key, request_hash, reasons[-1].get("Item"))
            if "ConditionalCheckFailed" in codes:
                return "conflict"
            return "retry"  # TransactionConflict and the like: a concurrent writer on the same items

    def _guard_item(self, key: str, request_hash: str, result: AppendResult) -> Item:
        now = self._clock()
        return {
            "key": {"S": key},
            "stream": {"S": result.stream},
            "first_version": {"N": str(result.first_version)},
            "last_version": {"N": str(result.last_version)},
            "event_ids": {"L": [{"S": i} for i in result.event_ids]},
            "request_hash": {"S": request_hash},
            "created_at": {"S": format_time(now)},
            "expires_at": {"N": str(int((now + self._idempotency_ttl).timestamp()))},
        }

    def recorded(self, key: str) -> AppendResult | None:
        """What an idempotency key appended, while its guard lives (30 days); None if unknown."""
        guard = self._client.get_item(
            TableName=self.idempotency_table, Key={"key": {"S": key}}, ConsistentRead=True
        ).get("Item")
        return None if guard is None else _guard_result(guard)

    def _original(self, key: str, request_hash: str, guard: Item | None) -> AppendResult:
        if guard is None:
            guard = self._client.get_item(
                TableName=self.idempotency_table, Key={"key": {"S": key}}, ConsistentRead=True
            )["Item"]
        if guard["request_hash"]["S"] != request_hash:
            raise IdempotencyKeyReused(key)
        return _guard_result(guard)

    # ----------------------------------------------------------------- heads

    def _cached_hash(self, stream: str, version: int) -> str | None:
        with self._hashes_lock:
            return self._hashes.get((stream, version))

    def _remember(self, stream: str, version: int, digest: str) -> None:
        with self._hashes_lock:
            self._hashes[(stream, version)] = digest
            self._hashes.move_to_end((stream, version))
            if len(self._hashes) > _HEAD_CACHE_SIZE:
                self._hashes.popitem(last=False)

    def _head(self, stream: str) -> tuple[int, str] | None:
        items = self._client.query(
            TableName=self.events_table,
            KeyConditionExpression="#s = :s",
            ExpressionAttributeNames={"#s": "stream", "#v": "version", "#h": "hash"},
            ExpressionAttributeValues={":s": {"S": stream}},
            ProjectionExpression="#v, #h",
            ScanIndexForward=False,
            Limit=1,
            ConsistentRead=True,
        )["Items"]
        if not items:
            return None
        version, digest = int(items[0]["version"]["N"]), items[0]["hash"]["S"]
        self._remember(stream, version, digest)
        return version, digest

    def stream_version(self, stream: str) -> int:
        """The stream's current version; 0 when it has no events."""
        head = self._head(stream)
        return 0 if head is None else head[0]

    # ----------------------------------------------------------------- reads

    def read_items(self, stream: str, from_version: int = 1, to_version: int | None = None) -> Iterator[Item]:
        """Raw stored items of one stream in version order (for verification and audits)."""
        condition = "#s = :s AND #v >= :from"
        values: dict[str, Any] = {":s": {"S": stream}, ":from": {"N": str(from_version)}}
        if to_version is not None:
            condition = "#s = :s AND #v BETWEEN :from AND :to"
            values[":to"] = {"N": str(to_version)}
        kwargs: dict[str, Any] = {
            "TableName": self.events_table,
            "KeyConditionExpression": condition,
            "ExpressionAttributeNames": {"#s": "stream", "#v": "version"},
            "ExpressionAttributeValues": values,
            "ConsistentRead": True,
        }
        while True:
            page = self._client.query(**kwargs)
            yield from page["Items"]
            if "LastEvaluatedKey" not in page:
                return
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def read_stream(
        self, stream: str, from_version: int = 1, to_version: int | None = None
    ) -> list[RecordedEvent]:
        """One stream's events in version order, old versions upcast to the current models."""
        catalogue.stream_category(stream)
        if from_version < 1:
            raise InvalidExpectedVersion(f"from_version must be >= 1, got {from_version}")
        events = [from_item(item) for item in self.read_items(stream, from_version, to_version)]
        if events:
            self._remember(stream, events[-1].version, events[-1].hash)
        return events

    def scan_items(self, segments: int = 4, page_size: int | None = None) -> Iterator[Item]:
        """Every stored item by parallel scan; within a stream, items come in version order.

        DynamoDB splits scan segments by partition key, so one stream lives in one segment and a
        segment returns a partition's items contiguously in sort-key order. That is relied on and
        checked: a stream seen again after another one started is reported, not silently misordered.
        """
        for _, page in self.scan_pages(segments, page_size=page_size):
            if page is not None:
                yield from page

    def scan_pages(
        self,
        total_segments: int,
        segments: Sequence[int] | None = None,
        *,
        page_size: int | None = None,
        keys_only: bool = False,
    ) -> Iterator[tuple[int, list[Item] | None]]:
        """(segment, page) of a parallel scan, ``(segment, None)`` when a segment is finished (a
        rebuild records finished segments to resume from). ``keys_only`` reads just (stream, version)."""
        request: dict[str, Any] = {"TableName": self.events_table}
        if page_size:
            request["Limit"] = page_size
        if keys_only:
            request["ProjectionExpression"] = "#s, #v"
            request["ExpressionAttributeNames"] = {"#s": "stream", "#v": "version"}
        seen: dict[int, set[str]] = {}
        last: dict[int, str | None] = {}
        for segment, page in parallel_scan(self._client, request, total_segments, segments):
            if page is not None:
                _checked_contiguous(page, seen.setdefault(segment, set()), last, segment)
            yield segment, page

    def read_all(self, segments: int = 4) -> Iterator[RecordedEvent]:
        """Every event, each stream's in version order (streams interleave), for replay."""
        for item in self.scan_items(segments):
            yield from_item(item)

    def verify_stream(self, stream: str) -> ChainReport:
        return verify_items(stream, self.read_items(stream))


def _checked_contiguous(items: list[Item], seen: set[str], last: dict[int, str | None], segment: int) -> None:
    for item in items:
        stream = item["stream"]["S"]
        if stream != last.get(segment):
            if stream in seen:
                raise RuntimeError(f"scan returned stream {stream!r} non-contiguously; cannot order it")
            seen.add(stream)
            last[segment] = stream


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


def _guard_result(guard: Item) -> AppendResult:
    return AppendResult(
        stream=guard["stream"]["S"],
        first_version=int(guard["first_version"]["N"]),
        last_version=int(guard["last_version"]["N"]),
        event_ids=tuple(v["S"] for v in guard["event_ids"]["L"]),
        deduplicated=True,
    )


def _check_expected(expected: ExpectedVersion) -> int | Literal["any"]:
    if expected == NO_STREAM:
        return 0
    if expected == ANY:
        return ANY
    if isinstance(expected, bool) or not isinstance(expected, int) or expected < 0:
        raise InvalidExpectedVersion(f"invalid expected version {expected!r}: use a number >= 0, 'no_stream' or 'any'")
    return expected


def _request_hash(stream: str, prepared: list[StoredEvent]) -> str:
    """What makes two appends 'the same request': stream, types and data (not generated ids/times)."""
    body = canonical_json({"stream": stream, "events": [[p.type, p.data_text] for p in prepared]})
    return hashlib.sha256(body.encode("utf-8")).hexdigest()
