"""The event store: append-only, conditional, idempotent, hash-chained, on DynamoDB.

This module and the view stores in ``projections/`` are the only places that talk to DynamoDB.
No code path here updates or deletes an event item; the template's IAM denies it too.
"""

from __future__ import annotations

import random
import threading
import time as _time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from typing import Any, Literal

from botocore.exceptions import ClientError

from events.appending import (
    ANY,
    HEAD_KEY_PREFIX,
    IDEMPOTENCY_TTL,
    MAX_TRANSACTION_BYTES,
    MAX_TRANSACTION_ITEMS,
    NO_STREAM,
    AppendResult,
    ExpectedVersion,
    check_expected,
    check_plans,
    check_stored,
    guard_item,
    guard_result,
    guard_results,
    head_of,
    link,
    linked_result,
    original,
    parse_expected_version,
    prepare,
    recorded_head,
    request_hash,
    streams_request_hash,
)
from events import catalogue, stream_catalogue
from events.chain import RecordedHead
from events.sharding import MergedPage, merge_page
from events.stream_catalogue import StreamEntry
from events.envelope import GENESIS_HASH, PlannedAppend, StoredEvent
from events.errors import InvalidAppend, StreamContended, VersionConflict
from events.items import Item
from events.ports import DerivedReads, ScanPage
from events.scan import parallel_scan

# The pure parts of an append live in events.appending (shared with the in-memory log); they are
# re-exported here for the callers that import them from the store.
__all__ = [
    "ANY",
    "HEAD_KEY_PREFIX",
    "MAX_TRANSACTION_BYTES",
    "MAX_TRANSACTION_ITEMS",
    "NO_STREAM",
    "AppendResult",
    "EventStore",
    "ExpectedVersion",
    "check_stored",
    "parse_expected_version",
    "utcnow",
]

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


