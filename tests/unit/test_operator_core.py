"""The pure core of the operator tools: versions, estimates, progress, row comparison, replay rows,
what-changed trails, CloudEvents lines and the rate limiter."""

from __future__ import annotations

import io
import json
import math

import pytest
from cloudevents.core.formats.json import JSONFormat

from events.cloudevent import InvalidCloudEvent, NotExportable, from_line, to_line
from events.envelope import GENESIS_HASH, StoredEvent
from events.items import chained_item, from_item
from processors.operations.progress import Progress, render
from projections.audit_trail import trail
from projections.rebuild.comparison import (
    DIFFERENT,
    EXTRA,
    MISSING,
    Comparison,
    TableRule,
    compare_family,
    compare_settled,
    digest_rows,
    unsettled_streams,
)
from projections.inventory import InventoryProjection
from projections.pending_errors import PendingErrorsProjection
from projections.rate_limit import RateLimiter
from projections.rebuild.plan import InvalidRebuild, LogStats, RebuildProgress, estimate, next_version
from projections.rebuild.replay import replay
from projections.view import ROW_KEYS_ATTR
from projections.view_store import Loaded, ViewStore, to_item

T = "2025-11-11T10:00:00.000000Z"


def chain(stream, events):
    items, prev = [], GENESIS_HASH
    for version, (event_type, data) in enumerate(events, start=1):
        stored = StoredEvent(event_type, json.dumps(data, sort_keys=True, separators=(",", ":")),
                             f"{stream}-{version}", "urn:test", T, "corr", None)
        items.append(chained_item(stream, version, stored, prev))
        prev = items[-1]["hash"]["S"]
    return items


ORDER = chain("order:o1", [
    ("dynafold.orders.validated.v1", {"order_id": "o1", "order_number": "SO-1", "errors": [
        {"error_hash": "h1", "rule": "r1", "message": "m1"}, {"error_hash": "h2", "rule": "r2", "message": "m2"}]}),
    ("dynafold.orders.validated.v1", {"order_id": "o1", "order_number": "SO-1", "errors": [
        {"error_hash": "h1", "rule": "r1", "message": "m1 again"}]}),
])
SKU = chain("sku:A", [
    ("dynafold.inventory.physical_count_set.v1", {"sku": "A", "physical": 10}),
    ("dynafold.inventory.return_recorded.v1", {"sku": "A", "quantity": 2, "disposition": "SELLABLE",
                                                "restocked": True}),
])


def test_next_version_is_past_every_existing_and_active_one():
    names = ["p-inventory-v1", "p-inventory-v3", "p-inventory-returns-v7", "q-inventory-v9"]
    assert next_version("inventory", "v1", names, "p-") == "v4"
    assert next_version("inventory-returns", "v1", names, "p-") == "v8"
    assert next_version("alerts", "v2", names, "p-") == "v3"
    with pytest.raises(InvalidRebuild):
        next_version("alerts", "two", names, "p-")


def test_estimate_counts_streams_from_the_sample_and_units_from_sizes():
    guess = estimate(LogStats(events=10_000, bytes=4096 * 50, streams_sampled=100, events_sampled=400),
                     {"inventory": (1000, 1000 * 300), "delivery-status": (10, 10 * 3000)},
                     events_per_second=1000.0, max_write_rate=100.0)
    assert (guess.events, guess.streams, guess.rows, guess.read_units) == (10_000, 2500, 1010, 50)
    assert guess.write_units == 1000 + 10 * 3 and guess.seconds == pytest.approx(10.1)


def test_progress_roundtrips_and_counts_a_segment_once():
    progress = RebuildProgress(["inventory"], {"inventory": "p-inventory-v2"}, 4)
    progress.segment_done(2, 10, 3, 5, [])
    progress.segment_done(2, 10, 3, 5, [])
    again = RebuildProgress.from_json(json.loads(json.dumps(progress.to_json())))
    assert again.pending_segments == [0, 1, 3] and (again.events, again.rows) == (10, 5)


