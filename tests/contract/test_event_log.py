"""The EventLog contract (events/ports.py): DESIGN.md rules 1-4, on every implementation.

Each test runs on the in-memory log, on EventStore over moto and (integration) over DynamoDB Local.
"""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from dataclasses import replace

from events.appending import (
    HEAD_KEY_PREFIX,
    IDEMPOTENCY_TTL,
    GuardPlan,
    guard_item,
    plan_at,
    prepare,
    request_hash,
    streams_request_hash,
)
from events.chain import Witness
from events.checkpoints import Checkpoint, to_seal
from events.envelope import NewEvent, PlannedAppend, StoredEvent
from events.errors import (
    DynafoldError,
    EventTooLarge,
    IdempotencyKeyReused,
    InvalidEventData,
    InvalidExpectedVersion,
    InvalidStreamId,
    TooManyEvents,
    UnknownEventType,
    VersionConflict,
)
from events.ports import EventLog
from events.store import ANY, NO_STREAM, AppendResult
from tests.contract.conftest import FIXED, Harness, sealing


def buffer(sku: str = "A", value: int = 1, **kw: object) -> NewEvent:
    return NewEvent("dynafold.inventory.buffer_set.v1", {"sku": sku, "buffer": value}, **kw)  # type: ignore[arg-type]


def sold(sku: str, delta: int = -1) -> PlannedAppend:
    return PlannedAppend(f"sku:{sku}", (NewEvent("dynafold.inventory.stock_adjusted.v2", {"sku": sku, "delta": delta}),))


# ------------------------------------------------------------------ append and versions

def test_append_and_read_back_in_order(log: EventLog) -> None:
    first = log.append("sku:A", [buffer(value=1)], NO_STREAM)
    second = log.append("sku:A", [buffer(value=2), buffer(value=3)], 1)
    assert (first.first_version, first.deduplicated, second.versions) == (1, False, (2, 3))
    events = log.read_stream("sku:A")
    assert [e.version for e in events] == [1, 2, 3]
    assert [e.data.buffer for e in events] == [1, 2, 3]
    assert [e.id for e in events] == [*first.event_ids, *second.event_ids]
    assert events[0].time == FIXED and events[0].correlation_id == events[0].id
    assert events[1].prev_hash == events[0].hash and events[2].prev_hash == events[1].hash
    assert log.stream_version("sku:A") == 3 and log.stream_version("sku:none") == 0


def test_a_recorded_event_is_a_cloudevent_with_sequence_and_subject(log: EventLog) -> None:
    log.append("sku:A", [buffer(correlation_id="req-1", causation_id="evt-0")], NO_STREAM)
    view = log.read_stream("sku:A")[0].to_json()
    assert view["subject"] == "sku:A"
    assert view["sequence"] == "00000000000000000001"
    assert (view["correlationid"], view["causationid"]) == ("req-1", "evt-0")


def test_read_ranges_are_inclusive_and_checked(log: EventLog) -> None:
    log.append("sku:A", [buffer(value=n) for n in range(1, 6)], NO_STREAM)
    assert [e.version for e in log.read_stream("sku:A", 2, 4)] == [2, 3, 4]
    assert [e.version for e in log.read_stream("sku:A", from_version=4)] == [4, 5]
    assert [e.version for e in log.read_stream("sku:A", 5, 9)] == [5]
    assert log.read_stream("sku:A", 6) == [] and log.read_stream("sku:B") == []
    assert [int(i["version"]["N"]) for i in log.read_items("sku:A", 3, 3)] == [3]
    with pytest.raises(InvalidExpectedVersion):
        log.read_stream("sku:A", 0)
    with pytest.raises(InvalidStreamId):
        log.read_stream("no-category")


def test_conflicts_carry_the_actual_version_and_any_appends_at_the_head(log: EventLog) -> None:
    log.append("sku:A", [buffer(), buffer()], NO_STREAM)
    for expected in (1, NO_STREAM, 3):
        with pytest.raises(VersionConflict) as caught:
            log.append("sku:A", [buffer()], expected)
        assert caught.value.actual == 2
    with pytest.raises(VersionConflict) as caught:
        log.append("sku:B", [buffer(sku="B")], 5)
    assert caught.value.actual == 0
    assert log.append("sku:A", [buffer()], ANY).first_version == 3
    assert log.append("sku:A", [buffer()], 3).first_version == 4
    assert log.append("sku:C", [buffer(sku="C")], 0).first_version == 1  # 0 is "no stream" too


