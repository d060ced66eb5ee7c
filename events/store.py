"""The event store: append-only, conditional, idempotent, hash-chained, on DynamoDB.

This module and the view stores in ``projections/`` are the only places that talk to DynamoDB.
No code path here updates or deletes an event item; the template's IAM denies it too.
"""

from __future__ import annotations

import hashlib
import json
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
from events.chain import ChainReport, RecordedHead, verify_items, verify_log
from events.envelope import (
    GENESIS_HASH,
    NewEvent,
    PlannedAppend,
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
    InvalidAppend,
    InvalidEventData,
    InvalidExpectedVersion,
    InvalidStreamId,
    StreamContended,
    TooManyEvents,
    VersionConflict,
)
from events.items import MAX_ITEM_BYTES, Item, chained_item, from_item, item_size
from events.scan import parallel_scan

NO_STREAM: Literal["no_stream"] = "no_stream"
ANY: Literal["any"] = "any"
ExpectedVersion = int | Literal["no_stream", "any"]

MAX_TRANSACTION_ITEMS = 100
HEAD_KEY_PREFIX = "#head:"  # idempotency-table key of a stream's recorded head; refused as a caller's key
MAX_TRANSACTION_BYTES = 4 * 1024 * 1024
IDEMPOTENCY_TTL = timedelta(days=30)
_HEAD_CACHE_SIZE = 10_000
# An append that loses a race ("any" on a moving head, or a transaction conflict) tries again with
# jittered exponential backoff until this much time has passed: the wait is bounded, the outcome
# is not (an "any" append never fails because others are appending, it only waits its turn).
CONTENTION_TIMEOUT = timedelta(seconds=10)
_BACKOFF_BASE, _BACKOFF_CAP = 0.005, 0.25  # seconds
# Cancellation reasons that mean "another request touched these items meanwhile, try again".
_TRANSIENT_REASONS = {"TransactionConflict", "ThrottlingError", "ProvisionedThroughputExceeded",
                      "RequestLimitExceeded", "None"}


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
    and an append at a known version costs exactly one conditional transaction (its events, the
    stream's recorded head and the idempotency guard, if any), with no read before it.
    """

    def __init__(
        self,
        client: Any,
        events_table: str,
        idempotency_table: str,
        *,
        clock: Callable[[], datetime] = utcnow,
        idempotency_ttl: timedelta = IDEMPOTENCY_TTL,
        contention_timeout: timedelta = CONTENTION_TIMEOUT,
    ) -> None:
        self._client = client
        self.events_table = events_table
        self.idempotency_table = idempotency_table
        self._clock = clock
        self._idempotency_ttl = idempotency_ttl
        self._contention_timeout = contention_timeout.total_seconds()
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
        started = _time.monotonic()
        attempt = 0
        while True:
            attempt += 1
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
            # Lost a race: let the winners finish. Full jitter spreads the losers out, so each
            # round has a winner instead of the same crowd colliding again.
            waited = _time.monotonic() - started
            if waited >= self._contention_timeout:
                raise StreamContended(stream, waited, attempt)
            pause = random.uniform(0, min(_BACKOFF_CAP, _BACKOFF_BASE * 2 ** min(attempt, 16)))
            _time.sleep(min(pause, self._contention_timeout - waited))

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
        limit = MAX_TRANSACTION_ITEMS - 1 - (1 if key is not None else 0)  # the head and the guard share it
        if not events:
            raise TooManyEvents("nothing to append: give at least one event")
        if len(events) > limit:
            raise TooManyEvents(f"{len(events)} events in one append; the limit is {limit} (one transaction)")
        if key is not None and not (0 < len(key) <= 1024):
            raise InvalidStreamId("idempotency key must be 1-1024 characters")
        if key is not None and key.startswith(HEAD_KEY_PREFIX):
            raise InvalidStreamId(f"idempotency keys starting with {HEAD_KEY_PREFIX!r} are reserved for stream heads")

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
        """Write; returns "written", "conflict", "retry", or the original result of a repeated key.

        One transaction: the events (each conditional on its version being free), the stream's
        recorded head (so an audit can tell a log cut short, see ``events.chain``) and the
        idempotency guard, if any, last."""
        condition = {
            "ConditionExpression": "attribute_not_exists(#v)",
            "ExpressionAttributeNames": {"#v": "version"},
        }
        transact = [{"Put": {"TableName": self.events_table, "Item": item, **condition}} for item in items]
        transact.append(self._head_put(result, items[-1]["hash"]["S"]))
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
                _raise_if_invalid(result.stream, error)
                raise
            reasons = error.response.get("CancellationReasons") or []
            codes = [r.get("Code") or "None" for r in reasons]
            invalid = [r for r in reasons if r.get("Code") == "ValidationError"]
            if invalid:  # bad input (an item too large, ...): no retry can make it valid
                raise InvalidAppend(result.stream, invalid[0].get("Message") or "ValidationError") from None
            if key is not None and len(codes) == len(transact) and codes[-1] == "ConditionalCheckFailed":
                return self._original(key, request_hash, reasons[-1].get("Item"))
            if "ConditionalCheckFailed" in codes:
                return "conflict"  # an event's version (or the head past it) is taken: a version conflict
            if set(codes) <= _TRANSIENT_REASONS:
                return "retry"  # a concurrent writer on the same items, or throttling
            raise

    def _head_put(self, result: AppendResult, digest: str) -> dict[str, Any]:
        """The transaction item that moves a stream's recorded head to the end of ``result``."""
        return {"Put": {
            "TableName": self.idempotency_table,
            "Item": _head_item(result.stream, result.last_version, digest),
            # Heads only move forward; a head behind the log (events appended without one) is no conflict.
            "ConditionExpression": "attribute_not_exists(#k) OR #hv < :first",
            "ExpressionAttributeNames": {"#k": "key", "#hv": "head_version"},
            "ExpressionAttributeValues": {":first": {"N": str(result.first_version)}},
        }}

    def append_streams(self, plans: Sequence[PlannedAppend], idempotency_key: str) -> list[AppendResult]:
        """Append events to several streams in ONE transaction, guarded by one idempotency key.

        For a decision whose events land in several streams (a Shopify webhook with lines of many
        SKUs): all of them or none. Each stream is appended at its head (expected version "any")
        with its recorded head moved in the same transaction; a concurrent writer on one of them
        makes the transaction retry on the new heads, with the same bounded, jittered wait as
        ``append``. The whole append must fit one DynamoDB transaction: at most 100 items — the
        events, one head per stream and the guard
        (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/transaction-apis.html);
        callers split larger decisions (events.shopify.plan_parts). A repeated key returns the
        original results, marked deduplicated; a different request under a used key is refused.
        """
        streams = [plan.stream for plan in plans]
        if len(set(streams)) != len(streams):
            raise InvalidStreamId("append_streams takes each stream once; merge its events into one plan")
        total = sum(len(plan.events) for plan in plans) + len(plans) + 1
        if not plans or total > MAX_TRANSACTION_ITEMS:
            raise TooManyEvents(f"{total} items (events, one head per stream and the guard) in one append; "
                                f"the limit is {MAX_TRANSACTION_ITEMS} (one transaction)")
        self._check_count([event for plan in plans for event in plan.events][:1], idempotency_key)
        prepared = [(plan.stream, self._prepare(plan.stream, plan.events, None)) for plan in plans]
        request_hash = hashlib.sha256("".join(_request_hash(stream, events) for stream, events in prepared)
                                      .encode("ascii")).hexdigest()
        condition = {"ConditionExpression": "attribute_not_exists(#v)", "ExpressionAttributeNames": {"#v": "version"}}
        started = _time.monotonic()
        attempt = 0
        while True:
            attempt += 1
            results, transact, heads = [], [], []
            for stream, events in prepared:
                base_version, prev_hash = self._base(stream, ANY)
                items = self._link(stream, events, base_version, prev_hash)
                result = AppendResult(stream, base_version + 1, base_version + len(items),
                                      tuple(event.id for event in events))
                results.append(result)
                transact.extend({"Put": {"TableName": self.events_table, "Item": item, **condition}} for item in items)
                transact.append(self._head_put(result, items[-1]["hash"]["S"]))
                heads.append((stream, result.last_version, items[-1]["hash"]["S"]))
            guard = self._guard_item(idempotency_key, request_hash, results[0])
            guard["appends"] = {"S": canonical_json([[r.stream, r.first_version, r.last_version, list(r.event_ids)]
                                                     for r in results])}
            transact.append({"Put": {
                "TableName": self.idempotency_table, "Item": guard,
                "ConditionExpression": "attribute_not_exists(#k)", "ExpressionAttributeNames": {"#k": "key"},
                "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
            }})
            try:
                self._client.transact_write_items(TransactItems=transact)
            except ClientError as error:
                if error.response["Error"]["Code"] != "TransactionCanceledException":
                    _raise_if_invalid(streams[0], error)
                    raise
                reasons = error.response.get("CancellationReasons") or []
                codes = [r.get("Code") or "None" for r in reasons]
                invalid = [r for r in reasons if r.get("Code") == "ValidationError"]
                if invalid:  # bad input: no retry can make it valid
                    raise InvalidAppend(streams[0], invalid[0].get("Message") or "ValidationError") from None
                if len(codes) == len(transact) and codes[-1] == "ConditionalCheckFailed":
                    self._original(idempotency_key, request_hash, reasons[-1].get("Item"))  # raises if reused
                    return self.recorded_streams(idempotency_key) or []
                if not set(codes) <= _TRANSIENT_REASONS | {"ConditionalCheckFailed"}:
                    raise
                # A stream moved on (or a concurrent writer): read the heads again, after a jittered wait.
                waited = _time.monotonic() - started
                if waited >= self._contention_timeout:
                    raise StreamContended(streams[0], waited, attempt) from None
                pause = random.uniform(0, min(_BACKOFF_CAP, _BACKOFF_BASE * 2 ** min(attempt, 16)))
                _time.sleep(min(pause, self._contention_timeout - waited))
                continue
            for stream, version, digest in heads:
                self._remember(stream, version, digest)
            return results

    def recorded_streams(self, key: str) -> list[AppendResult] | None:
        """What a multi-stream append (``append_streams``) wrote under ``key``; None if unknown."""
        guard = self._client.get_item(
            TableName=self.idempotency_table, Key={"key": {"S": key}}, ConsistentRead=True
        ).get("Item")
        if guard is None:
            return None
        if "appends" not in guard:
            return [_guard_result(guard)]
        return [AppendResult(stream, first, last, tuple(ids), deduplicated=True)
                for stream, first, last, ids in json.loads(guard["appends"]["S"])]

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

    # ----------------------------------------------------------------- audit

    def recorded_head(self, stream: str) -> RecordedHead | None:
        """The head the last append recorded for ``stream`` (None for a stream never appended to
        by a store that records heads)."""
        item = self._client.get_item(
            TableName=self.idempotency_table, Key={"key": {"S": HEAD_KEY_PREFIX + stream}}, ConsistentRead=True
        ).get("Item")
        return None if item is None else _recorded_head(item)

    def recorded_heads(self, segments: int = 4) -> dict[str, RecordedHead]:
        """Every stream's recorded head, by a parallel scan of the idempotency table."""
        request = {
            "TableName": self.idempotency_table,
            "FilterExpression": "begins_with(#k, :p)",
            "ExpressionAttributeNames": {"#k": "key"},
            "ExpressionAttributeValues": {":p": {"S": HEAD_KEY_PREFIX}},
            "ConsistentRead": True,
        }
        heads: dict[str, RecordedHead] = {}
        for _, page in parallel_scan(self._client, request, segments):
            for item in page or ():
                heads[item["stream"]["S"]] = _recorded_head(item)
        return heads

    def verify_stream(self, stream: str) -> ChainReport:
        """The stream's chain, checked against its recorded head (read first: an append meanwhile
        only makes the log longer than the head, never shorter)."""
        head = self.recorded_head(stream)
        return verify_items(stream, self.read_items(stream), head)

    def verify_log(self, segments: int = 4) -> Iterator[ChainReport]:
        """A report per stream of the whole log, each checked against its recorded head; streams
        with a head and no events left are reported as truncated."""
        heads = self.recorded_heads(segments)
        return verify_log(self.scan_items(segments), heads)


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


def _head_item(stream: str, version: int, digest: str) -> Item:
    """A stream's recorded head, kept in the idempotency table: the event table stays append-only
    (and its change stream, which the projector and reactor read, carries only events). No TTL."""
    return {"key": {"S": HEAD_KEY_PREFIX + stream}, "stream": {"S": stream},
            "head_version": {"N": str(version)}, "head_hash": {"S": digest}}


def _recorded_head(item: Item) -> RecordedHead:
    return RecordedHead(int(item["head_version"]["N"]), item["head_hash"]["S"])


def _raise_if_invalid(stream: str, error: ClientError) -> None:
    """DynamoDB's ValidationException on an append's own items (a key or item too large, ...) is
    the caller's bad input, not a server failure."""
    if error.response["Error"]["Code"] == "ValidationException":
        raise InvalidAppend(stream, error.response["Error"].get("Message", "ValidationException")) from None


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