def test_replay_writes_what_live_processing_writes_for_the_whole_history_in_one_batch():
    """ViewStore.save onto no rows and replay produce the same items: one shape, not two copies."""
    written = []

    class Capture:
        def put_item(self, **request):
            written.append((request["TableName"], request["Item"]))

        def transact_write_items(self, TransactItems):
            written.extend((w["Put"]["TableName"], w["Put"]["Item"]) for w in TransactItems)

    tables = {"pending-errors": "pending-errors", "inventory": "inventory", "inventory-returns": "inventory-returns"}
    views = {"order": PendingErrorsProjection, "sku": InventoryProjection}
    replayed = list(replay(ORDER + SKU, views))
    for stream_rows, items in zip(replayed, (ORDER, SKU), strict=True):
        view = views[stream_rows.stream.split(":")[0]]
        events = [from_item(i) for i in items]
        key = stream_rows.stream.split(":", 1)[1]
        ViewStore(Capture(), tables).save(view, stream_rows.stream, key, Loaded(view.initial(key), 0, {}),
                                          view.fold(key, events), events[-1].version)
    assert sorted(written, key=repr) == sorted(((f, to_item(r)) for s in replayed for f, r in s.rows), key=repr)
    order_rows = [r for f, r in replayed[0].rows]
    assert [r["error_hash"] for r in order_rows] == ["#", "@order", "h1"]
    assert all(r["stream_version"] == 2 for r in order_rows)
    assert [f for f, _ in replayed[1].rows] == ["inventory", "inventory-returns"]


def test_comparison_ignores_batching_stamps_and_expired_rows_but_nothing_else():
    rule = TableRule("order_id", "error_hash", "expires_at")
    head = {"order_id": "o1", "error_hash": "#", "stream_id": "order:o1", "stream_version": 3}
    row = {"order_id": "o1", "error_hash": "h1", "rule": "r", "expires_at": 2_000, "stream_version": 1}
    live = digest_rows([head, row, {**row, "error_hash": "old", "expires_at": 10}], rule, now_epoch=1_000)
    rebuilt = digest_rows([{**head, ROW_KEYS_ATTR: ["h1"]}, {**row, "stream_version": 3}], rule, now_epoch=1_000)
    # (a head's list of its rows is derived from the rows; a head from before heads listed them has none)
    assert compare_family("pending-errors", live, rebuilt, Comparison()).equal

    behind = digest_rows([{**head, "stream_version": 2}, {**row, "rule": "x"}], rule, now_epoch=1_000)
    result = compare_family("pending-errors", live, behind, Comparison())
    assert [(d.key, d.kind, d.versions_differ) for d in result.differences] == [
        (("o1", "#"), DIFFERENT, True), (("o1", "h1"), DIFFERENT, False)]
    assert "live at v3, rebuilt at v2" in str(result.differences[0])
    missing = compare_family("x", {("a",): live[("o1", "#")]}, {("b",): live[("o1", "#")]}, Comparison())
    assert [d.kind for d in missing.differences] == [MISSING, EXTRA] and len(missing.in_flight) == 2


def test_a_sharded_key_is_compared_by_its_bare_value_and_the_families_rules_name_theirs():
    """A live row a deployed table got before by-first-detected was sharded holds "PENDING"; its
    rebuilt copy "PENDING#<bucket>": the same row. Any other difference still is one."""
    from processors.operations.rebuild import table_rule

    rule = table_rule("pending-errors")
    assert rule.sharded == ("pending",) and table_rule("delivery-status").sharded == ("status_shard", "sender_shard")
    row = {"order_id": "o1", "error_hash": "h1", "rule": "r", "pending": "PENDING#5", "stream_version": 1}
    live = digest_rows([{**row, "pending": "PENDING"}], rule, now_epoch=0)
    assert compare_family("pending-errors", live, digest_rows([row], rule, 0), Comparison()).equal
    moved = digest_rows([{**row, "pending": "NOTIFIED#5"}], rule, 0)
    assert not compare_family("pending-errors", live, moved, Comparison()).equal