@pytest.mark.parametrize(
    "stream, events, expected, error",
    [
        ("sku:A", [NewEvent("dynafold.nope.nope.v1", {})], ANY, UnknownEventType),
        ("sku:A", [NewEvent("dynafold.inventory.buffer_set.v1", {"sku": "A", "buffer": -1})], ANY, InvalidEventData),
        ("sku:A", [NewEvent("dynafold.inventory.buffer_set.v1", {"sku": "A", "buffer": 1, "x": 1})], ANY,
         InvalidEventData),
        ("order:A", [buffer()], ANY, InvalidStreamId),
        ("A", [buffer()], ANY, InvalidStreamId),
        ("sku:A", [buffer()], -1, InvalidExpectedVersion),
        ("sku:A", [buffer()], "latest", InvalidExpectedVersion),
        ("sku:A", [buffer()], True, InvalidExpectedVersion),
        ("sku:A", [], ANY, TooManyEvents),
        ("sku:A", [buffer()] * 101, ANY, TooManyEvents),  # 100 events fill a transaction
        ("sku:A", [buffer(id="x" * 5000), buffer()], NO_STREAM, DynafoldError),  # a key (correlation id) too long
        # The by-id index's key: an event id past 2048 bytes (its correlation short).
        ("sku:A", [buffer(), buffer(id="x" * 2049, correlation_id="c")], NO_STREAM, DynafoldError),
    ],
)
def test_bad_input_is_a_typed_error_and_writes_nothing(
    harness: Harness, stream: str, events: list[NewEvent], expected: object, error: type[Exception]
) -> None:
    with pytest.raises(error) as caught:
        harness.log.append(stream, events, expected)  # type: ignore[arg-type]
    assert not isinstance(caught.value, VersionConflict)
    assert harness.count() == 0


def test_an_oversized_event_is_refused_before_any_write(harness: Harness) -> None:
    big = NewEvent("dynafold.delivery.message_received.v1",
                   {"sender_id": "s", "message_id": "m", "target_url": "https://x", "payload": {"blob": "x" * 410_000}})
    with pytest.raises(EventTooLarge, match="400"):
        harness.log.append("delivery:s:m", [big], NO_STREAM)
    assert harness.count() == 0


# ------------------------------------------------------------------ idempotency

def test_a_repeated_key_gets_the_original_answer_and_writes_nothing(harness: Harness) -> None:
    log = harness.log
    original = log.append("sku:A", [buffer(value=7)], NO_STREAM, idempotency_key="wh-1")
    repeat = log.append("sku:A", [buffer(value=7)], ANY, idempotency_key="wh-1")
    assert repeat.deduplicated and (repeat.stream, repeat.versions, repeat.event_ids) == (
        original.stream, original.versions, original.event_ids)
    again = log.append("sku:A", [buffer(value=7)], NO_STREAM, idempotency_key="wh-1")  # the key beats the version
    assert again == repeat and harness.count() == 1
    assert log.recorded("wh-1") == repeat and log.recorded("wh-2") is None
    assert log.recorded_streams("wh-1") == [repeat]


def test_a_key_reused_for_another_request_is_refused(harness: Harness) -> None:
    harness.log.append("sku:A", [buffer(value=7)], NO_STREAM, idempotency_key="wh-1")
    for stream, event in (("sku:A", buffer(value=8)), ("sku:B", buffer(sku="B", value=7))):
        with pytest.raises(IdempotencyKeyReused):
            harness.log.append(stream, [event], ANY, idempotency_key="wh-1")
    with pytest.raises(IdempotencyKeyReused):
        harness.log.append_streams([sold("A")], "wh-1")
    assert harness.count() == 1


