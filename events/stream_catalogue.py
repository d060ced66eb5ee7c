"""The stream catalogue: which streams a category has, newest first, without a scan. Pure.

A stream's first event (version 1) carries one more attribute than the others: ``catalogue`` =
the stream's category with a bucket suffix (``sku#7``), written by ``events.appending.link`` in
the same put as the event (not in its hash: it is derived from the stream id). The event table's
``by-category`` index (template.yaml) is keyed on it and on the event's ``time``; every later event
lacks the attribute, so the index is sparse: one entry per stream, written once, when the stream
is created. "The sku streams, newest first" is then one Query per bucket, merged
(``events.sharding.merge_page``); the store runs the queries.

What it costs: one index write (a keys-only entry, 1 write unit) per *new stream*, nothing for an
append to an existing one, and ~20 bytes on each stream's first item (``dynafold cost`` counts it
by each event class's share of stream-creating events). Earlier designs that listed streams by
their last append had to move an index entry on every append (a delete and a put: 2 units).

Why sharded: creating streams of one category fast (a burst of new orders or deliveries) writes
the index under one key; a partition takes 1,000 write units a second, and when an index cannot
keep up DynamoDB throttles writes to the *table*. 16 buckets take 16x.

Order: by creation, so a stream appended to while someone pages keeps its place.
Streams created before the index existed carry no ``catalogue`` and are not listed (their events
are still found by type, time and correlation).
"""

from __future__ import annotations

from dataclasses import dataclass

from events.items import Item
from events.sharding import Key, ShardedKey

INDEX = "by-category"
CATALOGUE_ATTR, TIME_ATTR = "catalogue", "time"
# 16 buckets: raising it later is safe (reads fan out over every bucket below the count)
CATALOGUE = ShardedKey(index=INDEX, attribute=CATALOGUE_ATTR, sort_attribute=TIME_ATTR, buckets=16)


@dataclass(frozen=True)
class StreamEntry:
    """One stream as the catalogue lists it: its id and when its first event was appended."""

    stream: str
    created: str  # its first event's time, stored form


def catalogue_key(stream: str) -> str:
    """The index key a stream's first event carries: ``<category>#<bucket>``."""
    return CATALOGUE.value(stream.partition(":")[0], (stream,))


def category_keys(category: str) -> list[str]:
    return CATALOGUE.values(category)


def entry(item: Item) -> StreamEntry:
    """A first event's item (or its keys-only index projection) as a catalogue entry."""
    return StreamEntry(item["stream"]["S"], item[TIME_ATTR]["S"])


def order(item: Item) -> str:
    """What the merge orders by: the index's sort key (ties keep each bucket's own order)."""
    return str(item[TIME_ATTR]["S"])


def index_order(item: Item) -> tuple[str, str]:
    """A total order like the index's (time, then the table key): the in-memory log's index."""
    return item[TIME_ATTR]["S"], item["stream"]["S"]


def position(item: Item) -> Key:
    """The ExclusiveStartKey after ``item`` in the index: the table key and the index key."""
    return {"stream": item["stream"], "version": item["version"], CATALOGUE_ATTR: item[CATALOGUE_ATTR],
            TIME_ATTR: item[TIME_ATTR]}
