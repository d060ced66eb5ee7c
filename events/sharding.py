"""Write-sharded index keys: one low-cardinality key value spread over a fixed number of buckets.

DynamoDB serves one partition key value at most 1,000 write units and 3,000 read units a second
(https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/warm-throughput-scenarios.html:
"each individual partition is limited to 1000 write units per second and 3000 read units per
second"), for a global secondary index as for a table, and an index throttled for writes throttles
the writes of its base table
(https://repost.aws/knowledge-center/dynamodb-gsi-throttling-table: "When a GSI has insufficient
write capacity, throttling results in write operations that fail on the base table"). So an index
whose partition key takes a handful of values (an event type, a delivery status, ``UNREAD``) stores
``<value>#<bucket>`` instead, and a question about one value asks every bucket and merges the
answers in the index's sort order.

The bucket is derived from the item's own primary key (CRC-32, the same in every process), never
drawn at random: an item keeps its bucket when its value changes (a delivery moving from PENDING to
RETRY_SCHEDULED stays in bucket 3), writing the same row twice writes the same key, and anyone holding
the item can say which bucket it is in. A declaration is all an index needs: ``ShardedKey`` names the
index, its stored attribute, its sort attribute and the bucket count; the row type derives the
attribute with ``value()``, the questions read with ``query()``; ``dynafold cost`` divides the
hottest value's writes by ``buckets`` (processors/operations/partitions.py).

The bucket count is a setting of the declaration. Raising it is safe for readers (an item written
under the old count sits in a bucket below it, and every bucket below the new count is read);
lowering it hides the items in the dropped buckets, so a view table is rebuilt after it, and the
event table's count (its items are immutable) only ever grows.

A question asked one page at a time (the console's lists, newest first) uses ``merge_page``: each
bucket is asked for a page after its own cursor, the answers are merged, and the token remembers
where each bucket stands, so nothing is skipped or shown twice.
"""

from __future__ import annotations

import base64
import binascii
import copy
import heapq
import json
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from events.errors import DynafoldError

SEPARATOR = "#"
_KEY_JOIN = "\x1f"  # between the parts of a composite primary key: never inside a key part we write
MAX_BUCKETS = 1000  # a question reads every bucket: more would make one read a thousand queries


@dataclass(frozen=True)
class ShardedKey:
    """How one index's partition key is sharded.

    ``index`` and ``attribute`` name the GSI and its partition key attribute in template.yaml;
    ``sort_attribute`` its sort key (the order answers are merged in; None: no order). ``legacy``:
    items written before the key was sharded hold the bare value (``UNREAD``), and the questions
    read that value too, so a deployed table keeps answering before its family is rebuilt.
    """

    index: str
    attribute: str
    sort_attribute: str | None
    buckets: int
    legacy: bool = False

    def __post_init__(self) -> None:
        if not 1 <= self.buckets <= MAX_BUCKETS:
            raise ValueError(f"{self.index}: buckets must be 1..{MAX_BUCKETS}, not {self.buckets}")

    def bucket(self, item_key: Sequence[str]) -> int:
        """The bucket of the item whose primary key values are ``item_key`` (partition, then sort)."""
        return zlib.crc32(_KEY_JOIN.join(item_key).encode("utf-8")) % self.buckets

    def value(self, value: str, item_key: Sequence[str]) -> str:
        """What the item stores in ``attribute``: ``value`` in the item's bucket."""
        return f"{value}{SEPARATOR}{self.bucket(item_key)}"

    def values(self, value: str) -> list[str]:
        """Every stored value a question about ``value`` reads: each bucket, then the legacy bare value."""
        stored = [f"{value}{SEPARATOR}{bucket}" for bucket in range(self.buckets)]
        return [*stored, value] if self.legacy else stored

    def requests(self, value: str, request: Mapping[str, Any], placeholder: str = ":k") -> list[dict[str, Any]]:
        """``request`` (a Query whose KeyConditionExpression compares the partition key with
        ``placeholder``) once per stored value of ``value``, on this index."""
        made = []
        for stored in self.values(value):
            one = copy.deepcopy(dict(request))
            one["IndexName"] = self.index
            one.setdefault("ExpressionAttributeValues", {})[placeholder] = {"S": stored}
            made.append(one)
        return made

    def query(self, run: Callable[[dict[str, Any]], Iterator[Mapping[str, Any]]], value: str,
              request: Mapping[str, Any], *, newest_first: bool = False,
              placeholder: str = ":k") -> Iterator[Any]:
        """Every row ``run`` answers for ``value`` across the buckets, merged in the index's sort
        order (each bucket's answer already is: DynamoDB returns a partition in sort key order)."""
        answers = []
        for one in self.requests(value, request, placeholder):
            one["ScanIndexForward"] = not newest_first
            answers.append(run(one))
        if self.sort_attribute is None:
            return (row for answer in answers for row in answer)
        attribute = self.sort_attribute
        return heapq.merge(*answers, key=lambda row: _sortable(row.get(attribute)), reverse=newest_first)


