"""Appends against the engine's raw writes of the same items, and the write units each costs (issue 21 §1).

Goals: a one-event append's median <= 1.05x a raw conditional PutItem of the same item; one 1 KB
event without a key 1 write unit in the base table, with a key <= 2; a 100-event atomic append one
transaction, >= 1.0x the same raw TransactWriteItems. Each append is timed in a pair with its raw
write, the order alternating, and the ratio is the median of the pairs' ratios: the machine's load
drifts, and a pair sees one load.

Write units come from ``ReturnConsumedCapacity=INDEXES`` (the base table and each index apart).
DynamoDB Local reports 2 units for a transaction whatever it holds, so a transaction is counted by
DynamoDB's documented rule instead: two units per item per KB
(https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/transaction-apis.html#transaction-capacity-handling).
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
from collections import Counter
from typing import Any

from benchmarks.common import engine, fresh, paired, report
from events.envelope import NewEvent
from events.items import Item, item_size
from events.store import NO_STREAM, EventStore

RUNS = 300
BATCH = 100
KB = 1024


class Metered:
    """A DynamoDB client that asks every write for its consumed capacity and adds it up, by table
    and index (``units``), and counts the requests by operation (``requests``)."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.units: Counter[str] = Counter()
        self.requests: Counter[str] = Counter()

    def put_item(self, **kwargs: Any) -> Any:
        self.requests["PutItem"] += 1
        response = self._client.put_item(ReturnConsumedCapacity="INDEXES", **kwargs)
        self._add(response.get("ConsumedCapacity"))
        return response

    def transact_write_items(self, TransactItems: list[dict[str, Any]], **kwargs: Any) -> Any:  # noqa: N803 boto3's name
        self.requests["TransactWriteItems"] += 1
        response = self._client.transact_write_items(TransactItems=TransactItems, **kwargs)
        for entry in TransactItems:  # the documented rule, not DynamoDB Local's flat 2
            put = entry["Put"]
            self.units[put["TableName"]] += 2 * math.ceil(item_size(put["Item"]) / KB)
        return response

    def _add(self, consumed: dict[str, Any] | None) -> None:
        if not consumed:
            return
        table = consumed["TableName"]
        self.units[table] += consumed.get("Table", {}).get("CapacityUnits", consumed.get("CapacityUnits", 0))
        for index, used in (consumed.get("GlobalSecondaryIndexes") or {}).items():
            self.units[f"{table}/{index}"] += used["CapacityUnits"]

    def measure(self) -> tuple[Counter[str], Counter[str]]:
        """The units and requests since the last call."""
        units, requests = self.units, self.requests
        self.units, self.requests = Counter(), Counter()
        return units, requests

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


def message(n: int, padding: int) -> NewEvent:
    """A message-received event whose stored item is about 1 KB (``padding`` characters of payload)."""
    return NewEvent("dynafold.delivery.message_received.v1",
                    {"sender_id": "bench", "message_id": f"m{n}", "target_url": "https://example.com/hook",
                     "payload": {"text": "x" * padding}})


def one_kb_padding(store: EventStore) -> int:
    """The payload length that makes a stored message item as large as fits in 1 KB."""
    store.append("delivery:bench:probe", [message(0, 0)], NO_STREAM)
    [probe] = store.read_items("delivery:bench:probe")
    return KB - item_size(probe) - 8  # room for longer ids and versions than the probe's


class _NoEngine:
    """A client that accepts every write at once: what an append costs in Python alone."""

    def put_item(self, **kwargs: Any) -> dict[str, Any]:
        return {}

    def transact_write_items(self, **kwargs: Any) -> dict[str, Any]:
        return {}


