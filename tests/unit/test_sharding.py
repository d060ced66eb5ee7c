"""events/sharding.py: sharded keys are stable, and the fan-out pages every item once, in order."""

from __future__ import annotations

import random

import pytest

from events.sharding import InvalidShardToken, Key, bucket, merge_page, shard, shards


def test_a_member_always_lands_in_the_same_bucket_and_buckets_spread() -> None:
    assert shard("sku", "sku:PROD-1", 16) == shard("sku", "sku:PROD-1", 16)
    assert shard("sku", "sku:PROD-1", 16) in shards("sku", 16)
    used = {bucket(f"sku:{n}", 16) for n in range(500)}
    assert used == set(range(16))
    with pytest.raises(ValueError):
        shard("sku", "x", 0)


def _index(seed: int, buckets: int, count: int) -> dict[str, list[dict[str, str]]]:
    """Per bucket, its items in the index's order (time descending; equal times in any order)."""
    rng = random.Random(seed)
    items = [{"id": f"i{n}", "time": f"{rng.randrange(8):02d}"} for n in range(count)]  # many ties
    index: dict[str, list[dict[str, str]]] = {key: [] for key in shards("c", buckets)}
    for item in items:
        index[shard("c", item["id"], buckets)].append(item)
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
        page = merge_page(fetch, shards("c", buckets), limit, token, order=lambda row: row["time"],
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
    index = {"c#00": [{"id": "a", "time": "2"}], "c#01": [{"id": f"b{n}", "time": "1"} for n in range(5)]}
    calls: list[str] = []
    page = merge_page(_fetch(index, calls), ["c#00", "c#01"], 2, None, order=lambda row: row["time"],
                      position=lambda row: {"id": {"S": row["id"]}})
    calls.clear()
    merge_page(_fetch(index, calls), ["c#00", "c#01"], 2, page.next_token, order=lambda row: row["time"],
               position=lambda row: {"id": {"S": row["id"]}})
    assert calls == ["c#01"]


@pytest.mark.parametrize("token", ["x", "bm90IGpzb24=", "W251bGxd", "WyJkb25lIiwgMV0="])
def test_a_forged_token_is_refused(token: str) -> None:
    with pytest.raises(InvalidShardToken):
        merge_page(_fetch({}, []), ["c#00", "c#01"], 2, token, order=lambda row: row["time"],
                   position=lambda row: row)