class EventStore(DerivedReads):
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
        self._pool: ThreadPoolExecutor | None = None

    # ----------------------------------------------------------------- append

    def _append_prepared(
        self, stream: str, prepared: list[StoredEvent], expected_version: ExpectedVersion, key: str | None
    ) -> AppendResult:
        digest = request_hash(stream, prepared) if key else ""
        expected = check_expected(expected_version)
        started = _time.monotonic()
        attempt = 0
        while True:
            attempt += 1
            base_version, prev_hash = self._base(stream, expected)
            items = link(stream, prepared, base_version, prev_hash)
            result = linked_result(stream, prepared, base_version)
            outcome = self._write(items, key, digest, result)
            if isinstance(outcome, AppendResult):
                return outcome
            if outcome == "written":
                self._saw_head(stream, result.last_version, items[-1]["hash"]["S"])
                return result
            if outcome == "conflict" and expected != ANY:
                raise VersionConflict(stream, expected_version, self.stream_version(stream))
            # Lost a race: let the winners finish. Full jitter spreads the losers out, so each
            # round has a winner instead of the same crowd colliding again.
            waited = _time.monotonic() - started
            if waited >= self._contention_timeout:
                raise StreamContended(stream, waited, attempt)
            pause = random.uniform(0, min(_BACKOFF_CAP, _BACKOFF_BASE * 2 ** min(attempt, 16)))  # noqa: S311 jitter, not security
            _time.sleep(min(pause, self._contention_timeout - waited))

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
        self._saw_head(stream, expected, item["hash"]["S"])
        return expected, item["hash"]["S"]

    def _write(
        self, items: list[Item], key: str | None, digest: str, result: AppendResult
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
        transact.append(self._head_put(result, items))
        if key is not None:
            transact.append({"Put": {
                "TableName": self.idempotency_table,
                "Item": guard_item(key, digest, [result], self._clock(), self._idempotency_ttl),
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
                return self._original(key, digest, reasons[-1].get("Item"))
            if "ConditionalCheckFailed" in codes:
                return "conflict"  # an event's version (or the head past it) is taken: a version conflict
            if set(codes) <= _TRANSIENT_REASONS:
                return "retry"  # a concurrent writer on the same items, or throttling
            raise

    def _head_put(self, result: AppendResult, items: list[Item]) -> dict[str, Any]:
        """The transaction item that moves a stream's recorded head to the end of ``result``."""
        return {"Put": {
            "TableName": self.idempotency_table,
            "Item": head_of(result, items),
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
        check_plans(plans, idempotency_key)
        streams = [plan.stream for plan in plans]
        prepared = [(plan.stream, prepare(plan.stream, plan.events, None, self._clock())) for plan in plans]
        digest = streams_request_hash(prepared)
        condition = {"ConditionExpression": "attribute_not_exists(#v)", "ExpressionAttributeNames": {"#v": "version"}}
        started = _time.monotonic()
        attempt = 0
        while True:
            attempt += 1
            results: list[AppendResult] = []
            transact: list[dict[str, Any]] = []
            heads: list[tuple[str, int, str]] = []
            for stream, events in prepared:
                base_version, prev_hash = self._base(stream, ANY)
                items = link(stream, events, base_version, prev_hash)
                result = linked_result(stream, events, base_version)
                results.append(result)
                transact.extend({"Put": {"TableName": self.events_table, "Item": item, **condition}} for item in items)
                transact.append(self._head_put(result, items))
                heads.append((stream, result.last_version, items[-1]["hash"]["S"]))
            guard = guard_item(idempotency_key, digest, results, self._clock(), self._idempotency_ttl, multi=True)
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
                    self._original(idempotency_key, digest, reasons[-1].get("Item"))  # raises if reused
                    return self.recorded_streams(idempotency_key) or []
                if not set(codes) <= _TRANSIENT_REASONS | {"ConditionalCheckFailed"}:
                    raise
                # A stream moved on (or a concurrent writer): read the heads again, after a jittered wait.
                waited = _time.monotonic() - started
                if waited >= self._contention_timeout:
                    raise StreamContended(streams[0], waited, attempt) from None
                pause = random.uniform(0, min(_BACKOFF_CAP, _BACKOFF_BASE * 2 ** min(attempt, 16)))  # noqa: S311 jitter, not security
                _time.sleep(min(pause, self._contention_timeout - waited))
                continue
            for stream, version, head_hash in heads:
                self._saw_head(stream, version, head_hash)
            return results

    def recorded_streams(self, key: str) -> list[AppendResult] | None:
        """What a multi-stream append (``append_streams``) wrote under ``key``; None if unknown."""
        guard = self._client.get_item(
            TableName=self.idempotency_table, Key={"key": {"S": key}}, ConsistentRead=True
        ).get("Item")
        return None if guard is None else guard_results(guard)

    def recorded(self, key: str) -> AppendResult | None:
        """What an idempotency key appended, while its guard lives (30 days); None if unknown."""
        guard = self._client.get_item(
            TableName=self.idempotency_table, Key={"key": {"S": key}}, ConsistentRead=True
        ).get("Item")
        return None if guard is None else guard_result(guard)

    def _original(self, key: str, digest: str, guard: Item | None) -> AppendResult:
        if guard is None:
            guard = self._client.get_item(
                TableName=self.idempotency_table, Key={"key": {"S": key}}, ConsistentRead=True
            )["Item"]
        return original(key, digest, guard)

    # ----------------------------------------------------------------- heads

    def _cached_hash(self, stream: str, version: int) -> str | None:
        with self._hashes_lock:
            return self._hashes.get((stream, version))

    def _saw_head(self, stream: str, version: int, digest: str) -> None:
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
        self._saw_head(stream, version, digest)
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

    def scan_pages(
        self,
        total_segments: int,
        segments: Sequence[int] | None = None,
        *,
        page_size: int | None = None,
        keys_only: bool = False,
    ) -> Iterator[ScanPage]:
        """(segment, page) of a parallel scan, ``(segment, None)`` when a segment is finished (a
        rebuild records finished segments to resume from). ``keys_only`` reads just (stream, version).

        DynamoDB splits scan segments by partition key, so one stream lives in one segment and a
        segment returns a partition's items contiguously in sort-key order. That is relied on and
        checked: a stream seen again after another one started is reported, not silently misordered.
        """
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

    # ----------------------------------------------------------------- audit

    def recorded_head(self, stream: str) -> RecordedHead | None:
        """The head the last append recorded for ``stream`` (None for a stream never appended to
        by a store that records heads)."""
        item = self._client.get_item(
            TableName=self.idempotency_table, Key={"key": {"S": HEAD_KEY_PREFIX + stream}}, ConsistentRead=True
        ).get("Item")
        return None if item is None else recorded_head(item)

    def list_streams(self, category: str, limit: int = 50, token: str | None = None) -> MergedPage[StreamEntry]:
        """The category's streams, most recently appended first: a Query per catalogue bucket of the
        idempotency table's by-category index, asked at once and merged (never a scan)."""
        catalogue.check_category(category)

        def fetch(key: str, start: dict[str, Any] | None, count: int) -> tuple[list[Item], dict[str, Any] | None]:
            request: dict[str, Any] = {
                "TableName": self.idempotency_table, "IndexName": stream_catalogue.INDEX,
                "KeyConditionExpression": "#c = :c",
                "ExpressionAttributeNames": {"#c": stream_catalogue.CATALOGUE_ATTR},
                "ExpressionAttributeValues": {":c": {"S": key}}, "ScanIndexForward": False, "Limit": count,
            }
            if start:
                request["ExclusiveStartKey"] = start
            page = self._client.query(**request)
            return page["Items"], page.get("LastEvaluatedKey")

        merged = merge_page(fetch, stream_catalogue.category_keys(category), limit, token,
                            order=stream_catalogue.order, position=stream_catalogue.position, run=self._fan_out().map)
        return MergedPage([stream_catalogue.entry(item) for item in merged.items], merged.next_token)

    def _fan_out(self) -> ThreadPoolExecutor:
        """Threads for the catalogue's per-bucket queries (the client is thread-safe), made once."""
        with self._hashes_lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="catalogue")
            return self._pool

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
                heads[item["stream"]["S"]] = recorded_head(item)
        return heads

def _checked_contiguous(items: list[Item], seen: set[str], last: dict[int, str | None], segment: int) -> None:
    for item in items:
        stream = item["stream"]["S"]
        if stream != last.get(segment):
            if stream in seen:
                raise RuntimeError(f"scan returned stream {stream!r} non-contiguously; cannot order it")
            seen.add(stream)
            last[segment] = stream


def _raise_if_invalid(stream: str, error: ClientError) -> None:
    """DynamoDB's ValidationException on an append's own items (a key or item too large, ...) is
    the caller's bad input, not a server failure."""
    if error.response["Error"]["Code"] == "ValidationException":
        raise InvalidAppend(stream, error.response["Error"].get("Message", "ValidationException")) from None
