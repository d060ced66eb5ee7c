"""Write-sharded index keys (events/sharding.py): where an item goes, what a question asks, and how the
answers of the buckets come back in the index's order."""

from __future__ import annotations

import random
import zlib

import pytest

from events.sharding import InvalidShardToken, Key, ShardedKey, bare_value, merge_page

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


# ----------------------------------------------------------------------------- paged fan-out (merge_page)

def _index(seed: int, buckets: int, count: int) -> dict[str, list[dict[str, str]]]:
    """Per bucket, its items in the index's order (time descending; equal times in any order)."""
    rng = random.Random(seed)
    items = [{"id": f"i{n}", "time": f"{rng.randrange(8):02d}"} for n in range(count)]  # many ties
    key = ShardedKey("by-c", "c_shard", "time", buckets=buckets)
    index: dict[str, list[dict[str, str]]] = {stored: [] for stored in key.values("c")}
    for item in items:
        index[key.value("c", (item["id"],))].append(item)
    for rows in index.values():
        rng.shuffle(rows)
        rows.sort(key=lambda row: row["time"], reverse=True)  # stable: ties keep the shuffled order
    return index


def _fetch(index: dict[str, list[dict[str, str]]], calls: list[str]):  # type: ignore[no-untyped-def]
    def fetch(key: str, start: Key | None, limit: int) -> tuple[list[dict[str, str]], Key | None]:
        calls.append(key)
        rows = index[key]
        at = 0 if start is None else next(n for n, row in enumerate(rows) if row["id"] == start["id"]["S"]) + 1
        page = rows[at:at + limit]
        return page, ({"id": {"S": page[-1]["id"]}} if at + limit < len(rows) else None)
    return fetch


@pytest.mark.parametrize("seed", range(20))
def test_pages_show_every_item_once_greatest_first(seed: int) -> None:
    rng = random.Random(seed)
    buckets, count, limit = rng.choice([1, 3, 16]), rng.randrange(0, 60), rng.choice([1, 4, 7, 50])
    index = _index(seed, buckets, count)
    fetch = _fetch(index, [])
    shown: list[dict[str, str]] = []
    token = None
    for _ in range(count + 2):
        page = merge_page(fetch, ShardedKey("by-c", "c_shard", "time", buckets=buckets).values("c"), limit, token, order=lambda row: row["time"],
                          position=lambda row: {"id": {"S": row["id"]}})
        assert len(page.items) <= limit
        shown.extend(page.items)
        token = page.next_token
        if token is None:
            break
    assert token is None
    assert sorted(row["id"] for row in shown) == sorted(f"i{n}" for n in range(count))
    assert [row["time"] for row in shown] == sorted((row["time"] for row in shown), reverse=True)


def test_a_finished_bucket_is_not_asked_again() -> None:
    index = {"c#0": [{"id": "a", "time": "2"}], "c#1": [{"id": f"b{n}", "time": "1"} for n in range(5)]}
    calls: list[str] = []
    page = merge_page(_fetch(index, calls), ["c#0", "c#1"], 2, None, order=lambda row: row["time"],
                      position=lambda row: {"id": {"S": row["id"]}})
    calls.clear()
    merge_page(_fetch(index, calls), ["c#0", "c#1"], 2, page.next_token, order=lambda row: row["time"],
               position=lambda row: {"id": {"S": row["id"]}})
    assert calls == ["c#1"]


@pytest.mark.parametrize("token", ["x", "bm90IGpzb24=", "W251bGxd", "WyJkb25lIiwgMV0="])
def test_a_forged_token_is_refused(token: str) -> None:
    with pytest.raises(InvalidShardToken):
        merge_page(_fetch({}, []), ["c#0", "c#1"], 2, token, order=lambda row: row["time"],
                   position=lambda row: row)
