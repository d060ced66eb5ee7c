"""The state machine's comparison steps without a table: the verdict sums the compare map's answers
and switches only on EQUAL, steps refuse to write active tables or to compare against tables that
are no longer active, and a segment's answer stays small enough for the map's inline results."""

from __future__ import annotations

import json

import pytest

from processors.services.rebuild_compare import MAX_AWS_SEGMENTS, SHOWN_PER_SEGMENT, CompareStep

ACTIVE = {"inventory": "s-inventory-v1", "inventory-returns": "s-inventory-returns-v1"}
TARGETS = {"inventory": "s-inventory-v2", "inventory-returns": "s-inventory-returns-v2"}
# https://docs.aws.amazon.com/step-functions/latest/dg/limits-overview.html: 256 KiB per state input/output
STATE_PAYLOAD_LIMIT = 256 * 1024


class Versions:
    def __init__(self) -> None:
        self.written: list[dict[str, str]] = []

    def write(self, changes):
        self.written.append(dict(changes))
        return dict(changes)


def step(versions: Versions, active=ACTIVE) -> CompareStep:
    return CompareStep(client=None, store=None, active=lambda: dict(active), versions=lambda: versions)


def answer(segment: int, rows: int = 10, differences: int = 0, first: str | None = None) -> dict:
    return {"segment": segment, "rows": rows, "rows_by_family": {"inventory": rows, "inventory-returns": 0},
            "differences": differences, "first": first, "caught_up": 1, "failed": 0, "first_failed": None}


def test_the_verdict_sums_the_segments_and_switches_when_equal():
    versions = Versions()
    verdict = step(versions).run({"step": "verdict", "targets": TARGETS, "switch": True,
                                  "segments": [answer(0), answer(1, rows=5)]})
    assert verdict["equal"] and verdict["rows_compared"] == {"inventory": 15, "inventory-returns": 0}
    assert verdict["caught_up"] == 2
    assert verdict["switched"] == {"inventory": "v2", "inventory-returns": "v2"} == versions.written[0]


def test_one_different_segment_makes_the_verdict_different_and_nothing_switches():
    versions = Versions()
    verdict = step(versions).run({"step": "verdict", "targets": TARGETS, "switch": True, "segments": [
        answer(0), answer(1, differences=3, first="inventory A: different (live at v3, rebuilt at v3)")]})
    assert not verdict["equal"] and verdict["difference_count"] == 3
    assert verdict["differences"] == ["inventory A: different (live at v3, rebuilt at v3)"]
    assert verdict["switched"] is None and versions.written == []


@pytest.mark.parametrize("event, reason", [
    ({"step": "compare", "live": ACTIVE, "targets": ACTIVE}, "refusing to write into active tables"),
    ({"step": "catch_up", "live": ACTIVE, "targets": TARGETS}, "catch_up runs after the switch"),
    ({"step": "compare", "live": {"inventory": "s-inventory-v0", "inventory-returns": "s-inventory-returns-v1"},
      "targets": TARGETS}, "the active tables changed since the rebuild started"),
    ({"step": "compare", "live": {"inventory": "s-inventory-v1"}, "targets": TARGETS}, "name different families"),
    ({"step": "fold"}, "unknown rebuild step 'fold'"),
])
def test_steps_refuse_what_would_write_or_prove_the_wrong_tables(event, reason):
    payload = {"views": ["inventory"], "rules": {}, "segment": 0, "total_segments": 4, **event}
    with pytest.raises(ValueError, match=reason):
        step(Versions()).run(payload)


def test_the_largest_segment_answers_of_the_most_segments_fit_the_inline_map_results():
    longest = "x" * SHOWN_PER_SEGMENT
    families = {f"{name}-returns-history": 10**12 for name in ("inventory", "pending-errors", "delivery-status",
                                                               "alerts", "more")}
    worst = {"segment": MAX_AWS_SEGMENTS, "rows": 10**13, "rows_by_family": families, "differences": 10**12,
             "first": longest, "caught_up": 10**12, "failed": 10**12, "first_failed": longest}
    results = json.dumps([worst] * MAX_AWS_SEGMENTS)
    assert len(results.encode()) < STATE_PAYLOAD_LIMIT


def test_the_wait_after_a_switch_outlasts_every_way_a_function_can_still_write_the_old_tables():
    """The version cache, then a projector invocation that read the old versions, run to its timeout."""
    import inspect

    from processors.adapters.view_versions import SsmVersions
    from processors.operations.template import load_template
    from projections.rebuild.plan import SWITCH_WAIT_SECONDS

    template = load_template()
    projector = template["Resources"]["ProjectorFunction"]["Properties"]
    timeout = projector.get("Timeout", template["Globals"]["Function"]["Timeout"])
    [window] = [event["Properties"].get("MaximumBatchingWindowInSeconds", 0)
                for event in projector["Events"].values()]
    cache = inspect.signature(SsmVersions).parameters["max_age"].default
    assert isinstance(SWITCH_WAIT_SECONDS, int) and cache + window + timeout < SWITCH_WAIT_SECONDS


def test_a_multi_row_stream_stands_at_its_head_rows_version_unless_a_row_was_read_newer_than_it():
    from projections.rebuild.comparison import whole_version as _whole_version
    from projections.rebuild.comparison import RowDigest, TableRule
    from projections.view import HEAD_SORT_KEY

    rule = TableRule("order_id", "error_hash", None, "order")
    head = (("o1", HEAD_SORT_KEY), RowDigest("h", 5, "order:o1"))
    assert _whole_version(dict([head, (("o1", "e1"), RowDigest("x", 4, "order:o1"))]), rule) == 5
    # the partition read across two pages while a batch at v6 rewrote a row: not a settled picture
    assert _whole_version(dict([head, (("o1", "e1"), RowDigest("x", 6, "order:o1"))]), rule) is None
    assert _whole_version({("o1", "e1"): RowDigest("x", 4, "order:o1")}, rule) is None  # no head row
    single = TableRule("sku", None, None, "sku")
    assert _whole_version({("A",): RowDigest("a", 3, "sku:A")}, single) == 3
