"""BulkWriter, the rebuild's write path, against a fake BatchWriteItem: every row written exactly
once, unprocessed items retried with backoff and never lost, a failure raised rather than hung.

The fake answers as the API does: ``UnprocessedItems`` holds the requests not written, in the
request's own shape (https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_BatchWriteItem.html).
"""

from __future__ import annotations

import threading
from decimal import Rounded
from typing import Any

import pytest
from boto3.dynamodb.types import TypeSerializer
from hypothesis import given
from hypothesis import strategies as st

from projections.view_store import _for_dynamodb, to_attribute, to_item
from projections.view_tables import BATCH_WRITE_LIMIT, MAX_STALLED_ATTEMPTS, BulkWriter, UnwrittenItems


class FakeDynamo:
    """Writes what it is sent, except that ``refuse(n)`` leaves the last ``n`` requests of a call
    unprocessed, for as many calls as it answers."""

    def __init__(self, refuse: Any = lambda call: 0, fail_on_call: int | None = None) -> None:
        self.tables: dict[str, list[dict[str, Any]]] = {}
        self.calls: list[int] = []  # items per call
        self._refuse, self._fail_on_call = refuse, fail_on_call
        self._lock = threading.Lock()

    def batch_write_item(self, RequestItems: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
        with self._lock:
            call = len(self.calls)
            self.calls.append(sum(len(r) for r in RequestItems.values()))
            if call == self._fail_on_call:
                raise RuntimeError("ValidationException")
            flat = [(table, request) for table, requests in RequestItems.items() for request in requests]
            refused = min(self._refuse(call), len(flat))
            for table, request in flat[:len(flat) - refused]:
                self.tables.setdefault(table, []).append(request["PutRequest"]["Item"])
            unprocessed: dict[str, list[dict[str, Any]]] = {}
            for table, request in flat[len(flat) - refused:]:
                unprocessed.setdefault(table, []).append(request)
            return {"UnprocessedItems": unprocessed}


def rows(n: int) -> list[tuple[str, dict[str, Any]]]:
    return [(f"t{i % 3}", {"id": f"r{i}", "n": i, "tags": ["a", {"b": i}], "ok": i % 2 == 0}) for i in range(n)]


def written(fake: FakeDynamo) -> dict[str, list[dict[str, Any]]]:
    return {table: sorted(items, key=lambda item: item["id"]["S"]) for table, items in sorted(fake.tables.items())}


def expected(pairs: list[tuple[str, dict[str, Any]]]) -> dict[str, list[dict[str, Any]]]:
    by_table: dict[str, list[dict[str, Any]]] = {}
    for table, row in pairs:
        by_table.setdefault(table, []).append(to_item(row))
    return {table: sorted(items, key=lambda item: item["id"]["S"]) for table, items in sorted(by_table.items())}


@pytest.mark.parametrize("workers", [1, 4])
def test_every_row_is_written_exactly_once_in_full_batches(workers):
    fake, pairs = FakeDynamo(), rows(103)
    with BulkWriter(fake, workers=workers) as writer:
        for table, row in pairs:
            writer.put(table, row)
    assert written(fake) == expected(pairs)
    assert writer.written == 103
    assert sorted(fake.calls) == [3] + [BATCH_WRITE_LIMIT] * 4  # 25-item batches, one remainder


def test_unprocessed_items_are_sent_again_with_growing_backoff_until_written():
    # Every first attempt of a batch has 10 items refused, the retry 4 more, then all go through.
    refusals = {0: 10, 1: 4}
    fake, pairs, slept = FakeDynamo(lambda call: refusals.get(call, 0)), rows(25), []
    with BulkWriter(fake, workers=1, sleep=slept.append) as writer:
        for table, row in pairs:
            writer.put(table, row)
    assert written(fake) == expected(pairs)
    assert fake.calls == [25, 10, 4]  # only what was not written is sent again
    assert len(slept) == 2 and 0 < slept[0] <= 0.1 < slept[1] * 2  # backoff with jitter, doubling


def test_a_table_that_keeps_refusing_everything_raises_instead_of_hanging():
    fake, slept = FakeDynamo(lambda call: 0 if call == 0 else 25), []
    writer = BulkWriter(fake, workers=1, sleep=slept.append)
    for table, row in rows(50):
        writer.put(table, row)
    with pytest.raises(UnwrittenItems, match="25 items still unprocessed"):
        writer.flush()
    writer.close()
    assert len(slept) == MAX_STALLED_ATTEMPTS - 1
    assert writer.written == 25  # the first batch; the second is not counted as written


def test_slow_progress_is_not_a_stall():
    # One item written per attempt: 24 retries, more than the stall limit, and nothing lost.
    fake = FakeDynamo(lambda call: max(0, 25 - call))
    with BulkWriter(fake, workers=1, sleep=lambda seconds: None) as writer:
        for table, row in rows(25):
            writer.put(table, row)
    assert written(fake) == expected(rows(25))
    assert len(fake.calls) > MAX_STALLED_ATTEMPTS


def test_a_failed_batch_stops_the_producer_at_its_next_batch():
    fake = FakeDynamo(fail_on_call=0)
    writer = BulkWriter(fake, workers=1)
    with pytest.raises(RuntimeError, match="ValidationException"):
        for table, row in rows(25 * 40):
            writer.put(table, row)
    writer.close()
    assert len(fake.calls) < 40


def test_a_failure_surfaces_on_leaving_the_block():
    fake = FakeDynamo(fail_on_call=1)
    with pytest.raises(RuntimeError, match="ValidationException"), BulkWriter(fake, workers=2) as writer:
        for table, row in rows(50):
            writer.put(table, row)


_values = st.recursive(
    st.none() | st.booleans() | st.text(max_size=5) | st.integers(min_value=-10**40, max_value=10**40)
    | st.floats(allow_nan=False, allow_infinity=False, width=32) | st.decimals(places=2, allow_nan=False, allow_infinity=False),
    lambda inner: st.lists(inner, max_size=3) | st.tuples(inner) | st.dictionaries(st.text(max_size=3), inner, max_size=3),
    max_leaves=8,
)


@given(_values)
def test_the_fast_serializer_makes_what_boto3_makes(value):
    try:
        reference = TypeSerializer().serialize(_for_dynamodb(value))
    except Exception as error:  # noqa: BLE001 - whatever boto3 refuses, the fast path refuses alike
        with pytest.raises(type(error)):
            to_attribute(value)
        return
    assert to_attribute(value) == reference


def test_at_dynamodbs_precision_the_fast_path_hands_over_to_boto3():
    assert to_attribute(10**38 - 1) == TypeSerializer().serialize(10**38 - 1) == {"N": "9" * 38}
    with pytest.raises(Rounded):  # 39 digits: boto3 refuses it, so the fast path must not write it
        to_attribute(10**38)
