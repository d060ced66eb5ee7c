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
from typing import Any, Literal, Protocol

from botocore.exceptions import ClientError

from events import raw_items
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
    GuardPlan,
    PlanState,
    adopt,
    guard_item,
    guard_plans,
    guard_results,
    link,
    linked_result,
    moved,
    original,
    parse_expected_version,
    plan_at,
    plan_state,
    prepare,
    replan_refused,
    request_hash,
    streams_request_hash,
)
from events import catalogue, stream_catalogue
from events.chain import Witness
from events.checkpoints import Checkpoint, checkpoint_item, from_checkpoint_item, highest, legacy_head
from events.envelope import GENESIS_HASH, PlannedAppend, StoredEvent
from events.errors import InvalidAppend, StreamContended, VersionConflict
from events.items import Item
from events.ports import DerivedReads, ScanPage
from events.scan import parallel_scan
from events.sharding import MergedPage, merge_page
from events.stream_catalogue import StreamEntry

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
# BatchExecuteStatement takes at most 25 statements
# (https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_BatchExecuteStatement.html).
_STATEMENTS_PER_BATCH = 25
# The same for a single PutItem, once botocore's own retries are spent.
_THROTTLED = {"ProvisionedThroughputExceededException", "ThrottlingException", "RequestLimitExceeded"}


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class LogTables(Protocol):
    """The names of the log's tables (``processors.wiring.config.Tables``, ``TableNames``)."""

    @property
    def events(self) -> str: ...

    @property
    def idempotency(self) -> str: ...

    @property
    def checkpoints(self) -> str: ...


