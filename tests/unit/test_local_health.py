"""`dynafold status` locally: the metrics read back from the functions' EMF lines, template.yaml's
alarms evaluated over them, and the rebuilds a progress file says are unfinished."""

from __future__ import annotations

import json
import os
import time
from datetime import datetime, timedelta, timezone

import pytest

from processors.local.emf_metrics import EmfMetrics, samples_of
from processors.local.platform_metrics import PLATFORM_DIR, PlatformMetrics
from processors.local.rebuilds import LocalRebuilds
from processors.local.template_alarms import TemplateAlarms
from projections.health.metrics import MetricQuery
from projections.rebuild.plan import RebuildProgress

NOW = datetime.now(timezone.utc)

# Lines as Powertools 3.37 prints them (copied from .dynafold/logs/dynafold-delivery-worker.log after
# `dynafold demo`): one directive, the service dimension, values as arrays.
WORKER_LINE = ('{"_aws":{"Timestamp":%d,"CloudWatchMetrics":[{"Namespace":"dynafold","Dimensions":[["service"]],'
               '"Metrics":[{"Name":"DeliveryAttempts","Unit":"Count"},{"Name":"DeliveryLatency","Unit":"Milliseconds"},'
               '{"Name":"DeliveriesDeadLettered","Unit":"Count"}]}]},"service":"delivery-worker",'
               '"DeliveryAttempts":[1.0,1.0],"DeliveryLatency":[2.861,5.1],"DeliveriesDeadLettered":[1.0]}')
SINGLE_METRIC_LINE = ('{"_aws":{"Timestamp":%d,"CloudWatchMetrics":[{"Namespace":"dynafold","Dimensions":'
                      '[["service","severity"]],"Metrics":[{"Name":"AlertsRaised","Unit":"Count"}]}]},'
                      '"service":"reactor","severity":"critical","AlertsRaised":1}')
MONITOR_LINE = ('{"_aws":{"Timestamp":%d,"CloudWatchMetrics":[{"Namespace":"dynafold","Dimensions":[["service"]],'
                '"Metrics":[{"Name":"MonitorRuns","Unit":"Count"}]}]},"service":"error-monitor","MonitorRuns":[1.0]}')


def ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def write(logs, function, *lines):
    logs.mkdir(parents=True, exist_ok=True)
    with open(logs / f"dynafold-{function}.log", "a", encoding="utf-8") as out:
        out.write("".join(line + "\n" for line in lines))


def test_every_value_of_an_emf_line_is_a_sample_and_anything_else_is_none():
    [a1, _, l1, l2, dead] = samples_of(WORKER_LINE % ms(NOW))
    assert (a1.namespace, a1.name, a1.dimensions, a1.value) == ("dynafold", "DeliveryAttempts",
                                                                frozenset({("service", "delivery-worker")}), 1.0)
    assert (l1.value, l2.value, dead.name) == (2.861, 5.1, "DeliveriesDeadLettered")
    [raised] = samples_of(SINGLE_METRIC_LINE % ms(NOW))
    assert raised.dimensions == frozenset({("service", "reactor"), ("severity", "critical")})
    assert samples_of('{"level":"INFO","message":"request"}') == []
    assert samples_of('{"_aws": {"Timestamp": "soon"}}') == []
    assert samples_of('{"_aws":{"Timestamp":1,"CloudWatchMetrics":[{"Namespace":"d","Dimensions":[["service"]],'
                      '"Metrics":[{"Name":"X"}]}]},"X":[1]}') == []  # a dimension the line does not carry


def test_the_local_metrics_answer_a_metric_question_from_the_logs_and_the_platform_lines(tmp_path):
    write(tmp_path, "delivery-worker", WORKER_LINE % ms(NOW - timedelta(minutes=3)), "not json at all",
          WORKER_LINE % ms(NOW - timedelta(hours=2)))
    PlatformMetrics(tmp_path / PLATFORM_DIR).put("AWS/Lambda", "IteratorAge", "Milliseconds", 850.0,
                                                 {"FunctionName": "dynafold-projector"})
    metrics = EmfMetrics(tmp_path)
    dead = MetricQuery.of("dead", "dynafold", "DeliveriesDeadLettered", {"service": "delivery-worker"}, "Sum")
    age = MetricQuery.of("age", "AWS/Lambda", "IteratorAge", {"FunctionName": "dynafold-projector"}, "Maximum")
    end = datetime.now(timezone.utc) + timedelta(seconds=5)  # the platform line is stamped with the wall clock
    found = metrics.series([dead, age], NOW - timedelta(hours=1), end, 60)
    assert found["dead"].total == 1.0  # the line two hours ago is outside the window
    assert [p.value for p in found["age"].points] == [850.0]
    assert metrics.provides("AWS/Lambda", "IteratorAge") and not metrics.provides("AWS/Lambda", "Errors")


@pytest.fixture
def alarms(tmp_path):
    metrics = EmfMetrics(tmp_path)
    return TemplateAlarms(metrics, stack="dynafold", namespace="dynafold",
                          queues={"StreamFailureQueue": "dynafold-stream-failures"})


def names(reading):
    return [alarm.name for alarm in reading.in_alarm]