@pytest.mark.parametrize("key", ["", "k" * 1025, "#head:sku:A"])
def test_bad_keys_are_refused(harness: Harness, key: str) -> None:
    with pytest.raises(InvalidStreamId):
        harness.log.append("sku:A", [buffer()], ANY, idempotency_key=key)
    assert harness.count() == 0


def test_appending_stored_events_keeps_them_byte_for_byte(harness: Harness) -> None:
    stored = StoredEvent(type="dynafold.inventory.buffer_set.v1", data_text='{"buffer":4,"sku":"A"}', id="imported-1",
                         source="urn:elsewhere", time_text="2025-05-06T07:08:09.000000Z", correlation_id="c-1",
                         causation_id="e-0")
    result = harness.log.append_stored("sku:A", [stored], NO_STREAM, idempotency_key="import:imported-1")
    again = harness.log.append_stored("sku:A", [stored], ANY, idempotency_key="import:imported-1")
    assert again.deduplicated and again.event_ids == result.event_ids == ("imported-1",)
    [item] = harness.log.read_items("sku:A")
    assert (item["data"]["S"], item["time"]["S"], item["source"]["S"], item["causation_id"]["S"]) == (
        stored.data_text, stored.time_text, "urn:elsewhere", "e-0")
    with pytest.raises(InvalidStreamId):
        harness.log.append_stored("order:A", [stored])
    assert harness.count() == 1


# ------------------------------------------------------------------ several streams at once

def test_streams_are_appended_together_at_their_heads_and_a_repeat_gets_the_original(harness: Harness) -> None:
    log = harness.log
    log.append("sku:B", [sold("B").events[0]])
    first = log.append_streams([sold("A"), sold("B")], "k")
    assert [(r.stream, r.first_version, r.deduplicated) for r in first] == [("sku:A", 1, False), ("sku:B", 2, False)]
    again = log.append_streams([sold("A"), sold("B")], "k")
    assert [r.event_ids for r in again] == [r.event_ids for r in first] and all(r.deduplicated for r in again)
    assert log.recorded_streams("k") == again and harness.count() == 3
    assert log.verify_stream("sku:A").ok and log.verify_stream("sku:B").ok
    with pytest.raises(IdempotencyKeyReused):
        log.append_streams([sold("A", -5)], "k")


def test_a_bad_stream_anywhere_appends_nothing(harness: Harness) -> None:
    with pytest.raises(InvalidStreamId):
        harness.log.append_streams([sold("A"), sold("B"), PlannedAppend("sku:\x01", sold("C").events)], "k")
    with pytest.raises(InvalidStreamId):
        harness.log.append_streams([sold("A"), sold("A")], "k")
    assert harness.count() == 0 and harness.log.recorded_streams("k") is None


def test_one_transaction_is_the_limit_of_several_streams(harness: Harness) -> None:
    with pytest.raises(TooManyEvents):  # 101 events: the guard is written on its own, the events together
        harness.log.append_streams([sold(f"S{n}") for n in range(100)] + [
            PlannedAppend("sku:S0x", sold("S0x").events)], "k")
    assert len(harness.log.append_streams([sold(f"S{n}") for n in range(100)], "k")) == 100
    assert harness.count() == 100


# ------------------------------------------------------------------ scans

def _history(log: EventLog) -> dict[str, int]:
    sizes: dict[str, int] = {}
    for n in range(12):
        stream = f"sku:S{n % 5}"
        log.append(stream, [buffer(sku=f"S{n % 5}", value=n)] * (1 + n % 3))
        sizes[stream] = sizes.get(stream, 0) + 1 + n % 3
    return sizes


@pytest.mark.parametrize("segments, page_size", [(1, None), (3, None), (4, 2)])
def test_a_scan_yields_every_event_each_stream_in_version_order(log: EventLog, segments: int,
                                                                page_size: int | None) -> None:
    sizes = _history(log)
    order = [(i["stream"]["S"], int(i["version"]["N"])) for i in log.scan_items(segments, page_size=page_size)]
    for stream, size in sizes.items():  # streams of different segments interleave
        assert [v for s, v in order if s == stream] == list(range(1, size + 1))
    assert len(order) == sum(sizes.values())
    assert sorted((e.stream, e.version) for e in log.read_all(segments)) == sorted(order)