def test_rows_are_compared_only_where_both_sides_stand_at_one_version_of_their_stream():
    rule = TableRule("sku", category="sku")
    returns = TableRule("sku", "returned_at", category="sku")  # extras: owned by key, no stamp
    live = {"inventory": digest_rows([{"sku": "A", "on_hand": 5, "stream_id": "sku:A", "stream_version": 6},
                                      {"sku": "B", "on_hand": 1, "stream_id": "sku:B", "stream_version": 2}], rule, 0),
            "returns": digest_rows([{"sku": "A", "returned_at": "t#5", "quantity": 1}], returns, 0)}
    rebuilt = {"inventory": digest_rows([{"sku": "A", "on_hand": 7, "stream_id": "sku:A", "stream_version": 7},
                                         {"sku": "B", "on_hand": 9, "stream_id": "sku:B", "stream_version": 2}],
                                        rule, 0),
               "returns": digest_rows([{"sku": "A", "returned_at": "t#5", "quantity": 1},
                                       {"sku": "A", "returned_at": "t#7", "quantity": 2}], returns, 0)}
    unsettled = unsettled_streams(live, rebuilt)
    assert unsettled == {"sku:A": (6, 7)}  # live behind on A: not a difference, a wait
    result = compare_settled(live, rebuilt, set(unsettled), Comparison())
    assert [(d.family, d.key, d.kind) for d in result.differences] == [("inventory", ("B",), DIFFERENT)]
    assert result.rows == {"inventory": 1, "returns": 0}


def test_trail_says_what_each_event_changed_in_the_view():
    events = [from_item(i) for i in ORDER]
    changes = [c for _, c in trail(PendingErrorsProjection, events)]
    assert "[h1] row added" in changes[0] and "[h2] row added" in changes[0]
    assert changes[1] == ["[h1] message: m1 -> m1 again", "[h2] row removed"]  # same time: last_seen unchanged
    sku = [c for _, c in trail(InventoryProjection, [from_item(i) for i in SKU])]
    assert "physical: 10 -> 12" in sku[1] and any(c.startswith("inventory-returns: +") for c in sku[1])
    plain = [c for _, c in trail(None, [from_item(i) for i in SKU])]
    assert "physical: null -> 10" in plain[0] and "quantity: null -> 2" in plain[1]


def test_cloudevent_lines_carry_the_stream_version_in_our_own_extension_and_old_exports_still_import():
    """Issue 12 defect 12: CloudEvents' sequence extension is scoped to the source, not to our stream."""
    import json as _json

    [item, _] = SKU
    exported = _json.loads(to_line(item))
    assert exported["streamversion"] == "00000000000000000001" and "sequence" not in exported
    parsed = from_line(to_line(item))
    assert (parsed.stream, parsed.version) == ("sku:A", 1)
    old = {k: v for k, v in exported.items() if k != "streamversion"} | {"sequence": "00000000000000000001"}
    parsed = from_line(_json.dumps(old))
    assert (parsed.stream, parsed.version, parsed.stored.id) == ("sku:A", 1, item["id"]["S"])


def test_cloudevent_lines_are_sdk_fixed_points_and_give_back_the_stored_form():
    [item, _] = SKU
    line = to_line(item)
    fmt = JSONFormat()
    assert fmt.write(fmt.read(None, line)).decode() == line
    parsed = from_line(line)
    stored = parsed.stored
    assert (parsed.stream, parsed.version) == ("sku:A", 1)
    assert (stored.type, stored.data_text, stored.time_text, stored.id) == (
        item["type"]["S"], item["data"]["S"], item["time"]["S"], item["id"]["S"])
    with pytest.raises(NotExportable):
        to_line({**item, "data": {"S": '{"sku": "A", "physical": 10}'}})  # not canonical: would not import unchanged


def test_a_cloudevents_0_3_line_is_refused_with_a_reason():
    line = json.dumps({"specversion": "0.3", "id": "e1", "source": "urn:x", "type": "dynafold.inventory.count_recorded.v1",
                       "subject": "sku:A", "time": T, "datacontenttype": "application/json", "data": {"sku": "A"}})
    with pytest.raises(InvalidCloudEvent, match=r"only CloudEvents 1\.0"):
        from_line(line)


def test_rate_limiter_spreads_units_over_time():
    now = [0.0]
    limiter = RateLimiter(100.0, lambda: now[0], lambda s: None)
    assert limiter.delay(100) == 0.0  # a one-second burst
    assert limiter.delay(50) == pytest.approx(0.5)
    now[0] += 1.0
    assert limiter.delay(25) == 0.0
    assert RateLimiter(None, lambda: 0.0, lambda s: None).delay(10**6) == 0.0


