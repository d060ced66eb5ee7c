"""The pure side of `dynafold status` (projections/health/): metric series as CloudWatch buckets them,
an alarm's evaluation, and the summary in words with what needs attention."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from projections.alerts.fold import Alert
from projections.health.alarms import ALARM, INSUFFICIENT_DATA, OK, AlarmRule, AlarmState
from projections.health.metrics import MetricQuery, Point, Sample, Series, aligned, series_of
from projections.health.status import (
    AlarmsReading,
    FailureCount,
    Position,
    ReaderReading,
    RebuildRun,
    duration,
    summarise,
)

T0 = datetime(2026, 12, 1, 10, 0, tzinfo=timezone.utc)
FAILED = MetricQuery.of("failed", "dynafold", "RecordsFailed", {"service": "projector"}, "Sum")


def sample(name, value, seconds, **dimensions):
    return Sample("dynafold", name, frozenset(dimensions.items()), T0 + timedelta(seconds=seconds), value)


# ----------------------------------------------------------------------------- metrics

def test_a_series_is_the_statistic_per_period_of_the_metric_with_exactly_its_dimensions():
    samples = [sample("RecordsFailed", 2, 5, service="projector"), sample("RecordsFailed", 3, 59, service="projector"),
               sample("RecordsFailed", 7, 130, service="projector"),
               # the same name with another dimension set is another metric (CloudWatch matches the whole set)
               sample("RecordsFailed", 100, 10, service="projector", view="inventory"),
               sample("RecordsFailed", 100, 10, service="reactor"), sample("RecordsFailed", 100, 300, service="projector")]
    series = series_of(samples, FAILED, T0, T0 + timedelta(minutes=5), 60)
    assert series.points == (Point(T0, 5.0), Point(T0 + timedelta(minutes=2), 7.0))  # no point where no data
    assert (series.total, series.peak, series.latest) == (12.0, 7.0, Point(T0 + timedelta(minutes=2), 7.0))
    maximum = MetricQuery.of("m", "dynafold", "RecordsFailed", {"service": "projector"}, "Maximum")
    assert [p.value for p in series_of(samples, maximum, T0, T0 + timedelta(minutes=5), 60).points] == [3.0, 7.0]
    assert series.scaled(0.5).points[0].value == 2.5


def test_periods_are_counted_from_the_epoch_and_queries_are_checked():
    assert aligned(T0 + timedelta(seconds=61), 60) == T0 + timedelta(seconds=60)
    assert aligned(T0 + timedelta(minutes=7), 300) == T0 + timedelta(minutes=5)
    with pytest.raises(ValueError, match="statistic"):
        MetricQuery.of("q", "dynafold", "X", {}, "p99")
    with pytest.raises(ValueError, match="id"):
        MetricQuery.of("Bad-Id", "dynafold", "X", {}, "Sum")


# ----------------------------------------------------------------------------- alarms

def rule(**overrides):
    settings = dict(name="dead-lettered", description="", query=FAILED, period=300, evaluation_periods=3,
                    datapoints_to_alarm=2, threshold=0, comparison="GreaterThanThreshold", treat_missing="notBreaching")
    return AlarmRule(**{**settings, **overrides})


@pytest.mark.parametrize("values, treat, state", [
    ([0, 1, 1], "notBreaching", ALARM),  # 2 of 3 breach
    ([1, 0, 0], "notBreaching", OK),  # 1 of 3 is not enough
    ([None, 1, None], "notBreaching", OK),  # missing counts as good
    ([None, 1, None], "breaching", ALARM),  # missing counts as bad: 3 of 3
    ([None, None, None], "missing", INSUFFICIENT_DATA),
    ([None, None, None], "ignore", INSUFFICIENT_DATA),
    ([None, None, None], "breaching", ALARM),  # a heartbeat alarm: silence is a failure
    ([None, 0, None], "missing", OK),
])
def test_an_alarm_is_in_alarm_when_enough_of_its_last_periods_breach(values, treat, state):
    assert rule(treat_missing=treat).evaluate(values, T0).state == state


def test_an_alarm_says_why_in_words():
    state = rule().evaluate([0, 1, 2], T0)
    assert state.reason == ("2 of the last 3 5-minute period(s) [0, 1, 2] breached (greater than the threshold 0); "
                            "it alarms at 2")
    silent = rule(treat_missing="breaching", evaluation_periods=1, datapoints_to_alarm=1).evaluate([None], T0)
    assert silent.reason == ("1 of the last 1 5-minute period(s) [no data] breached (greater than the threshold 0; "
                             "a period without data counts as breaching); it alarms at 1")
    with pytest.raises(ValueError, match="DatapointsToAlarm"):
        rule(datapoints_to_alarm=4)


# ----------------------------------------------------------------------------- the summary

def caught_up(reader, unit="event"):
    return ReaderReading(reader, Series(), f"{reader}'s basis", Position(0.0, 0, T0, T0), unit=unit)


def failures(**totals):
    return [FailureCount(key, key.replace("_", " "), Series((Point(T0, float(totals.get(key, 0))),)))
            for key in ("records_failed", "records_given_up", "dead_lettered")]


def status(readers=None, counts=None, alerts=(), alarms=(), rebuilds=()):
    return summarise(now=T0, window=timedelta(hours=1),
                     readers=readers or [caught_up("projector"), caught_up("reactor"),
                                         caught_up("stream-failures", "failed batch")],
                     failures=counts or failures(), failure_alerts=list(alerts),
                     alarms=AlarmsReading(tuple(alarms), "the test's alarms", ("x: reported on AWS only",)),
                     versions={"inventory": "v2", "alerts": "v1"}, versions_source="views.json",
                     rebuilds=list(rebuilds))


def test_a_healthy_stack_says_so_and_everything_it_looked_at():
    healthy = status()
    assert healthy.healthy and healthy.attention == ()
    text = healthy.text()
    assert text.startswith("Healthy: every reader is within 1m of the log, nothing failed or was dead-lettered "
                           "in the last 1h, and no alarm is in ALARM.")
    assert "projector: caught up; the last event it applied, 2026-12-01T10:00:00.000000Z, is the newest." in text
    assert "Active view versions (views.json):\n  alerts v1, inventory v2" in text
    assert "Rebuilds:\n  none in progress" in text
    as_json = healthy.to_dict()
    assert as_json["healthy"] and as_json["versions"] == {"alerts": "v1", "inventory": "v2"}
    assert as_json["alarms"]["not_evaluated"] == ["x: reported on AWS only"]


def test_a_reader_behind_the_threshold_needs_attention_and_says_how_far_and_what_waits():
    behind = ReaderReading("reactor", Series((Point(T0, 2.0), Point(T0 + timedelta(minutes=1), 75.0))), "basis",
                           Position(75.5, 12, T0 + timedelta(seconds=75.5), T0))
    answer = status(readers=[caught_up("projector"), behind])
    assert not answer.healthy
    assert answer.attention == ("the reactor is 1m16s behind (more than 1m)",)
    [_, reactor] = answer.readers
    assert reactor.sentence == ("reactor: 1m16s behind: 12 events not yet applied (newest 2026-12-01T10:01:15.500000Z, "
                                "last applied 2026-12-01T10:00:00.000000Z); peak 1m15s in the window.")
    assert reactor.to_dict()["lag_series"]["points"][1] == {"time": "2026-12-01T10:01:00.000000Z", "value": 75.0}


def test_without_a_position_the_lag_is_the_metrics_newest_datapoint_and_without_one_it_is_unknown():
    measured = ReaderReading("projector", Series((Point(T0, 0.4),)), "IteratorAge of FunctionName=p")
    silent = ReaderReading("reactor", Series(), "IteratorAge of FunctionName=r", unknown="no checkpoint here")
    projector, reactor = status(readers=[measured, silent]).readers
    assert (projector.lag_seconds, projector.as_of, projector.behind) == (0.4, T0, False)
    assert projector.sentence.startswith("projector: 0.4 s behind at its last measure (2026-12-01T10:00:00.000000Z)")
    assert (reactor.lag_seconds, reactor.behind) == (None, False)
    assert reactor.sentence == "reactor: lag not known: no checkpoint here; IteratorAge of FunctionName=r."


def test_failures_alarms_and_alerts_need_attention_each_said_once():
    dead = Alert(alert_id="a1", alert_type="delivery_dead_lettered", severity="critical", subject="delivery:u:m",
                 message="delivery u:m dead-lettered after 4 attempts", time="2026-12-01T09:59:00.000000Z")
    failed = Alert(alert_id="a2", alert_type="record_failed", severity="critical", subject="consumer:dynafold-reactor",
                   message="dynafold-reactor gave up on 1 record(s)", time="2026-12-01T09:58:00.000000Z")
    alarm = AlarmState("dynafold-deliveries-dead-lettered", ALARM, "1 of the last 1 ... was greater", T0)
    answer = status(counts=failures(dead_lettered=1), alerts=[dead, failed], alarms=[alarm])
    # The dead letter is counted by its metric, so its alert is not said again; the failed record's
    # metric saw nothing (yet), so its alert is what says so.
    assert answer.attention == ("dead lettered: 1 in the last 1h", "record_failed alerts: 1 raised in the last 1h",
                                "alarm dynafold-deliveries-dead-lettered is in ALARM")
    text = answer.text()
    assert "2026-12-01T09:59:00.000000Z delivery_dead_lettered a1: delivery u:m dead-lettered after 4 attempts" in text
    assert "dynafold-deliveries-dead-lettered: 1 of the last 1 ... was greater" in text


def test_a_rebuild_in_progress_is_said_but_needs_no_attention():
    run = RebuildRun(("inventory",), "filling", 3, 4, ".dynafold/rebuilds/dynafold-inventory.json", events=1234,
                     updated=T0)
    answer = status(rebuilds=[run])
    assert answer.healthy
    assert ("rebuild of inventory: filling, 3 of 4 segments, 1,234 events; last progress 2026-12-01T10:00:00.000000Z "
            "(.dynafold/rebuilds/dynafold-inventory.json)") in answer.text()


@pytest.mark.parametrize("seconds, said", [(3.24, "3.2 s"), (60, "1m"), (95, "1m35s"), (3600, "1h"), (7260, "2h01m")])
def test_durations_read_like_a_person_would_say_them(seconds, said):
    assert duration(seconds) == said
