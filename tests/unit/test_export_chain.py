"""An export proves itself (issue 19 §C): every line carries its hash and its predecessor's as
CloudEvents extension attributes, and the file is checked offline from them."""

from __future__ import annotations

import json

import pytest
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent

from events.cloudevent import HASH, PREV_HASH, from_line, to_line
from events.envelope import GENESIS_HASH, StoredEvent, canonical_json
from events.export_chain import check_export, heads_digest
from events.items import chained_item

T = "2025-11-11T10:00:0{}.000000Z"


def stream_items(stream, count, start_hash=GENESIS_HASH):
    items, prev = [], start_hash
    sku = stream.split(":", 1)[1]
    for version in range(1, count + 1):
        stored = StoredEvent("dynafold.inventory.buffer_set.v1", canonical_json({"buffer": version, "sku": sku}),
                             f"{stream}-{version}", "urn:test", T.format(version), "corr", None)
        items.append(chained_item(stream, version, stored, prev))
        prev = items[-1]["hash"]["S"]
    return items


def export(*streams):
    """Numbered lines of an export of whole streams, as `audit export` writes them."""
    lines = [to_line(item) for items in streams for item in items]
    return [(number, from_line(line)) for number, line in enumerate(lines, start=1)]


def edited(line, **data):
    event = json.loads(line)
    event["data"].update(data)
    return json.dumps(event)


def test_exported_lines_carry_the_chain_as_valid_cloudevents_extension_attributes():
    [item] = stream_items("sku:A", 1)
    line = to_line(item)
    event = JSONFormat().read(None, line)
    assert isinstance(event, CloudEvent)  # the official SDK validates every extension name (a-z0-9)
    assert event.get_extension(HASH) == item["hash"]["S"] and event.get_extension(PREV_HASH) == GENESIS_HASH
    parsed = from_line(line)
    assert (parsed.hash, parsed.prev_hash) == (item["hash"]["S"], GENESIS_HASH)
    assert parsed.recomputed_hash() == parsed.hash


def test_an_intact_export_proves_every_line_and_link():
    report = check_export(export(stream_items("sku:A", 3), stream_items("sku:B", 2)))
    assert (report.events, report.streams, report.broken, report.gaps) == (5, 2, [], [])
    assert report.heads["sku:A"][0] == 3


def test_an_edited_line_is_altered_at_its_line_and_version():
    lines = [to_line(item) for item in stream_items("sku:A", 3)]
    lines[1] = edited(lines[1], buffer=99)
    report = check_export([(n, from_line(line)) for n, line in enumerate(lines, start=1)])
    [problem] = report.broken
    assert (problem.line, problem.link.stream, problem.link.version) == (2, "sku:A", 2) and "altered" in problem.link.problem


def test_an_edited_line_rehashed_breaks_the_next_link():
    items = stream_items("sku:A", 3)
    forged = json.loads(to_line(items[1]))
    forged["data"]["buffer"] = 99
    forged_item = chained_item("sku:A", 2, from_line(json.dumps(forged)).stored, items[0]["hash"]["S"])
    lines = [to_line(items[0]), to_line(forged_item), to_line(items[2])]
    [problem] = check_export([(n, from_line(line)) for n, line in enumerate(lines, start=1)]).broken
    assert (problem.line, problem.link.version) == (3, 3) and "prevhash" in problem.link.problem


@pytest.mark.parametrize("keep, gap", [([0, 2], "version 2 not in the file"), ([1, 2], "starts at version 2")])
def test_a_line_left_out_is_a_gap_the_file_cannot_check(keep, gap):
    items = stream_items("sku:A", 3)
    report = check_export(export([items[i] for i in keep]))
    assert report.broken == [] and len(report.gaps) == 1 and gap in report.gaps[0].link.problem


def test_swapped_duplicated_and_unchained_lines_are_broken():
    items = stream_items("sku:A", 2)
    swapped = [to_line(items[0]), to_line(items[1])]
    a, b = json.loads(swapped[0]), json.loads(swapped[1])
    a["streamversion"], b["streamversion"] = b["streamversion"], a["streamversion"]
    report = check_export([(1, from_line(json.dumps(b))), (2, from_line(json.dumps(a)))])
    assert report.broken and all("altered" in p.link.problem for p in report.broken)  # the version is hashed
    twice = check_export(export(items, items[1:]))
    assert any("appears twice" in p.link.problem for p in twice.broken)
    bare = json.loads(to_line(items[0]))
    del bare[HASH], bare[PREV_HASH]
    [problem] = check_export([(1, from_line(json.dumps(bare)))]).broken
    assert "unverifiable" in problem.link.problem


def test_a_cut_tail_or_a_recomputed_chain_changes_only_the_heads_digest():
    """What the file alone cannot prove: its tail, and a chain recomputed from an edit to its end
    (the hash is unkeyed). The heads digest stated at export time can."""
    items = stream_items("sku:A", 3)
    whole = check_export(export(items))
    cut = check_export(export(items[:2]))
    assert cut.broken == [] and cut.gaps == []  # an intact, shorter chain
    assert cut.heads_digest != whole.heads_digest
    forged, prev = [items[0]], items[0]["hash"]["S"]
    for item in items[1:]:
        stored = from_line(edited(to_line(item), buffer=99)).stored
        forged.append(chained_item("sku:A", int(item["version"]["N"]), stored, prev))
        prev = forged[-1]["hash"]["S"]
    recomputed = check_export(export(forged))
    assert recomputed.broken == [] and recomputed.gaps == []
    assert recomputed.heads_digest != whole.heads_digest
    assert check_export(export(items)).heads_digest == whole.heads_digest
    assert heads_digest({"sku:A": (3, items[2]["hash"]["S"])}) == whole.heads_digest