@pytest.mark.parametrize("page_size", [None, 2])
def test_scan_pages_split_the_log_into_segments_of_whole_contiguous_streams(log: EventLog,
                                                                            page_size: int | None) -> None:
    sizes = _history(log)
    by_segment: dict[int, list[tuple[str, int]]] = {}
    finished: list[int] = []
    for segment, page in log.scan_pages(3, page_size=page_size, keys_only=True):
        assert segment not in finished
        if page is None:
            finished.append(segment)
            continue
        assert all(set(item) == {"stream", "version"} for item in page)
        by_segment.setdefault(segment, []).extend((i["stream"]["S"], int(i["version"]["N"])) for i in page)
    assert sorted(finished) == [0, 1, 2]
    owner: dict[str, int] = {}
    for segment, order in by_segment.items():
        streams = [stream for n, (stream, _) in enumerate(order) if n == 0 or order[n - 1][0] != stream]
        assert len(streams) == len(set(streams))  # each stream's items together
        for stream in streams:
            assert owner.setdefault(stream, segment) == segment  # and in one segment
            assert [v for s, v in order if s == stream] == list(range(1, sizes[stream] + 1))
    assert sorted(owner) == sorted(sizes)
    alone = [(s, p) for s, p in log.scan_pages(3, [owner["sku:S0"]]) if p is not None]
    assert {s for s, _ in alone} == {owner["sku:S0"]}
    assert "sku:S0" in {i["stream"]["S"] for _, page in alone for i in page}


# ------------------------------------------------------------------ audit

def seal_heads(log: EventLog) -> dict[str, Checkpoint]:
    """What the projector seals after reading the whole log from the table's stream."""
    sealed = to_seal(log.read_all())
    assert log.seal(sealed) == {}
    return {c.stream: c for c in sealed}


def test_an_intact_log_verifies_against_its_sealed_checkpoints(harness: Harness) -> None:
    log = sealing(harness)
    sizes = _history(log)
    sealed = seal_heads(log)
    reports = list(log.verify_log(segments=2))
    assert sorted(r.stream for r in reports) == sorted(sizes) and all(r.ok for r in reports)
    assert {r.stream: r.events for r in reports} == sizes
    checkpoint = log.sealed_checkpoint("sku:S0")
    assert checkpoint == sealed["sku:S0"] and checkpoint.version == sizes["sku:S0"]
    assert checkpoint.hash == log.read_stream("sku:S0")[-1].hash
    assert log.sealed_checkpoints() == sealed and log.sealed_checkpoint("sku:none") is None
    assert log.recorded_heads() == {}  # appends record no head any more


def test_a_seal_is_insert_only_and_the_highest_checkpoint_speaks(harness: Harness) -> None:
    log = sealing(harness)
    log.append("sku:A", [buffer(value=1), buffer(value=2)], NO_STREAM)
    first, second = log.read_stream("sku:A")
    assert log.seal([Checkpoint("sku:A", 1, first.hash, first.id)]) == {}
    assert log.seal([Checkpoint("sku:A", 1, "f" * 64, "forged"), Checkpoint("sku:A", 2, second.hash, second.id)]) == {}
    assert log.sealed_checkpoint("sku:A") == Checkpoint("sku:A", 2, second.hash, second.id)
    assert log.verify_stream("sku:A").ok  # the forged re-seal of version 1 changed nothing


def test_the_same_events_are_stored_with_the_same_hashes_everywhere(log: EventLog) -> None:
    """Pinned digests: the chain is the same on every log (a log moved between engines verifies).
    The events carry their own time: the time is hashed, and the logs' clock is the run's start."""
    at = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    log.append("sku:A", [buffer(value=1, id="e1", time=at), buffer(value=2, id="e2", causation_id="e1", time=at)],
               NO_STREAM)
    items = list(log.read_items("sku:A"))
    assert [i["hash"]["S"] for i in items] == [
        "677897dcff11f1c5205e2fee02e95e3501100cb041cdac08d76fb0d9034f6150",
        "d2dd0cba266340b1cc98e96f1b904eb2224a0bc8866fb8842dd7b7b7efe160ba",
    ]