def python_cost(padding: int, runs: int) -> tuple[float, float]:
    """Median seconds of Python in a one-event append and in a 100-event one (validation, ids,
    the chain's hashes, size checks; no engine)."""
    store = EventStore(_NoEngine(), "events", "idempotency", "checkpoints")
    store.append("delivery:python:one", [message(0, padding)], NO_STREAM)
    one = [_timed(lambda i=i: store.append("delivery:python:one", [message(i, padding)], i)) for i in range(1, runs)]
    batch = [_timed(lambda i=i: store.append(f"delivery:python:tx{i}", [message(j, padding) for j in range(BATCH)],
                                             NO_STREAM)) for i in range(max(runs // 10, 10))]
    return statistics.median(one), statistics.median(batch)


def _timed(operation: Any) -> float:
    started = time.perf_counter()
    operation()
    return time.perf_counter() - started


def run(endpoint_url: str, runs: int = RUNS) -> dict[str, float]:
    bench = fresh(endpoint_url)
    metered = Metered(bench.client)
    counted = EventStore.over(metered, bench.names)  # for the write units only: timing goes unmetered
    store = EventStore.over(bench.client, bench.names)
    raw_client, table = bench.client, bench.names.events
    padding = one_kb_padding(store)
    condition = {"ConditionExpression": "attribute_not_exists(#v)", "ExpressionAttributeNames": {"#v": "version"}}

    # The raw side writes the very items the store wrote, under keys of its own.
    store.append("delivery:bench:shape", [message(n, padding) for n in range(BATCH)], NO_STREAM)
    shapes = list(store.read_items("delivery:bench:shape"))
    sizes = sorted({item_size(item) for item in shapes})

    def keyed(item: Item, stream: str, version: int) -> Item:
        """``item`` under another key, with an id (and correlation id) of its own, as each append's
        events have: every index entry is a new one on both sides."""
        unique = f"{stream}/{version}"
        return {**item, "stream": {"S": stream}, "version": {"N": str(version)}, "id": {"S": unique},
                "correlation_id": {"S": unique}}

    def raw_put(i: int) -> None:
        raw_client.put_item(TableName=table, Item=keyed(shapes[0], "delivery:raw:one", i + 1), **condition)

    def raw_transaction(i: int) -> None:
        raw_client.transact_write_items(TransactItems=[
            {"Put": {"TableName": table, "Item": keyed(item, f"delivery:raw:tx{i}", j + 1), **condition}}
            for j, item in enumerate(shapes)])

    def append_one(i: int, log: EventStore = store) -> None:
        log.append("delivery:bench:one", [message(i, padding)], i)

    def append_keyed(i: int, log: EventStore = store) -> None:
        log.append("delivery:bench:keyed", [message(i, padding)], i, idempotency_key=f"bench-{i}")

    def append_batch(i: int, log: EventStore = store) -> None:
        log.append(f"delivery:bench:tx{i}", [message(j, padding) for j in range(BATCH)], NO_STREAM)

    # Write units and requests, one operation at a time (not timed): the first of each series.
    append_one(0, counted)
    one_units, one_requests = metered.measure()
    append_keyed(0, counted)
    keyed_units, keyed_requests = metered.measure()
    append_batch(0, counted)
    batch_units, batch_requests = metered.measure()

    # The engine's JVM needs a few hundred requests before its timings settle.
    for i in range(200):
        raw_put(10_000_000 + i)
    batches = max(runs // 10, 10)
    # Each append is timed next to the raw write it is compared with, in alternating order.
    one = paired(raw_put, lambda i: append_one(i + 1), runs)
    keyed_one = paired(lambda i: raw_put(1_000_000 + i), lambda i: append_keyed(i + 1), runs)
    batch = paired(lambda i: raw_transaction(i + 1), lambda i: append_batch(i + 1), batches)
    python_one, python_batch = python_cost(padding, runs)
    events, guards = bench.names.events, bench.names.idempotency
    result = {
        "raw_put_ms": one.baseline * 1e3,
        "append_ms": one.measured * 1e3,
        "append_vs_raw": one.ratio,
        "keyed_append_ms": keyed_one.measured * 1e3,
        "keyed_vs_raw": keyed_one.ratio,
        "batch_events_per_s": BATCH / batch.measured,
        "raw_batch_events_per_s": BATCH / batch.baseline,
        "batch_vs_raw": 1 / batch.ratio,
        "python_one_us": python_one * 1e6,
        "python_batch_ms": python_batch * 1e3,
        "one_base_units": one_units[events],
        "one_index_units": sum(v for k, v in one_units.items() if k.startswith(events + "/")),
        "keyed_base_units": keyed_units[events] + keyed_units[guards],
        "batch_base_units": batch_units[events],
    }
    index_note = f"+ {result['one_index_units']:g} in the event indexes"
    report(f"append (DynamoDB Local, median; events of {sizes[0]}-{sizes[-1]} bytes)", [
        ("raw conditional put_item", f"{result['raw_put_ms']:.2f} ms"),
        ("EventStore.append, 1 event", f"{result['append_ms']:.2f} ms"),
        ("append / raw put (median of pairs)", f"{result['append_vs_raw']:.2f}x   (goal <= 1.05x)"),
        ("EventStore.append, 1 event with a key", f"{result['keyed_append_ms']:.2f} ms "
                                                  f"({result['keyed_vs_raw']:.2f}x raw put: guard, then event)"),
        (f"one {BATCH}-event append", f"{result['batch_events_per_s']:.0f} events/s"),
        (f"raw {BATCH}-item transact_write_items", f"{result['raw_batch_events_per_s']:.0f} events/s"),
        ("raw transaction / append (median of pairs)", f"{result['batch_vs_raw']:.2f}x   (goal >= 1.0x)"),
        ("Python alone (no engine): 1 event / 100 events", f"{result['python_one_us']:.0f} us / "
                                                            f"{result['python_batch_ms']:.1f} ms"),
        ("write units, 1 event, no key", f"{result['one_base_units']:g} base table {index_note}   (goal 1; "
                                         f"requests {dict(one_requests)})"),
        ("write units, 1 event, keyed", f"{result['keyed_base_units']:g} base tables (event + guard)   (goal <= 2; "
                                        f"requests {dict(keyed_requests)})"),
        (f"write units, {BATCH} events", f"{result['batch_base_units']:g} base table, by the transaction rule "
                                         f"(requests {dict(batch_requests)})"),
    ])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--endpoint-url")
    parser.add_argument("--runs", type=int, default=RUNS)
    args = parser.parse_args()
    with engine(args.endpoint_url) as url:
        run(url, args.runs)


if __name__ == "__main__":
    main()
