"""Event store append cost against the engine's raw conditional writes (issue: event store).

Goals: single append latency <= 1.2x a raw conditional put_item; one 25-event append moves
>= 5x the events/s of 25 single appends.
"""

from __future__ import annotations

import argparse

from benchmarks.common import engine, fresh, interleaved_medians, report
from events.envelope import NewEvent
from events.store import EventStore

RUNS = 300


def _event(sku: str, i: int) -> NewEvent:
    return NewEvent("dynafold.inventory.stock_adjusted.v2", {"sku": sku, "delta": i % 7 - 3, "reason": "order"})


def run(endpoint_url: str, runs: int = RUNS) -> dict[str, float]:
    bench = fresh(endpoint_url)
    store = EventStore.over(bench.client, bench.names)
    client, table = bench.client, bench.names.events
    payload = '{"delta":1,"order_id":null,"reason":"order","sku":"RAW","tx_id":null}'

    guard = {"ConditionExpression": "attribute_not_exists(#v)", "ExpressionAttributeNames": {"#v": "version"}}

    def raw_item(stream: str, version: int) -> dict:
        return {"stream": {"S": stream}, "version": {"N": str(version)}, "id": {"S": f"{stream}-{version}"},
                "type": {"S": "dynafold.inventory.stock_adjusted.v2"}, "source": {"S": "urn:bench"},
                "time": {"S": "2026-01-01T00:00:00.000000Z"}, "data": {"S": payload},
                "correlation_id": {"S": f"raw-{version}"}, "prev_hash": {"S": "0" * 64}, "hash": {"S": "0" * 64}}

    def raw_put(i: int) -> None:
        client.put_item(TableName=table, Item=raw_item("sku:RAW", i + 1), **guard)

    def raw_transaction_25(i: int) -> None:  # the engine's ceiling for any 25-event transactional append
        client.transact_write_items(TransactItems=[
            {"Put": {"TableName": table, "Item": raw_item(f"sku:RAWTX{i}", j + 1), **guard}} for j in range(25)])

    def raw_puts_25(i: int) -> None:
        for j in range(25):
            client.put_item(TableName=table, Item=raw_item(f"sku:RAWPUTS{i}", j + 1), **guard)

    def single_append(i: int) -> None:
        store.append("sku:ONE", [_event("ONE", i)], expected_version=i)

    batches = max(runs // 15, 8)

    def batch_append(i: int) -> None:
        store.append(f"sku:BATCH{i}", [_event(f"BATCH{i}", j) for j in range(25)], expected_version=0)

    def singles_25(i: int) -> None:
        for j in range(25):
            store.append(f"sku:SINGLE{i}", [_event(f"SINGLE{i}", j)], expected_version=j)

    # The engine's JVM needs a few hundred requests before its timings settle.
    for i in range(200):
        raw_put(10_000_000 + i)
    for i in range(4):
        store.append(f"sku:WARM{i}", [_event("WARM", j) for j in range(25)], expected_version=0)
    # Alternating rounds, so engine warm-up and drift weigh on every operation alike.
    raw, single, batch, singles, raw_tx, raw_puts = interleaved_medians(
        [raw_put, single_append, batch_append, singles_25, raw_transaction_25, raw_puts_25],
        [runs, runs, batches, batches, batches, batches])
    result = {
        "raw_put_ms": raw * 1e3,
        "append_ms": single * 1e3,
        "append_vs_raw": single / raw,
        "batch_events_per_s": 25 / batch,
        "single_events_per_s": 25 / singles,
        "batch_speedup": singles / batch,
        "engine_transaction_speedup": raw_puts / raw_tx,
    }
    report("append (DynamoDB Local, median)", [
        ("raw conditional put_item", f"{result['raw_put_ms']:.2f} ms"),
        ("EventStore.append (1 event)", f"{result['append_ms']:.2f} ms"),
        ("append / raw put", f"{result['append_vs_raw']:.2f}x   (goal <= 1.2x)"),
        ("one 25-event append", f"{result['batch_events_per_s']:.0f} events/s"),
        ("25 single appends", f"{result['single_events_per_s']:.0f} events/s"),
        ("batched / single", f"{result['batch_speedup']:.1f}x   (goal >= 5x)"),
        ("engine ceiling: raw 25-item transaction / 25 raw puts", f"{result['engine_transaction_speedup']:.1f}x"),
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