def test_progress_bar_on_a_terminal_and_plain_lines_otherwise():
    assert render(50, 200, 10.0, "events").endswith("50/200 events  5 events/s  ETA 0m30s")
    assert render(5, None, 1.0, "events") == "5 events  5 events/s"
    clock = [0.0]
    plain, tty = io.StringIO(), io.StringIO()
    for out, is_tty in ((plain, False), (tty, True)):
        progress = Progress(100, out=out, tty=is_tty, every=5.0, clock=lambda: clock[0])
        for _ in range(10):
            clock[0] += 1.0
            progress.advance(10)
        progress.finish()
    assert plain.getvalue().count("\n") == 3 and "\r" not in plain.getvalue()
    assert "\r\x1b[K[" in tty.getvalue() and "100%" in tty.getvalue()


def test_scale_estimate_is_bound_by_the_slowest_of_workers_and_table_quotas():
    from projections.rebuild.plan import TABLE_WRITE_QUOTA, assumed, scale_estimate

    log = assumed(100_000_000)  # streams of 10 events, 1.5 rows each, 500 B events
    few = scale_estimate(log, mode="aws", workers=4, worker_events_per_second=10_000, compare_rows_per_second=1e9)
    assert few.bound == "workers" and few.fill_seconds == 100_000_000 / 40_000
    many = scale_estimate(log, mode="aws", workers=1000, worker_events_per_second=10_000,
                          compare_rows_per_second=1e9)
    assert many.bound == "write quota"
    assert many.fill_seconds == pytest.approx(log.rows / TABLE_WRITE_QUOTA)
    cold = scale_estimate(log, mode="aws", workers=1000, worker_events_per_second=10_000,
                          compare_rows_per_second=1e9, warm_writes=0)
    assert cold.fill_seconds == pytest.approx(10 * many.fill_seconds)  # 4,000 vs 40,000 writes/s
    assert any("new tables start at 4,000 writes/s" in line for line in cold.assumptions)
    # The comparison runs a segment per worker: time falls with concurrency; a switch adds the wait
    # and a second pass; a segment too big for one invocation is named with the segments it needs.
    one = scale_estimate(log, mode="aws", workers=1, worker_events_per_second=10_000, compare_rows_per_second=5_000,
                         switch=False)
    wide = scale_estimate(log, mode="aws", workers=64, worker_events_per_second=10_000,
                          compare_rows_per_second=5_000, segments=64, switch=False)
    assert one.compare_seconds == pytest.approx(2 * log.rows / 5_000) == pytest.approx(64 * wide.compare_seconds)
    assert wide.switch_seconds == 0 and not any(line.startswith("LIMIT") for line in wide.assumptions)
    switched = scale_estimate(log, mode="aws", workers=64, worker_events_per_second=10_000,
                              compare_rows_per_second=5_000, segments=64)
    assert switched.switch_seconds == pytest.approx(120 + wide.compare_seconds)
    assert switched.cost_usd > wide.cost_usd
    slow_compare = scale_estimate(log, mode="aws", workers=8, worker_events_per_second=10_000,
                                  compare_rows_per_second=1_000, segments=8)
    assert any(line.startswith("LIMIT: one segment's comparison needs") and "--segments 36 or more" in line
               for line in slow_compare.assumptions)
    local = scale_estimate(log, mode="local", workers=4, worker_events_per_second=1_000,
                           compare_rows_per_second=5_000)
    assert local.compare_seconds == one.compare_seconds and local.switch_seconds == 0
    assert few.cost_usd > 0 and few.read_units == math.ceil(log.read_units / 2)


def test_a_worker_process_writes_with_the_rebuilds_writer_threads(monkeypatch):
    """--workers N used to give each process the SegmentWorker's default writers, not the option's."""
    from processors.operations import rebuild
    from processors.services.rebuild_segment import SegmentResult, SegmentTask

    made: list[int] = []

    class Worker:
        def __init__(self, client, events_table, *, writers=4, clock=None, reveal=None):
            made.append(writers)

        def run(self, task):
            return SegmentResult(task.segment, None, True)

    monkeypatch.setattr(rebuild, "SegmentWorker", Worker)
    rebuild._process_worker.cache_clear()
    task = SegmentTask(("inventory",), {"inventory": "t-v2"}, 0, 1).to_json()
    assert rebuild.run_slice(object, "events", 7, None, task)["done"]
    assert made == [7]
    rebuild._process_worker.cache_clear()