def test_the_templates_alarms_are_evaluated_over_the_local_metrics(tmp_path, alarms):
    rules, skipped = alarms.rules()
    assert {rule.name for rule in rules} == {
        "dynafold-projector-failures", "dynafold-projector-iterator-age", "dynafold-reactor-iterator-age",
        "dynafold-error-monitor-not-running", "dynafold-deliveries-dead-lettered", "dynafold-stream-failures-queued"}
    # What only AWS reports is said, not silently skipped.
    assert "dynafold-projector-errors: AWS/Lambda Errors is reported on AWS only" in skipped
    assert "dynafold-no-successful-delivery: a metric-math alarm (evaluated on AWS only)" in skipped
    assert "dynafold-delivery-dlq-messages: !GetAtt DeliveryDeadLetterQueue.QueueName has no local counterpart" \
        in skipped

    # Nothing ran: the heartbeat alarm breaches on silence, as on AWS.
    assert names(alarms.in_alarm(NOW)) == ["dynafold-error-monitor-not-running"]

    write(tmp_path, "error-monitor", MONITOR_LINE % ms(NOW - timedelta(minutes=4)))
    write(tmp_path, "delivery-worker", WORKER_LINE % ms(NOW - timedelta(minutes=2)))
    [dead] = alarms.in_alarm(NOW).in_alarm
    assert dead.name == "dynafold-deliveries-dead-lettered"
    assert dead.reason == "1 of the last 1 5-minute period(s) [1] breached (greater than the threshold 0); it alarms at 1"
    assert "exhausted its retries" in dead.description
    assert names(alarms.in_alarm(NOW + timedelta(minutes=4))) == []  # five minutes on, the period has passed


def test_a_reader_behind_for_three_periods_raises_its_iterator_age_alarm(tmp_path, alarms):
    write(tmp_path, "error-monitor", MONITOR_LINE % ms(NOW - timedelta(minutes=1)))
    platform = tmp_path / PLATFORM_DIR
    platform.mkdir()
    lines = [json.dumps({"_aws": {"Timestamp": ms(NOW - timedelta(minutes=minutes)), "CloudWatchMetrics": [
        {"Namespace": "AWS/Lambda", "Dimensions": [["FunctionName"]],
         "Metrics": [{"Name": "IteratorAge", "Unit": "Milliseconds"}]}]},
        "FunctionName": "dynafold-reactor", "IteratorAge": 90_000}) for minutes in (1, 6, 11)]
    (platform / "AWS-Lambda.log").write_text("\n".join(lines[1:]) + "\n")
    assert names(alarms.in_alarm(NOW)) == []  # two periods of three: not yet
    (platform / "AWS-Lambda.log").write_text("\n".join(lines) + "\n")
    assert names(alarms.in_alarm(NOW)) == ["dynafold-reactor-iterator-age"]


def test_an_unfinished_rebuild_is_in_progress_and_a_finished_one_is_not(tmp_path):
    directory = tmp_path / "rebuilds"
    directory.mkdir()
    unfinished = RebuildProgress(["inventory"], {"inventory": "dynafold-inventory-v2"}, 4, done_segments=[0, 2],
                                 events=120)
    (directory / "dynafold-inventory.json").write_text(json.dumps(unfinished.to_json()))
    finished = RebuildProgress(["alerts"], {"alerts": "dynafold-alerts-v2"}, 4, [0, 1, 2, 3], finished=True)
    (directory / "dynafold-alerts.json").write_text(json.dumps(finished.to_json()))
    (directory / "dynafold-aws-execution.json").write_text(json.dumps({"execution_arn": "arn:x"}))
    moved = time.time() - 90
    os.utime(directory / "dynafold-inventory.json", (moved, moved))
    [run] = LocalRebuilds(directory).in_progress()
    assert (run.views, run.done, run.total, run.events) == (("inventory",), 2, 4, 120)
    assert run.phase.startswith("filling (running, or interrupted: the same command resumes it)")
    assert run.updated is not None and abs(run.updated.timestamp() - moved) < 1
    assert LocalRebuilds(tmp_path / "nowhere").in_progress() == []


def test_the_local_metrics_read_only_what_was_appended_since_and_again_a_replaced_file(tmp_path):
    dead = MetricQuery.of("dead", "dynafold", "DeliveriesDeadLettered", {"service": "delivery-worker"}, "Sum")
    window = (NOW - timedelta(hours=1), NOW + timedelta(minutes=1))
    write(tmp_path, "delivery-worker", WORKER_LINE % ms(NOW - timedelta(minutes=3)))
    metrics = EmfMetrics(tmp_path)
    assert metrics.series([dead], *window, 60)["dead"].total == 1.0
    path = tmp_path / "dynafold-delivery-worker.log"
    with path.open("a", encoding="utf-8") as out:  # one more line, and half of another still being written
        out.write(WORKER_LINE % ms(NOW - timedelta(minutes=2)) + "\n" + (WORKER_LINE % ms(NOW))[:20])
    assert metrics.series([dead], *window, 60)["dead"].total == 2.0
    with path.open("a", encoding="utf-8") as out:
        out.write((WORKER_LINE % ms(NOW))[20:] + "\n")
    assert metrics.series([dead], *window, 60)["dead"].total == 3.0
    path.write_text(WORKER_LINE % ms(NOW - timedelta(minutes=1)) + "\n", encoding="utf-8")  # replaced: shorter
    assert metrics.series([dead], *window, 60)["dead"].total == 1.0