def test_verify_finds_an_item_changed_behind_the_store(harness: Harness) -> None:
    harness.log.append("sku:A", [buffer(value=1), buffer(value=2), buffer(value=3)], NO_STREAM)
    item = next(iter(harness.log.read_items("sku:A", 2, 2)))
    harness.put_raw({**item, "data": {"S": '{"buffer":200,"sku":"A"}'}})
    report = harness.log.verify_stream("sku:A")
    assert report.broken is not None and (report.broken.stream, report.broken.version) == ("sku:A", 2)
    assert [r.broken.version for r in harness.log.verify_log() if r.broken] == [2]


def test_verify_finds_a_gap_and_a_truncated_tail(harness: Harness) -> None:
    harness.log.append("sku:A", [buffer(value=n) for n in range(1, 5)], NO_STREAM)
    harness.log.append("sku:B", [buffer(sku="B")], NO_STREAM)
    harness.log.append("sku:C", [buffer(sku="C")], NO_STREAM)
    seal_heads(sealing(harness))
    harness.delete_raw("sku:A", 4)
    harness.delete_raw("sku:B", 1)
    report = harness.log.verify_stream("sku:A")
    assert report.broken is not None and report.broken.version == 4 and "truncated" in report.broken.problem
    assert "sealed checkpoint recorded version 4" in report.broken.problem
    broken = {r.stream: r.broken for r in harness.log.verify_log()}
    assert broken["sku:C"] is None
    assert broken["sku:A"] is not None and broken["sku:B"] is not None and "truncated" in broken["sku:B"].problem
    harness.delete_raw("sku:A", 2)
    report = harness.log.verify_stream("sku:A")
    assert report.broken is not None and report.broken.version == 2 and "missing" in report.broken.problem


def test_a_tail_cut_and_appended_over_is_reported_as_replaced(harness: Harness) -> None:
    """Appends no longer read a head, so they land on a lost tail; the seal of what was there
    before says the event at that version was replaced."""
    harness.log.append("sku:A", [buffer(value=n) for n in range(1, 4)], NO_STREAM)
    seal_heads(sealing(harness))
    harness.delete_raw("sku:A", 3)
    assert harness.log.append("sku:A", [buffer(value=9)], 2).first_version == 3
    report = harness.log.verify_stream("sku:A")
    assert report.broken is not None and report.broken.version == 3 and "replaced" in report.broken.problem
    assert [r.broken.version for r in harness.log.verify_log() if r.broken] == [3]


def test_a_head_an_earlier_release_recorded_still_witnesses_the_tail(harness: Harness) -> None:
    harness.log.append("sku:A", [buffer(value=n) for n in range(1, 4)], NO_STREAM)
    last = harness.log.read_stream("sku:A")[-1]
    harness.put_head_raw({"key": {"S": HEAD_KEY_PREFIX + "sku:A"}, "stream": {"S": "sku:A"},
                          "head_version": {"N": "3"}, "head_hash": {"S": last.hash}})
    assert harness.log.verify_stream("sku:A").ok
    harness.delete_raw("sku:A", 3)
    report = harness.log.verify_stream("sku:A")
    assert report.broken is not None and "truncated" in report.broken.problem and "earlier release" in report.broken.problem
    assert [r.stream for r in harness.log.verify_log() if r.broken] == ["sku:A"]


def test_witnesses_from_outside_the_log_are_checked_too(log: EventLog) -> None:
    log.append("sku:A", [buffer(value=n) for n in range(1, 3)], NO_STREAM)
    assert log.verify_stream("sku:A", [Witness(2, None, "inventory view")]).ok
    report = log.verify_stream("sku:A", [Witness(3, None, "inventory view")])
    assert report.broken is not None and "inventory view recorded version 3" in report.broken.problem
    broken = {r.stream: r.broken for r in log.verify_log(also={"sku:GONE": [Witness(1, None, "inventory view")]})}
    assert broken["sku:A"] is None and broken["sku:GONE"] is not None


