"""The trace's pure side: events placed under their causes, relative to the event asked about."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from events.alerts import AlertRead
from events.envelope import RecordedEvent
from projections.causation import ASKED, CAUSE, EFFECT, SAME_REQUEST, explain_trace, trace_nodes

T0 = datetime(2026, 1, 1, 10, 0, tzinfo=timezone.utc)


def event(event_id: str, minute: int, cause: str | None = None, source: str = "urn:dynafold:reactor",
          correlation: str = "req-1") -> RecordedEvent:
    return RecordedEvent(stream=f"alert:{event_id}", version=1, id=event_id, type="dynafold.alerts.read.v1",
                         source=source, time=T0 + timedelta(minutes=minute), data=AlertRead(alert_id=event_id),
                         correlation_id=correlation, causation_id=cause, prev_hash="0" * 64, hash="1" * 64)


# root -> a -> b -> c, and root -> d (a sibling branch); all one request.
ROOT = event("root", 0, source="urn:dynafold:inflow")
A, B, C, D = event("a", 1, "root"), event("b", 2, "a"), event("c", 3, "b"), event("d", 4, "root")


def test_an_events_causes_and_effects_are_told_apart_from_the_rest_of_its_request():
    nodes = trace_nodes([D, C, B, A, ROOT, A], asked=B)  # any order, duplicates once
    assert [(n.event.id, n.depth, n.relation) for n in nodes] == [
        ("root", 0, CAUSE), ("a", 1, CAUSE), ("b", 2, ASKED), ("c", 3, EFFECT), ("d", 1, SAME_REQUEST)]
    assert nodes[3].cause is B and nodes[0].cause is None


def test_the_answer_says_where_the_event_came_from_and_what_it_caused():
    answer = explain_trace("b", trace_nodes([ROOT, A, B, C, D], asked=B))
    assert answer.answer == ("alerts.read on alert:b (version 1) goes back to alerts.read on alert:root (version 1), "
                             "which came in from InFlow's webhook (request req-1), through 1 event in between; "
                             "it caused 1 event.")
    assert [s.title for s in answer.sections] == ["What caused it", "The event asked about", "What it caused",
                                                  "Also in the same request"]
    assert answer.event_ids == ("root", "a", "b", "c", "d") and answer.facts["matched"] == "event"


def test_a_request_trace_and_a_cause_missing_from_the_log():
    orphan = event("o", 5, cause="gone")
    answer = explain_trace("req-1", trace_nodes([ROOT, A, orphan]))
    assert answer.facts["matched"] == "correlation" and {n["relation"] for n in answer.facts["events"]} == {SAME_REQUEST}
    assert "led to 3 events in 3 streams, starting from 1 that came in from outside" in answer.answer
    assert "caused by event gone, which is not in this trace" in answer.sections[0].sentences[-1]
