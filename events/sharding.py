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
"""

from __future__ import annotations

import copy
import heapq
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

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
