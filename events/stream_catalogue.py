"""The stream catalogue: which streams a category has, most recently appended first, without a scan.

Every append moves its stream's recorded head (``events.appending.head_item``, in the idempotency
table, in the append's own transaction); the head carries ``catalogue`` = the stream's category
sharded over ``BUCKETS`` (``events.sharding``) and ``head_time`` = its last event's time. The
table's ``by-category`` index (template.yaml) is keyed on those two, so "the sku streams, newest
first" is one Query per bucket, merged (``events.sharding.merge_page``). Pure: the store runs the
queries.

Why sharded: every append of every SKU writes the index entry of its head (the sort key moves:
an old entry deleted, a new one put), and a partition takes 1,000 write units a second; one
``sku`` key would throttle appends at a few hundred SKU changes a second. 16 buckets take 16x.

Order: by the last append, so a stream appended to while someone pages moves to the top (it is
shown on the first page when the list is opened again, not twice on the way down).
"""

from __future__ import annotations

from dataclasses import dataclass

from events.items import Item
from events.sharding import Key, bucket, shards

BUCKETS = 16  # changing it re-keys every head: the index is read over shards(category, BUCKETS)
INDEX = "by-category"
CATALOGUE_ATTR, TIME_ATTR = "catalogue", "head_time"


@dataclass(frozen=True)
class StreamEntry:
    """One stream as the catalogue lists it."""

    stream: str
    version: int  # its last event's version (= how many events it has)
    last_time: str  # its last event's time, stored form


def catalogue_key(stream: str) -> str:
    category = stream.partition(":")[0]
    return f"{category}#{bucket(stream, BUCKETS):02d}"


def category_keys(category: str) -> list[str]:
    return shards(category, BUCKETS)


def entry(item: Item) -> StreamEntry:
    """A head item (or its index projection) as a catalogue entry."""
    return StreamEntry(item["stream"]["S"], int(item["head_version"]["N"]), item[TIME_ATTR]["S"])


def order(item: Item) -> str:
    """What the merge orders by: the index's sort key (ties keep each bucket's own order)."""
    return str(item[TIME_ATTR]["S"])


def index_order(item: Item) -> tuple[str, str]:
    """A total order like the index's (time, then the table key): the in-memory log's index."""
    return item[TIME_ATTR]["S"], item["key"]["S"]


def position(item: Item) -> Key:
    """The ExclusiveStartKey after ``item`` in the index: the table key and the index key."""
    return {"key": item["key"], CATALOGUE_ATTR: item[CATALOGUE_ATTR], TIME_ATTR: item[TIME_ATTR]}
