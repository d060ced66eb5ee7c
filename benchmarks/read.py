"""`python -m benchmarks read`: one 1,000-event stream read against the raw boto3 Query (issue 21 §2).

Goal: ``EventStore.read_stream`` at >= 1.0x the speed of the raw read.

The raw read is what anyone would write with boto3: a plain client (no handler of ours registered
on it), a paginated ``query`` of the stream's partition with ``ConsistentRead``, returning the
items as botocore parsed them. It decodes nothing; ``read_stream`` returns every event decoded
(``RecordedEvent`` with its data model validated, old types upcast), so the comparison favours
the baseline. The second baseline decodes the raw read's items into the same events, for scale.
"""

from __future__ import annotations

from typing import Any

from benchmarks.common import fresh, interleaved_medians, report
from events.envelope import NewEvent
from events.items import from_item
from events.store import EventStore
from processors.adapters.aws import dynamodb_client

EVENTS = 1_000
RUNS = 40
WARM_UP = 20
STREAM = "sku:READ"


def _raw_query(client: Any, table: str, stream: str) -> list[dict[str, Any]]:
    request: dict[str, Any] = {
        "TableName": table, "KeyConditionExpression": "#s = :s", "ExpressionAttributeNames": {"#s": "stream"},
        "ExpressionAttributeValues": {":s": {"S": stream}}, "ConsistentRead": True}
    items: list[dict[str, Any]] = []
    while True:
        page = client.query(**request)
        items.extend(page["Items"])
        if "LastEvaluatedKey" not in page:
            return items
        request["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def run(endpoint_url: str, events: int = EVENTS, runs: int = RUNS) -> dict[str, float]:
    bench = fresh(endpoint_url)
    store = EventStore.over(bench.client, bench.names)
    for first in range(0, events, 25):
        store.append(STREAM, [NewEvent("dynafold.inventory.stock_adjusted.v2",
                                       {"sku": "READ", "delta": i % 7 - 3, "reason": "order", "order_id": f"O{i}"})
                              for i in range(first, min(events, first + 25))])
    plain = dynamodb_client(endpoint_url, access_key=bench.access_key)  # nothing of ours registered on it
    table = bench.names.events

    def raw(_: int) -> None:
        _raw_query(plain, table, STREAM)

    def raw_decoded(_: int) -> None:
        [from_item(item) for item in _raw_query(plain, table, STREAM)]

    def ours(_: int) -> None:
        store.read_stream(STREAM)

    if len(store.read_stream(STREAM)) != events or len(_raw_query(plain, table, STREAM)) != events:
        raise RuntimeError("the two reads do not see the same stream")
    for i in range(WARM_UP):  # the engine's JVM compiles its hot paths over the first requests
        raw(i)
        ours(i)
    raw_s, decoded_s, ours_s = interleaved_medians([raw, raw_decoded, ours], [runs] * 3)
    result = {"raw_ms": raw_s * 1e3, "raw_decoded_ms": decoded_s * 1e3, "read_stream_ms": ours_s * 1e3,
              "read_vs_raw": raw_s / ours_s, "read_vs_raw_decoded": decoded_s / ours_s}
    report(f"read one {events:,}-event stream (DynamoDB Local, median)", [
        ("raw boto3 Query, paginated, ConsistentRead (items)", f"{result['raw_ms']:.1f} ms"),
        ("the same, decoded with from_item (events)", f"{result['raw_decoded_ms']:.1f} ms"),
        ("EventStore.read_stream (events)", f"{result['read_stream_ms']:.1f} ms"),
        ("speed / raw Query", f"{result['read_vs_raw']:.2f}x   (goal >= 1.0x)"),
        ("speed / raw Query decoded", f"{result['read_vs_raw_decoded']:.2f}x"),
    ])
    return result