class EventStore(DerivedReads):
    """Append to and read from the event table; seal and read the checkpoints audits check it against.

    ``client`` is a low-level boto3 DynamoDB client. Heads of streams this process has written or
    read are cached by (stream, version): events are immutable, so a cached hash never goes stale,
    and an append at a known version costs no read: one conditional PutItem for one event, one
    transaction of its events for several, and before either the idempotency guard, if any, as
    one more conditional PutItem (``events.appending`` says why two writes are safe).
    """

    def __init__(
        self,
        client: Any,
        events_table: str,
        idempotency_table: str,
        checkpoints_table: str,
        *,
        clock: Callable[[], datetime] = utcnow,
        idempotency_ttl: timedelta = IDEMPOTENCY_TTL,
        contention_timeout: timedelta = CONTENTION_TIMEOUT,
    ) -> None:
        self._client = client
        self.events_table = events_table
        self.idempotency_table = idempotency_table
        self.checkpoints_table = checkpoints_table
        self._clock = clock
        self._idempotency_ttl = idempotency_ttl
        self._contention_timeout = contention_timeout.total_seconds()
        self._hashes: OrderedDict[tuple[str, int], str] = OrderedDict()
        self._hashes_lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None

    @classmethod
    def over(cls, client: Any, tables: LogTables, **settings: Any) -> "EventStore":
        """The store over the log's tables as a stack names them."""
        return cls(client, tables.events, tables.idempotency, tables.checkpoints, **settings)

    # ----------------------------------------------------------------- append

    def _append_prepared(
        self, stream: str, prepared: list[StoredEvent], expected_version: ExpectedVersion, key: str | None
    ) -> AppendResult:
        expected = check_expected(expected_version)
        if key is not None:
            return self._append_keyed([(stream, prepared)], expected, expected_version, key,
                                      request_hash(stream, prepared))[0]
        started = _time.monotonic()
        attempt = 0
        while True:
            attempt += 1
            base_version, prev_hash = self._base(stream, expected)
            items = link(stream, prepared, base_version, prev_hash)
            outcome = self._put_events(stream, items)
            if outcome == "written":
                self._saw_head(stream, base_version + len(items), items[-1]["hash"]["S"])
                return linked_result(stream, prepared, base_version)
            if outcome == "conflict" and expected != ANY:
                raise VersionConflict(stream, expected_version, self.stream_version(stream))
            self._wait_turn(stream, started, attempt)

    def append_streams(self, plans: Sequence[PlannedAppend], idempotency_key: str) -> list[AppendResult]:
        """Append events to several streams in ONE transaction, guarded by one idempotency key.

        For a decision whose events land in several streams (a Shopify webhook with lines of many
        SKUs): all of them or none. Each stream is appended at its head (expected version "any"); a
        concurrent writer on one of them makes the append re-plan on the new heads, with the same
        bounded, jittered wait as ``append``. The events must fit one DynamoDB transaction: at most
        100 items (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/transaction-apis.html;
        the guard is written before it, on its own); callers split larger decisions
        (events.shopify.plan_parts). A repeated key returns the original results, marked
        deduplicated; a different request under a used key is refused.
        """
        check_plans(plans, idempotency_key)
        prepared = [(plan.stream, prepare(plan.stream, plan.events, None, self._clock())) for plan in plans]
        return self._append_keyed(prepared, ANY, ANY, idempotency_key, streams_request_hash(prepared))

    def _append_keyed(
        self, parts: list[tuple[str, list[StoredEvent]]], expected: int | Literal["any"],
        expected_version: ExpectedVersion, key: str, digest: str,
    ) -> list[AppendResult]:
        """Claim the key with a guard holding the plan, then write the plan's events: two
        conditional writes, each safe to repeat (see the guard protocol in ``events.appending``).
        The answer is marked deduplicated unless this call wrote the events."""
        started = _time.monotonic()
        attempt = 0
        guard: Item | None = None
        fresh = False  # this call just wrote ``guard``: its versions were free when it planned them
        while True:
            attempt += 1
            if guard is None:  # claim the key with a plan at the heads, or learn whose it is
                claim = guard_item(key, digest, self._plan(parts, expected), self._clock(), self._idempotency_ttl)
                held = self._put_guard(claim, None)
                if held == {}:
                    continue  # a guard was there and expired meanwhile: claim again
                guard, fresh = (claim, True) if held is None else (held, False)
            original(key, digest, guard)  # raises if the key named another request
            plans = guard_plans(guard)
            if plans is None:  # a guard written with its events in one transaction (earlier releases)
                return guard_results(guard)
            state = "pending" if fresh else self._plan_state(plans)
            fresh = False
            if state == "realized":
                return [plan.result(deduplicated=True) for plan in plans]
            if state == "pending":
                items = self._linked_plans(parts, plans)
                outcome = self._put_events(plans[0].stream, items)
                if outcome == "written":
                    for plan in plans:
                        last = next(i for i in reversed(items) if i["stream"]["S"] == plan.stream)
                        self._saw_head(plan.stream, plan.last_version, last["hash"]["S"])
                    return [plan.result(deduplicated=False) for plan in plans]
                # "conflict": a version is taken, perhaps by another caller settling the key: look
                # again after the wait (a log whose versions are not contiguous keeps conflicting,
                # and the wait is bounded).
            else:  # lost: another event holds a planned version, forever
                if replan_refused(plans, expected):
                    raise VersionConflict(plans[0].stream, expected_version, self.stream_version(plans[0].stream))
                replanned = guard_item(key, digest, moved(plans, self._plan(parts, expected)), self._clock(),
                                       self._idempotency_ttl)
                held = self._put_guard(replanned, guard)
                if held == {}:
                    guard = None  # the guard expired meanwhile: claim the key again
                else:  # ours now, or another caller re-planned first: settle that plan
                    guard, fresh = (replanned, True) if held is None else (held, False)
                continue
            self._wait_turn(plans[0].stream, started, attempt)

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

    def _plan(self, parts: Sequence[tuple[str, list[StoredEvent]]],
              expected: int | Literal["any"]) -> list[GuardPlan]:
        """Each part's plan after its stream's head (or after ``expected``, which must exist)."""
        plans = []
        for stream, events in parts:
            base_version, _ = self._base(stream, expected)
            plans.append(plan_at(stream, events, base_version))
        return plans

    def _linked_plans(self, parts: Sequence[tuple[str, list[StoredEvent]]],
                      plans: Sequence[GuardPlan]) -> list[Item]:
        """The items a key's plans write: the request's events with the planned ids and times, at
        the planned versions (the same request, so the same streams in the same order)."""
        items: list[Item] = []
        for (stream, events), plan in zip(parts, plans, strict=True):
            base_version, prev_hash = self._base(stream, plan.first_version - 1)
            items.extend(link(stream, adopt(events, plan), base_version, prev_hash))
        return items

    def _plan_state(self, plans: Sequence[GuardPlan]) -> PlanState:
        firsts = [self._client.get_item(
            TableName=self.events_table,
            Key={"stream": {"S": plan.stream}, "version": {"N": str(plan.first_version)}},
            ProjectionExpression="#i", ExpressionAttributeNames={"#i": "id"}, ConsistentRead=True,
        ).get("Item") for plan in plans]
        return plan_state(plans, firsts)

    def _put_guard(self, guard: Item, replacing: Item | None) -> Item | None:
        """Write ``guard`` if the key is new (or, ``replacing``, if it still holds that guard's
        plans). None when written; else the guard the table holds ({} when there is none)."""
        if replacing is None:
            condition: dict[str, Any] = {"ConditionExpression": "attribute_not_exists(#k)",
                                         "ExpressionAttributeNames": {"#k": "key"}}
        else:
            condition = {"ConditionExpression": "#a = :a AND #r = :r",
                         "ExpressionAttributeNames": {"#a": "appends", "#r": "request_hash"},
                         "ExpressionAttributeValues": {":a": replacing["appends"], ":r": replacing["request_hash"]}}
        try:
            self._client.put_item(TableName=self.idempotency_table, Item=guard,
                                  ReturnValuesOnConditionCheckFailure="ALL_OLD", **condition)
            return None
        except ClientError as error:
            if error.response["Error"]["Code"] != "ConditionalCheckFailedException":
                _raise_if_invalid(guard["stream"]["S"], error)
                raise
            held: Item | None = error.response.get("Item")
        if held is None:
            held = self._client.get_item(TableName=self.idempotency_table, Key={"key": guard["key"]},
                                         ConsistentRead=True).get("Item")
        return held or {}

    def _put_events(self, stream: str, items: list[Item]) -> Literal["written", "conflict", "retry"]:
        """Write events, each conditional on its version being free: one item is one PutItem, more
        are one transaction. "conflict": a version is taken; "retry": a concurrent writer on the
        same items, or throttling."""
        condition = {
            "ConditionExpression": "attribute_not_exists(#v)",
            "ExpressionAttributeNames": {"#v": "version"},
        }
        try:
            if len(items) == 1:
                self._client.put_item(TableName=self.events_table, Item=items[0], **condition)
            else:
                self._client.transact_write_items(TransactItems=[
                    {"Put": {"TableName": self.events_table, "Item": item, **condition}} for item in items])
            return "written"
        except ClientError as error:
            code = error.response["Error"]["Code"]
            if code == "ConditionalCheckFailedException":
                return "conflict"
            if code in _THROTTLED:
                return "retry"
            if code != "TransactionCanceledException":
                _raise_if_invalid(stream, error)
                raise
            reasons = error.response.get("CancellationReasons") or []
            codes = [r.get("Code") or "None" for r in reasons]
            invalid = [r for r in reasons if r.get("Code") == "ValidationError"]
            if invalid:  # bad input (an item too large, ...): no retry can make it valid
                raise InvalidAppend(stream, invalid[0].get("Message") or "ValidationError") from None
            if "ConditionalCheckFailed" in codes:
                return "conflict"
            if set(codes) <= _TRANSIENT_REASONS:
                return "retry"
            raise

    def _wait_turn(self, stream: str, started: float, attempt: int) -> None:
        """Lost a race: let the winners finish. Full jitter spreads the losers out, so each round
        has a winner instead of the same crowd colliding again; past the timeout, give up."""
        waited = _time.monotonic() - started
        if waited >= self._contention_timeout:
            raise StreamContended(stream, waited, attempt)
        pause = random.uniform(0, min(_BACKOFF_CAP, _BACKOFF_BASE * 2 ** min(attempt, 16)))  # noqa: S311 jitter, not security
        _time.sleep(min(pause, self._contention_timeout - waited))

    def recorded_streams(self, key: str) -> list[AppendResult] | None:
        """What a keyed append wrote under ``key``, stream by stream, while its guard lives (30
        days); None if unknown, or if the key's events are not written (yet)."""
        guard = self._client.get_item(
            TableName=self.idempotency_table, Key={"key": {"S": key}}, ConsistentRead=True
        ).get("Item")
        if guard is None:
            return None
        plans = guard_plans(guard)
        if plans is not None and self._plan_state(plans) != "realized":
            return None
        return guard_results(guard)

    def recorded(self, key: str) -> AppendResult | None:
        """What an idempotency key appended (its first stream's part); None if unknown."""
        results = self.recorded_streams(key)
        return None if results is None else results[0]

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
            page = raw_items.call(self._client, "query", **kwargs)  # botocore's parse was most of a read
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

    def list_streams(self, category: str, limit: int = 50, token: str | None = None) -> MergedPage[StreamEntry]:
        """The category's streams, newest created first: a Query per bucket of the event table's
        sparse by-category index (only first events carry its key), asked at once and merged."""
        catalogue.check_category(category)

        def fetch(key: str, start: dict[str, Any] | None, count: int) -> tuple[list[Item], dict[str, Any] | None]:
            request: dict[str, Any] = {
                "TableName": self.events_table, "IndexName": stream_catalogue.INDEX,
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

    # ----------------------------------------------------------------- checkpoints and audit

    def seal(self, checkpoints: Sequence[Checkpoint]) -> dict[str, Exception]:
        """Write each checkpoint unless it is there already; the streams whose seal failed.

        PartiQL INSERTs, 25 to a BatchExecuteStatement (its limit): an INSERT fails on an existing
        key instead of overwriting it (DuplicateItem, which is success here: sealed before), and it
        is the only write the template lets any role make on the checkpoint table."""
        failed: dict[str, Exception] = {}
        statement = (f'INSERT INTO "{self.checkpoints_table}" VALUE '
                     "{'stream': ?, 'version': ?, 'hash': ?, 'event_id': ?}")
        for start in range(0, len(checkpoints), _STATEMENTS_PER_BATCH):
            chunk = checkpoints[start:start + _STATEMENTS_PER_BATCH]
            requests = [{"Statement": statement, "Parameters": list(checkpoint_item(c).values())} for c in chunk]
            try:
                responses = self._client.batch_execute_statement(Statements=requests)["Responses"]
            except ClientError as error:
                failed.update({c.stream: error for c in chunk})
                continue
            for checkpoint, response in zip(chunk, responses, strict=True):
                refused = response.get("Error")
                if refused is not None and refused.get("Code") != "DuplicateItem":
                    failed[checkpoint.stream] = RuntimeError(f"{refused.get('Code')}: {refused.get('Message')}")
        return failed

    def sealed_checkpoint(self, stream: str) -> Checkpoint | None:
        """The stream's highest sealed checkpoint (None before the projector sealed any)."""
        items = self._client.query(
            TableName=self.checkpoints_table, KeyConditionExpression="#s = :s",
            ExpressionAttributeNames={"#s": "stream"}, ExpressionAttributeValues={":s": {"S": stream}},
            ScanIndexForward=False, Limit=1, ConsistentRead=True,
        )["Items"]
        return from_checkpoint_item(items[0]) if items else None

    def sealed_checkpoints(self, segments: int = 4) -> dict[str, Checkpoint]:
        """Every stream's highest sealed checkpoint, by a parallel scan of the checkpoint table."""
        request = {"TableName": self.checkpoints_table, "ConsistentRead": True}
        return highest(from_checkpoint_item(item) for _, page in parallel_scan(self._client, request, segments)
                       for item in page or ())

    def recorded_head(self, stream: str) -> Witness | None:
        """The head releases before sealed checkpoints recorded for ``stream`` (no longer written)."""
        item = self._client.get_item(
            TableName=self.idempotency_table, Key={"key": {"S": HEAD_KEY_PREFIX + stream}}, ConsistentRead=True
        ).get("Item")
        return None if item is None else legacy_head(item)

    def recorded_heads(self, segments: int = 4) -> dict[str, Witness]:
        """Every stream's head as earlier releases recorded it, by a parallel scan of the idempotency table."""
        request = {
            "TableName": self.idempotency_table,
            "FilterExpression": "begins_with(#k, :p)",
            "ExpressionAttributeNames": {"#k": "key"},
            "ExpressionAttributeValues": {":p": {"S": HEAD_KEY_PREFIX}},
            "ConsistentRead": True,
        }
        heads: dict[str, Witness] = {}
        for _, page in parallel_scan(self._client, request, segments):
            for item in page or ():
                heads[item["stream"]["S"]] = legacy_head(item)
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
