"""The cost model's arithmetic, by hand, and the README's table as the model prints it."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest

from processors.cli.main import main
from processors.operations.cost import (
    DEFAULT_ASSUMPTIONS,
    DEFAULT_MIX,
    PRICES,
    Assumptions,
    EventClass,
    FunctionLoad,
    Shape,
    estimate,
    markdown,
    shape_from_template,
    write_units,
)
from processors.operations.template import load_template

ROOT = Path(__file__).resolve().parents[2]
FUNCTIONS = ("ProjectorFunction", "ReactorFunction", "IngestFunction", "DeliveryWorkerFunction", "ErrorMonitorFunction")


def tiny_shape(indexes=None, event_indexes=0, batch=10) -> Shape:
    return Shape(indexes={"f": indexes or {}}, event_indexes=event_indexes, memory_mb=dict.fromkeys(FUNCTIONS, 1024),
                 arm64=dict.fromkeys(FUNCTIONS, True), batch_size={**dict.fromkeys(FUNCTIONS, batch)}, tables=1, alarms=0)


def tiny_assumptions(event: EventClass) -> Assumptions:
    return Assumptions(mix=(event,), load=dict.fromkeys(FUNCTIONS, FunctionLoad(base_ms=100, per_record_ms=10)),
                       log_bytes_per_invocation=1000, access_log_bytes=0, custom_metrics=0, dashboards=0,
                       cold_starts_per_function_per_day=0, kms_principals=0, sqs_idle_receives_per_month=0)


def test_the_template_shape():
    shape = shape_from_template(load_template())
    assert shape.event_indexes == 3  # by-type-shard-time, by-correlation, by-id (KEYS_ONLY)
    assert shape.stream_catalogue  # by-category: sparse, written per new stream, not counted above
    assert shape.indexes["delivery-status"] == {"by-message": True, "by-status": True, "by-sender": True}
    assert shape.indexes["inventory"] == {}
    assert {shape.memory_mb[name] for name in shape.triggered} == {512} and all(shape.arm64.values())
    # the rebuild's functions run only when its state machine starts them: no daily cold starts
    assert "RebuildSegmentFunction" in shape.memory_mb and "RebuildSegmentFunction" not in shape.triggered
    assert "StreamFailuresFunction" in shape.triggered
    assert (shape.batch_size["ProjectorFunction"], shape.batch_size["ReactorFunction"],
            shape.batch_size["DeliveryWorkerFunction"], shape.batch_size["IngestFunction"]) == (100, 25, 5, 1)


def test_a_delivery_retry_moves_two_index_entries_at_two_writes_each():
    shape = shape_from_template(load_template())
    [retry] = [e for e in DEFAULT_MIX if e.name.startswith("delivery attempt")]
    # append: the guard, then the event, one put each; three KEYS_ONLY event indexes; the checkpoint the
    # projector seals; the row; by-message updated in place (1), by-status and by-sender moved (2 + 2);
    # nothing in the stream catalogue (the delivery's stream exists).
    assert write_units(retry, shape) == {"append": 2, "event indexes": 3, "stream catalogue": 0, "checkpoint": 1,
                                         "view row": 1, "view indexes": 5}


def test_a_stream_enters_the_catalogue_once_at_one_write():
    shape = shape_from_template(load_template())
    [received] = [e for e in DEFAULT_MIX if e.name.startswith("message received")]
    assert write_units(received, shape)["stream catalogue"] == 1  # a keys-only entry for the new delivery stream
    # the mix's share of stream-creating events: orders validated, messages received, alerts raised
    total = sum(e.share * write_units(e, shape)["stream catalogue"] for e in DEFAULT_MIX)
    assert math.isclose(total, 0.20 + 0.10 + 0.05)


def test_an_unchanged_key_costs_nothing_in_a_keys_only_index_and_one_write_in_an_all_index():
    event = EventClass("e", 1.0, "f", "update", {"keys": "same", "all": "same"}, idempotency_key=False)
    assert write_units(event, tiny_shape({"keys": False, "all": True}))["view indexes"] == 1


def test_every_template_index_needs_a_decision_in_the_mix():
    event = EventClass("e", 1.0, "f", "update", {})
    with pytest.raises(ValueError, match="index effects"):
        write_units(event, tiny_shape({"new-index": True}))


def test_shares_must_add_up_to_one():
    with pytest.raises(ValueError, match="add up to"):
        estimate(tiny_shape(), tiny_assumptions(EventClass("e", 0.5, "f", "update", {})))


def test_one_class_by_hand():
    event = EventClass("e", 1.0, "f", "update", {"i": "move"}, idempotency_key=False, via_http=True,
                       reactor_reads=2, sqs_sends=1, jobs_run=1)
    result = estimate(tiny_shape({"i": True}, event_indexes=1), tiny_assumptions(event))
    lines = {line.item: line.usd for line in result.per_million_busy}
    # writes: append 1 + event index 1 + checkpoint 1 + row 1 + move 2 = 6 per event
    assert math.isclose(lines["DynamoDB writes"], 6 * 0.625)
    # reads: head 1 + row 1 + reactor 2 = 4 per event
    assert math.isclose(lines["DynamoDB reads"], 4 * 0.125)
    # 1 M records to each of projector, reactor, ingest, worker; batches of 10 -> 100,000 invocations
    # each: 100,000 x 0.1 s + 1,000,000 x 0.01 s = 20,000 s at 1 GB; 4 functions.
    assert math.isclose(lines["Lambda, full batches"], 4 * (20_000 * 0.0000133334 + 100_000 * 0.2e-6))
    assert math.isclose(result.trickle_lambda.usd, 4 * (1_000_000 * 0.11 * 0.0000133334 + 1_000_000 * 0.2e-6))
    assert math.isclose(lines["HTTP API"], 1.00)
    # SQS: 1 send + (receive + delete) per batch of 10 jobs = 1.2 requests per event
    assert math.isclose(lines["SQS"], 1.2 * 0.40)
    # logs: 400,000 invocations x 1,000 bytes = 0.4 GB
    assert math.isclose(lines["CloudWatch Logs"], 0.4 * 0.50)
    assert math.isclose(result.per_million(), sum(lines.values()))
    assert math.isclose(result.storage_per_million_month, 1.25e6 / 1024 / 1024 * (0.25 + 0.20))  # event + checkpoint


def test_a_month_at_a_rate_adds_up():
    result = estimate(shape_from_template(load_template()), DEFAULT_ASSUMPTIONS)
    millions = 2 * 30 * 24 * 3600 / 1e6
    assert math.isclose(result.monthly(2.0), millions * (result.per_million() + result.storage_per_million_month)
                        + result.xray(2.0) + result.fixed())
    assert result.per_million(trickle=True) > result.per_million()
    assert {line.item for line in result.fixed_monthly} >= {"Lambda INIT (billed)", "KMS (SSE, AWS managed key)"}


def test_xray_traces_the_first_request_each_second_then_five_percent():
    event = EventClass("e", 1.0, "f", "update", {}, idempotency_key=False)
    result = estimate(tiny_shape(batch=1), tiny_assumptions(event))  # 2 invocations per event (stream readers)
    month = 30 * 24 * 3600
    assert math.isclose(result.xray(0.25), 0.5 * month * 5e-6)  # under 1 invocation/s: every one traced
    assert math.isclose(result.xray(10.0), (1 + 0.05 * 19) * month * 5e-6)


def test_prices_name_their_source():
    assert all(p.source.startswith("https://aws.amazon.com/") and p.usd > 0 for p in PRICES.values())


def readme_table() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    found = re.search(r"<!-- cost-table: generated by `dynafold cost --markdown`.*?-->\n(.*?)\n<!-- /cost-table -->",
                      text, re.DOTALL)
    assert found, "the README's cost table markers are missing"
    return found.group(1)


def test_the_readme_table_is_the_models():
    result = estimate(shape_from_template(load_template()), DEFAULT_ASSUMPTIONS)
    assert readme_table() == markdown(result), "regenerate: dynafold cost --markdown"


def test_cost_command(capsys):
    assert main(["cost", "--json", "--rate", "10"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["events_per_second"] == 10 and printed["monthly_busy"] > printed["fixed_monthly"]["Dashboard"]["usd"]
    assert main(["cost", "--rate", "0"]) == 2
    err = capsys.readouterr().err
    assert "events per second" in err and len(err.strip().splitlines()) == 1


def test_a_metric_math_alarm_is_billed_for_each_metric_it_reads():
    """CloudWatch prices alarms per alarm metric (https://aws.amazon.com/cloudwatch/pricing/)."""
    alarm = {"Type": "AWS::CloudWatch::Alarm", "Properties": {"MetricName": "Errors", "Namespace": "AWS/Lambda"}}
    math_alarm = {"Type": "AWS::CloudWatch::Alarm", "Properties": {"Metrics": [
        {"Id": "a", "MetricStat": {}}, {"Id": "b", "MetricStat": {}}, {"Id": "e", "Expression": "a + b"}]}}
    shape = shape_from_template({"Resources": {"One": alarm, "Two": math_alarm}})
    assert shape.alarms == 3
