"""What the console draws, by hand: the readers' lag chart, a SKU's counts and levels over time, a
delivery's time line, an event's trace graph, and which page a stream id links to."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from events.envelope import NewEvent, RecordedEvent
from events.memory import InMemoryEventLog
from processors.console.charts import lag_chart, stock_chart
from processors.console.graph import layout
from processors.console.render import subject_href
from processors.console.timeline import timeline
from projections.health.metrics import Point, Series

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=timezone.utc)


def history(stream: str, *events: tuple[str, dict[str, object]]) -> list[RecordedEvent]:
    """The events as a log stores and reads them back, a second apart from T0."""
    ticks = iter(range(1000))
    log = InMemoryEventLog(clock=lambda: T0 + timedelta(seconds=next(ticks)))
    for kind, data in events:
        log.append(stream, [NewEvent(kind, data)])
    return log.read_stream(stream)


def test_the_lag_chart_has_a_point_per_period_and_gaps_where_no_datapoint_came() -> None:
    end = T0 + timedelta(minutes=5, seconds=30)
    lag = Series((Point(T0 + timedelta(minutes=1), 2.0), Point(T0 + timedelta(minutes=4), 0.5)), period=60)
    chart = lag_chart({"projector": lag, "reactor": Series(period=60)}, end, timedelta(minutes=5), 60)
    assert chart["times"] == [int((T0 + timedelta(minutes=n)).timestamp()) for n in range(6)]
    assert chart["series"] == {"projector": [None, 2.0, None, None, 0.5, None], "reactor": [None] * 6}


def test_the_stock_chart_follows_the_fold_after_each_event() -> None:
    events = history(
        "sku:A",
        ("dynafold.inventory.physical_count_set.v1", {"sku": "A", "physical": 10}),
        ("dynafold.inventory.buffer_set.v1", {"sku": "A", "buffer": 3}),
        ("dynafold.inventory.shopify_item_linked.v1", {"sku": "A", "inventory_item_id": "11", "source": "admin"}),
        ("dynafold.inventory.shopify_level.v1", {"sku": "A", "inventory_item_id": "11", "location_id": "9",
                                                 "available": 4, "updated_at": "2026-01-01T12:00:05Z",
                                                 "counted": True}),
        ("dynafold.inventory.stock_adjusted.v2", {"sku": "A", "delta": -2}),
    )
    chart = stock_chart("A", events)
    assert chart["series"] == {"physical": [10, 10, 10, 10, 8], "available": [10, 7, 7, 7, 5],
                               "item 11 @ 9": [None, None, None, 4, 4]}
    assert len(chart["times"]) == 5 and chart["stepped"] and chart["cut"] == 0


def test_a_delivery_time_line_marks_attempts_retries_and_when_it_gives_up() -> None:
    events = history(
        "delivery:u:m",
        ("dynafold.delivery.message_received.v1", {"message_id": "m", "sender_id": "u",
                                                   "target_url": "https://example.com/hook", "payload": {}}),
        ("dynafold.delivery.attempted.v1", {"attempt": 1, "success": False, "category": "SERVER_ERROR",
                                            "retryable": True, "status_code": 503, "response_time_ms": 5}),
        ("dynafold.delivery.retry_scheduled.v1", {"attempt": 1, "next_retry_at": "2026-01-01T12:00:10Z",
                                                  "delay_seconds": 1, "exponential_delay": 1, "jitter": 0}),
    )
    facts = {"next_retry_at": "2026-01-01T12:00:10.000000Z", "next_attempt": 2,
             "gives_up_earliest": "2026-01-01T12:00:20.000000Z", "gives_up_by": "2026-01-01T12:01:00.000000Z"}
    drawn = timeline(events, facts)
    assert [mark.kind for mark in drawn.marks] == ["received", "failed", "scheduled", "next", "gives-up"]
    xs = [mark.x for mark in drawn.marks]
    assert xs == sorted(xs) and xs[0] == 20 and xs[-1] == drawn.width - 20  # the latest give-up ends the line
    assert drawn.window is not None and drawn.window[0] < drawn.window[1] == xs[-1]
    assert "attempt 1, HTTP 503" in drawn.marks[1].title


def test_the_trace_graph_draws_a_lane_per_stream_and_an_arrow_per_cause_in_the_trace() -> None:
    nodes = [
        {"id": "a", "stream": "order:1", "version": 1, "type": "t", "causation_id": None, "relation": "cause"},
        {"id": "b", "stream": "order:1", "version": 2, "type": "t", "causation_id": "a", "relation": "asked"},
        {"id": "c", "stream": "alert:x", "version": 1, "type": "t", "causation_id": "b", "relation": "effect"},
        {"id": "d", "stream": "alert:y", "version": 1, "type": "t", "causation_id": "gone", "relation": "effect"},
    ]
    graph = layout(nodes)
    assert [stream for stream, _ in graph.lanes] == ["order:1", "alert:x", "alert:y"]
    assert len(graph.edges) == 2  # a -> b, b -> c; d's cause is not in the trace
    assert [node.relation for node in graph.nodes] == ["cause", "asked", "effect", "effect"]


def test_a_stream_id_links_to_the_page_that_explains_it_and_text_links_nowhere() -> None:
    assert subject_href("sku:PROD-1") == "/console/skus/PROD-1"
    assert subject_href("order:abc") == "/console/orders/abc"
    assert subject_href("delivery:u:m") == "/console/deliveries/u%3Am"
    assert subject_href("alert:x") == "/console/streams/alert/x"
    assert subject_href("javascript:alert(1)") == "" and subject_href("plain words") == "" and subject_href(None) == ""
