"""Write-sharded index keys (events/sharding.py): where an item goes, what a question asks, and how the
answers of the buckets come back in the index's order."""

from __future__ import annotations

import zlib

import pytest

from events.sharding import ShardedKey, bare_value

KEY = ShardedKey("by-status", "status_shard", "due_at", buckets=4)


def test_an_items_bucket_is_its_keys_crc32_the_same_in_every_process():
    # CRC-32 over the key parts joined by U+001F; never Python's per-process salted hash()
    assert KEY.bucket(("s1:m1",)) == zlib.crc32(b"s1:m1") % 4
    assert KEY.bucket(("sku:A", "3")) == zlib.crc32(b"sku:A\x1f3") % 4
    assert KEY.value("PENDING", ("s1:m1",)) == f"PENDING#{zlib.crc32(b's1:m1') % 4}"
    # a delivery keeps its bucket whatever its status
    assert {KEY.value(status, ("s1:m1",)).rsplit("#")[1] for status in ("PENDING", "SUCCESS")} == {
        str(KEY.bucket(("s1:m1",)))}


def test_many_items_spread_over_every_bucket():
    counts = [0] * 4
    for n in range(4000):
        counts[KEY.bucket((f"sender:{n}",))] += 1
    assert min(counts) > 900  # each about a quarter


def test_a_question_asks_every_bucket_and_the_legacy_value_where_declared():
    assert KEY.values("PENDING") == ["PENDING#0", "PENDING#1", "PENDING#2", "PENDING#3"]
    legacy = ShardedKey("by-unread", "unread", "time", buckets=2, legacy=True)
    assert legacy.values("UNREAD") == ["UNREAD#0", "UNREAD#1", "UNREAD"]
    base = {"KeyConditionExpression": "#k = :k AND #d < :d", "ExpressionAttributeNames": {"#k": "status_shard"},
            "ExpressionAttributeValues": {":k": {"S": "PENDING"}, ":d": {"S": "t9"}}}
    requests = KEY.requests("PENDING", base)
    assert [r["ExpressionAttributeValues"][":k"]["S"] for r in requests] == KEY.values("PENDING")
    assert all(r["IndexName"] == "by-status" and r["ExpressionAttributeValues"][":d"] == {"S": "t9"} for r in requests)
    assert base["ExpressionAttributeValues"][":k"] == {"S": "PENDING"}  # the caller's request is not changed


@pytest.mark.parametrize("newest_first", [False, True])
def test_the_buckets_answers_merge_in_the_indexs_order(newest_first):
    stored = {f"PENDING#{b}": sorted([f"t{b}{n}" for n in range(3)] + [f"t{n}{b}" for n in range(3)])
              for b in range(4)}
    asked = []

    def run(request):
        asked.append(request)
        value = request["ExpressionAttributeValues"][":k"]["S"]
        times = stored[value][::-1] if not request["ScanIndexForward"] else stored[value]
        return iter({"due_at": time, "bucket": value} for time in times)

    found = [row["due_at"] for row in KEY.query(run, "PENDING", {"KeyConditionExpression": "#k = :k"},
                                                newest_first=newest_first)]
    assert found == sorted((t for times in stored.values() for t in times), reverse=newest_first)
    assert len(asked) == 4 and all(r["ScanIndexForward"] is not newest_first for r in asked)


def test_low_level_sort_values_merge_too_and_bare_values_come_back():
    numbers = ShardedKey("by-n", "n_shard", "n", buckets=2)
    answers = {"X#0": [{"n": {"N": "2"}}, {"n": {"N": "10"}}], "X#1": [{"n": {"N": "3"}}]}
    merged = numbers.query(lambda r: iter(answers[r["ExpressionAttributeValues"][":k"]["S"]]), "X", {})
    assert [row["n"]["N"] for row in merged] == ["2", "3", "10"]  # as numbers, not as text
    assert (bare_value("RETRY_SCHEDULED#3"), bare_value("PENDING"), bare_value("team#a")) == (
        "RETRY_SCHEDULED", "PENDING", "team#a")


@pytest.mark.parametrize("buckets", [0, 1001])
def test_a_bucket_count_out_of_range_is_refused(buckets):
    with pytest.raises(ValueError, match=r"buckets must be 1\.\.1000"):
        ShardedKey("i", "a", None, buckets=buckets)
