"""The comparison split by scan segment against the whole truth, for any damage on either side and
any placement of keys into segments: run segment by segment (as the compare map's children do), it
reports exactly the differences a comparison of every row reports, each once, and counts every
live row once. Tables are an in-memory stand-in for the three reads the comparer makes (Scan by
segment, Query by partition, BatchGetItem by key), each table placing keys in segments its own way,
as two DynamoDB tables need not place them alike."""

from __future__ import annotations

import zlib
from collections import Counter
from collections.abc import Iterator, Mapping
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from processors.operations.rebuild import table_rule
from processors.services.rebuild_compare import RebuildComparer
from projections.rebuild.comparison import Comparison, compare_settled, digest_rows
from projections.registry import VIEWS_BY_NAME
from projections.view import HEAD_SORT_KEY, STREAM_ATTR, VERSION_ATTR
from projections.view_store import from_item, to_item

SEGMENTS = 3
VIEWS = [VIEWS_BY_NAME["inventory"], VIEWS_BY_NAME["pending-errors"]]
FAMILIES = ("inventory", "inventory-returns", "pending-errors")
RULES = {family: table_rule(family) for family in FAMILIES}
SKUS, ORDERS = ("A", "B", "C", "D", "E"), ("o1", "o2", "o3")


class Tables:
    """Scan (one page per segment), Query by partition key, BatchGetItem by key, over item lists."""

    def __init__(self, tables: Mapping[str, list[dict[str, Any]]], salts: Mapping[str, int]) -> None:
        self._tables = tables
        self._salts = salts

    def _key_attr(self, table: str) -> str:
        return RULES[table.split("@")[0]].key_attr

    def scan(self, *, TableName: str, Segment: int, TotalSegments: int, **_: Any) -> dict[str, Any]:
        key = self._key_attr(TableName)
        salt = self._salts[TableName]
        return {"Items": [item for item in self._tables[TableName]
                          if zlib.crc32(f"{salt}:{item[key]['S']}".encode()) % TotalSegments == Segment]}

    def query(self, *, TableName: str, ExpressionAttributeNames: dict[str, str],
              ExpressionAttributeValues: dict[str, Any], **_: Any) -> dict[str, Any]:
        name, value = ExpressionAttributeNames["#k"], ExpressionAttributeValues[":k"]
        return {"Items": [item for item in self._tables[TableName] if item[name] == value]}

    def batch_get_item(self, *, RequestItems: dict[str, Any]) -> dict[str, Any]:
        responses = {table: [item for item in self._tables[table] for key in request["Keys"]
                             if all(item.get(name) == value for name, value in key.items())]
                     for table, request in RequestItems.items()}
        return {"Responses": responses, "UnprocessedKeys": {}}


class NoLog:
    def read_items(self, stream: str, first: int, last: int | None = None) -> Iterator[dict[str, Any]]:
        return iter(())  # catching up needs events: these tables have none behind them


def base_rows(versions: Mapping[str, int]) -> dict[str, list[dict[str, Any]]]:
    rows: dict[str, list[dict[str, Any]]] = {family: [] for family in FAMILIES}
    for sku in SKUS:
        v = versions[sku]
        rows["inventory"].append({"sku": sku, "physical": v * 3, STREAM_ATTR: f"sku:{sku}", VERSION_ATTR: v})
        rows["inventory-returns"].append({"sku": sku, "returned_at": f"2026-01-0{v}", "quantity": 1})
    for order in ORDERS:
        v = versions[order]
        rows["pending-errors"].append({"order_id": order, "error_hash": HEAD_SORT_KEY, STREAM_ATTR: f"order:{order}",
                                       VERSION_ATTR: v})
        for n in range(2):
            rows["pending-errors"].append({"order_id": order, "error_hash": f"e{n}", "message": f"m{n}",
                                           STREAM_ATTR: f"order:{order}", VERSION_ATTR: v})
    return rows


DAMAGE = st.lists(st.tuples(st.sampled_from(FAMILIES), st.integers(0, 20), st.sampled_from(["drop", "change", "add"])),
                  max_size=6)


def damaged(rows: dict[str, list[dict[str, Any]]], damage: list[tuple[str, int, str]]) -> dict[str, list[dict]]:
    out = {family: [dict(row) for row in family_rows] for family, family_rows in rows.items()}
    for family, index, how in damage:
        family_rows = out[family]
        if not family_rows:
            continue
        row = family_rows[index % len(family_rows)]
        if how == "drop":
            family_rows.remove(row)
        elif how == "change":
            row["note"] = f"changed {index}"
        elif family == "pending-errors":  # an error row the other side does not have, at the stream's version
            family_rows.append({**row, "error_hash": f"x{index}", "message": "extra"})
        elif family == "inventory-returns":
            family_rows.append({**row, "returned_at": f"2026-02-{index:02d}"})
        else:  # a stream the other side does not have
            family_rows.append({**row, "sku": f"Z{index}", STREAM_ATTR: f"sku:Z{index}"})
    return out


def truth(live: dict[str, list[dict]], rebuilt: dict[str, list[dict]]) -> Comparison:
    digests = [{family: digest_rows(side[family], RULES[family], 0) for family in FAMILIES} for side in (live, rebuilt)]
    return compare_settled(digests[0], digests[1], set(), Comparison())


@settings(max_examples=60, deadline=None)
@given(versions=st.fixed_dictionaries({key: st.integers(1, 4) for key in (*SKUS, *ORDERS)}),
       live_damage=DAMAGE, rebuilt_damage=DAMAGE, salts=st.tuples(st.integers(0, 9), st.integers(0, 9)),
       settle=st.sampled_from([0.0, 2.0]))
def test_segment_by_segment_reports_what_the_whole_comparison_reports_each_once(
        versions, live_damage, rebuilt_damage, salts, settle):
    base = base_rows(versions)
    live, rebuilt = damaged(base, live_damage), damaged(base, rebuilt_damage)
    names = {"live": {f: f"{f}@live" for f in FAMILIES}, "rebuilt": {f: f"{f}@rebuilt" for f in FAMILIES}}
    items = {names[side][f]: [to_item(row) for row in rows[f]] for side, rows in (("live", live), ("rebuilt", rebuilt))
             for f in FAMILIES}
    tables = Tables(items, {**dict.fromkeys(names["live"].values(), salts[0]),
                            **dict.fromkeys(names["rebuilt"].values(), salts[1])})
    clock = [0.0]
    found: Counter[tuple[str, tuple[str, ...], str]] = Counter()
    rows: Counter[str] = Counter()
    for segment in range(SEGMENTS):
        comparer = RebuildComparer(tables, NoLog(), VIEWS, names["live"], names["rebuilt"], RULES, segments=SEGMENTS,
                                   clock=lambda: clock[0], sleep=lambda s: clock.__setitem__(0, clock[0] + s),
                                   now_epoch=lambda: 0)
        comparison = comparer.compare(settle, poll_seconds=0.5, segments=[segment]).comparison
        found.update((d.family, d.key, d.kind) for d in comparison.differences)
        rows.update(comparison.rows)
    expected = truth({f: [from_item(to_item(r)) for r in live[f]] for f in FAMILIES},
                     {f: [from_item(to_item(r)) for r in rebuilt[f]] for f in FAMILIES})
    assert found == Counter((d.family, d.key, d.kind) for d in expected.differences)
    assert {f: n for f, n in rows.items() if n} == {f: n for f, n in expected.rows.items() if n}