def _sortable(value: Any) -> Any:
    """A sort key value as the merge compares it: low-level ``{"S": ...}`` or a plain value."""
    if isinstance(value, Mapping):
        [(kind, text)] = value.items()
        return int(text) if kind == "N" else text
    return "" if value is None else value


def bare_value(stored: str) -> str:
    """``RETRY_SCHEDULED#3`` -> ``RETRY_SCHEDULED``; a legacy bare value is returned as it is."""
    head, separator, bucket = stored.rpartition(SEPARATOR)
    return head if separator and bucket.isdigit() else stored


# ----------------------------------------------------------------------------- paged fan-out

T = TypeVar("T")
Key = dict[str, Any]  # a DynamoDB key in attribute-value form: {"name": {"S": "..."}}
Fetch = Callable[[str, Key | None, int], tuple[list[T], Key | None]]  # (items, LastEvaluatedKey)
_DONE = "done"
_MAX_KEY_ATTRIBUTES = 4  # table key (1-2) + index key (1-2)


class InvalidShardToken(DynafoldError, ValueError):
    """A continuation token that this fan-out did not write (forged, damaged or for other buckets)."""


@dataclass(frozen=True)
class MergedPage(Generic[T]):
    items: list[T]
    next_token: str | None  # None: every bucket is exhausted


def merge_page(fetch: Fetch[T], keys: Sequence[str], limit: int, token: str | None, *,
               order: Callable[[T], Any], position: Callable[[T], Key],
               run: Callable[[Callable[[str], tuple[list[T], Key | None]], Iterable[str]],
                             Iterable[tuple[list[T], Key | None]]] = map) -> MergedPage[T]:
    """The next ``limit`` items over every bucket, greatest ``order`` first.

    Each unfinished bucket is asked for up to ``limit`` items after its cursor; the candidates are
    merged and the first ``limit`` shown. A bucket's cursor moves only past the items shown (which
    are a prefix of what it returned, since each bucket answers in descending order), so what was
    fetched and not shown is fetched again for the next page: nothing is skipped or shown twice in
    an index that does not change meanwhile. ``run`` is how the buckets are asked (``map``, or an
    executor's map to ask them at once).
    """
    cursors = _decode(token, keys)
    pending = [key for key in keys if cursors[key] != _DONE]

    def ask(key: str) -> tuple[list[T], Key | None]:
        start = cursors[key]
        return fetch(key, start if isinstance(start, dict) else None, limit)

    answers = dict(zip(pending, run(ask, pending), strict=True))
    candidates = [(order(item), n, key, item) for key, (items, _) in answers.items() for n, item in enumerate(items)]
    candidates.sort(key=lambda c: (c[0], -c[1]), reverse=True)  # ties: keep each bucket's own order
    shown = candidates[:limit]
    taken: dict[str, int] = {}
    for _, n, key, _item in shown:
        taken[key] = max(taken.get(key, -1), n)
    for key, (items, last) in answers.items():
        used = taken.get(key, -1) + 1
        if used == len(items) and last is None:
            cursors[key] = _DONE  # this bucket has nothing left
        elif used:
            cursors[key] = position(items[used - 1])
    finished = all(value == _DONE for value in cursors.values())
    return MergedPage([item for *_, item in shown], None if finished else _encode(cursors, keys))


def _encode(cursors: Mapping[str, Key | str | None], keys: Sequence[str]) -> str:
    text = json.dumps([cursors[key] for key in keys], sort_keys=True, separators=(",", ":"))
    return base64.urlsafe_b64encode(text.encode("utf-8")).decode("ascii")


def _decode(token: str | None, keys: Sequence[str]) -> dict[str, Key | str | None]:
    if not token:
        return dict.fromkeys(keys)
    try:
        values = json.loads(base64.urlsafe_b64decode(token.encode("ascii")))
    except (binascii.Error, ValueError, UnicodeError, RecursionError):
        values = None
    if not isinstance(values, list) or len(values) != len(keys) or not all(map(_valid_cursor, values)):
        raise InvalidShardToken(f"invalid continuation token {token[:80]!r}")
    return dict(zip(keys, values, strict=True))


def _valid_cursor(value: Any) -> bool:
    if value is None or value == _DONE:
        return True
    return (isinstance(value, dict) and 0 < len(value) <= _MAX_KEY_ATTRIBUTES
            and all(isinstance(v, dict) and len(v) == 1 and next(iter(v)) in ("S", "N")
                    and isinstance(next(iter(v.values())), str) and len(next(iter(v.values()))) <= 2048
                    for v in value.values()))