# ------------------------------------------------------------------ a keyed append's two writes

def crashed_guard(log: EventLog, key: str, stream: str, events: list[NewEvent], base: int) -> GuardPlan:
    """The guard a writer leaves when it stops between its two writes: the key's plan, no events."""
    prepared = prepare(stream, events, key, FIXED)
    plan = plan_at(stream, prepared, base)
    return plan, guard_item(key, request_hash(stream, prepared), [plan], FIXED, IDEMPOTENCY_TTL)


def test_a_retry_finishes_a_plan_its_writer_left_half_done_with_the_planned_ids(harness: Harness) -> None:
    log = harness.log
    log.append("sku:A", [buffer(value=1)], NO_STREAM)
    plan, guard = crashed_guard(log, "wh-1", "sku:A", [buffer(value=7)], base=1)
    harness.put_guard_raw(guard)
    assert log.recorded("wh-1") is None and log.recorded_streams("wh-1") is None  # nothing written yet
    retry = log.append("sku:A", [buffer(value=7)], ANY, idempotency_key="wh-1")
    assert (retry.versions, retry.event_ids, retry.deduplicated) == ((2,), plan.event_ids, False)
    again = log.append("sku:A", [buffer(value=7)], ANY, idempotency_key="wh-1")
    assert again.deduplicated and again.event_ids == plan.event_ids and harness.count() == 2
    stored = log.read_stream("sku:A")[-1]
    assert (stored.id, stored.correlation_id) == (plan.event_ids[0], plan.event_ids[0])
    assert log.recorded("wh-1") == again and log.verify_stream("sku:A").ok


def test_a_plan_whose_version_another_writer_took_is_planned_again_once(harness: Harness) -> None:
    log = harness.log
    plan, guard = crashed_guard(log, "wh-1", "sku:A", [buffer(value=7)], base=0)
    harness.put_guard_raw(guard)
    log.append("sku:A", [buffer(value=1)], NO_STREAM)  # took version 1, the plan's version
    retry = log.append("sku:A", [buffer(value=7)], ANY, idempotency_key="wh-1")
    assert (retry.versions, retry.event_ids, retry.deduplicated) == ((2,), plan.event_ids, False)
    assert log.append("sku:A", [buffer(value=7)], ANY, idempotency_key="wh-1") == replace(retry, deduplicated=True)
    assert [e.data.buffer for e in log.read_stream("sku:A")] == [1, 7] and harness.count() == 2
    with pytest.raises(IdempotencyKeyReused):
        log.append("sku:A", [buffer(value=8)], ANY, idempotency_key="wh-1")


def test_a_lost_plan_at_the_version_the_request_names_is_a_version_conflict(harness: Harness) -> None:
    log = harness.log
    _, guard = crashed_guard(log, "wh-1", "sku:A", [buffer(value=7)], base=0)
    harness.put_guard_raw(guard)
    log.append("sku:A", [buffer(value=1)], NO_STREAM)
    with pytest.raises(VersionConflict) as caught:
        log.append("sku:A", [buffer(value=7)], NO_STREAM, idempotency_key="wh-1")
    assert caught.value.actual == 1 and harness.count() == 1 and log.recorded("wh-1") is None
    assert log.append("sku:A", [buffer(value=7)], 1, idempotency_key="wh-1").versions == (2,)  # re-decided
    assert harness.count() == 2


def test_a_multi_stream_plan_left_half_done_is_finished_or_planned_again(harness: Harness) -> None:
    log = harness.log
    prepared = [(p.stream, prepare(p.stream, p.events, None, FIXED)) for p in (sold("A"), sold("B"))]
    plans = [plan_at(stream, events, 0) for stream, events in prepared]
    harness.put_guard_raw(guard_item("k", streams_request_hash(prepared), plans, FIXED, IDEMPOTENCY_TTL))
    log.append("sku:B", [sold("B", -3).events[0]])  # takes the plan's version of sku:B
    results = log.append_streams([sold("A"), sold("B")], "k")
    assert [(r.stream, r.first_version, r.deduplicated) for r in results] == [("sku:A", 1, False), ("sku:B", 2, False)]
    assert [r.event_ids for r in results] == [p.event_ids for p in plans]
    assert log.append_streams([sold("A"), sold("B")], "k") == [replace(r, deduplicated=True) for r in results]
    assert harness.count() == 3


def test_a_guard_an_earlier_release_wrote_with_its_events_answers_as_before(harness: Harness) -> None:
    """Guards written in one transaction with their events (no plan with ids and times) are
    written by construction: a repeat gets their answer without a look at the log."""
    log = harness.log
    first = log.append("sku:A", [buffer(value=7)], NO_STREAM)
    digest = request_hash("sku:A", prepare("sku:A", [buffer(value=7)], "old-1", FIXED))
    guard = guard_item("old-1", digest, [plan_at("sku:A", [], 0)], FIXED, IDEMPOTENCY_TTL)
    del guard["appends"]  # the single-stream guard of earlier releases
    guard.update({"first_version": {"N": "1"}, "last_version": {"N": "1"},
                  "event_ids": {"L": [{"S": first.event_ids[0]}]}})
    harness.put_guard_raw(guard)
    repeat = log.append("sku:A", [buffer(value=7)], ANY, idempotency_key="old-1")
    assert (repeat.versions, repeat.event_ids, repeat.deduplicated) == ((1,), first.event_ids, True)
    assert log.recorded("old-1") == repeat and harness.count() == 1
    prepared = [(p.stream, prepare(p.stream, p.events, None, FIXED)) for p in (sold("B"),)]
    multi = guard_item("old-2", streams_request_hash(prepared), [plan_at("sku:B", [], 0)], FIXED, IDEMPOTENCY_TTL)
    multi["appends"] = {"S": '[["sku:B", 4, 4, ["e-4"]]]'}  # earlier releases: no times
    harness.put_guard_raw(multi)
    assert log.append_streams([sold("B")], "old-2") == [AppendResult("sku:B", 4, 4, ("e-4",), True)]
    assert harness.count() == 1


# ------------------------------------------------------------------ the stream catalogue

def test_list_streams_pages_through_a_category_newest_first_once_each(log: EventLog) -> None:
    for n in range(23):
        log.append(f"sku:S{n:02d}", [buffer(f"S{n:02d}", n)])
        log.append(f"sku:S{n:02d}", [buffer(f"S{n:02d}", n + 1)])  # a later append adds no entry
    log.append("alert:a-1", [NewEvent("dynafold.alerts.raised.v1", {
        "alert_id": "a-1", "alert_type": "stock_low", "severity": "warning", "subject": "sku:S01", "message": "low"})])
    seen: list[str] = []
    token = None
    pages = 0
    while True:
        page = log.list_streams("sku", limit=5, token=token)
        pages += 1
        assert len(page.items) <= 5
        seen.extend(entry.stream for entry in page.items)
        token = page.next_token
        if token is None:
            break
    assert sorted(seen) == [f"sku:S{n:02d}" for n in range(23)]  # every stream once, no other category
    assert pages >= 5
    first = log.list_streams("sku", limit=100).items
    assert [e.created for e in first] == sorted((e.created for e in first), reverse=True)


def test_only_a_streams_first_event_carries_the_catalogue_key(log: EventLog) -> None:
    log.append("sku:A", [buffer("A", 1), buffer("A", 2)])
    log.append("sku:A", [buffer("A", 3)])
    items = list(log.read_items("sku:A"))
    assert [("catalogue" in item) for item in items] == [True, False, False]
    assert items[0]["catalogue"]["S"].startswith("sku#")
    [entry] = log.list_streams("sku").items
    assert (entry.stream, entry.created) == ("sku:A", items[0]["time"]["S"])
    assert all(report.ok for report in log.verify_log())  # the key is no part of the hashed event


def test_list_streams_refuses_an_unknown_category_and_a_forged_token(log: EventLog) -> None:
    with pytest.raises(InvalidStreamId):
        log.list_streams("nope")
    with pytest.raises(DynafoldError):
        log.list_streams("sku", token="bm90IGEgdG9rZW4=")
