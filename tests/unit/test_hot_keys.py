"""The hot-key analysis of `dynafold cost --rate R` (processors/operations/partitions.py): its arithmetic
by hand, and the template at the rate the project claims: no partition key value over DynamoDB's
per-key limits at 10,000 events/s of the seeds' mix, because the write-hot keys are sharded."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest

from events import catalogue
from processors.cli.main import main
from processors.operations.cost import DEFAULT_MIX, Assumptions, EventClass, FunctionLoad
from processors.operations.measured import BATCH_TIMES
from processors.operations.partitions import ENTITY, ONCE, TRAFFIC, Traffic, analyse, markdown, sharded_buckets
from processors.operations.template import Tag

ROOT = Path(__file__).resolve().parents[2]
RATE = 10_000  # events/s: the rate the project claims (issue 21)


def test_no_key_over_a_limit_at_10000_events_per_second():
    path = analyse(RATE)
    assert path.over == [], [(k.table, k.index, k.value, k.write_units, k.read_units) for k in path.over]
    assert {(k.table, k.index) for k in path.keys} >= {("events", None), ("events", "by-type-shard-time"),
                                                         ("delivery-status", "by-status"), ("alerts", "by-unread")}


def test_the_projector_keeps_up_with_a_shard_at_10000_events_per_second():
    """Its ParallelizationFactor default against its recorded batch time (make bench). The reactor's
    stays 1 (template.yaml) and the analysis reports what it would need (README "Hot keys")."""
    path = analyse(RATE)
    assert path.shards >= 10  # at least one partition per 1,000 write units of events
    [projector] = [c for c in path.consumers if c.function == "ProjectorFunction"]
    assert projector.keeps_up, (f"raise ProjectorParallelizationFactor's default to {projector.factor_needed} "
                                f"(it takes {projector.capacity:.0f} of {projector.events_per_shard:.0f} events/s)")


def test_the_sharded_keys_are_what_holds_it():
    """Without their buckets the same keys take several times what one key value is given."""
    unsharded = analyse(RATE, buckets={})
    assert {(k.table, k.index) for k in unsharded.over} == set(sharded_buckets()) - {("alerts", "by-unread")}
    assert max(k.write_share for k in unsharded.over) > 3


def test_every_kind_of_event_has_its_keys_and_real_types():
    assert {event.name for event in DEFAULT_MIX} == set(TRAFFIC)
    stored = set(catalogue.stored_types())
    for traffic in TRAFFIC.values():
        assert set(traffic.types) <= stored and math.isclose(sum(traffic.types.values()), 1.0)


def tiny_template(factor=2) -> dict:
    """An event table with a type index, an idempotency table, one view table with a status index."""
    def table(name, key, indexes=()):
        return {"Type": "AWS::DynamoDB::Table", "Properties": {
            "TableName": Tag("Sub", f"${{AWS::StackName}}-{name}"),
            "KeySchema": [{"AttributeName": key, "KeyType": "HASH"}],
            "GlobalSecondaryIndexes": [{"IndexName": index, "KeySchema": [{"AttributeName": attr, "KeyType": "HASH"}],
                                        "Projection": {"ProjectionType": "ALL"}} for index, attr in indexes]}}

    def reader(batch):
        return {"Type": "AWS::Serverless::Function", "Properties": {"Events": {"S": {"Type": "DynamoDB", "Properties": {
            "BatchSize": batch, "ParallelizationFactor": Tag("Ref", "Factor")}}}}}

    resources = {"Events": table("events", "stream", [("by-type", "type_shard")]),
                 "Idempotency": table("idempotency", "key"),
                 "Rows": table("rows-v1", "row_id", [("by-status", "status_shard")]),
                 "ProjectorFunction": reader(100), "ReactorFunction": reader(25)}
    return {"Parameters": {"Factor": {"Default": factor}}, "Resources": resources}


MEASURED = {"ProjectorFunction": 500.0, "ReactorFunction": 100.0}


def tiny(event: EventClass, traffic: Traffic, template=None, measured=MEASURED, **kwargs):
    loads = dict.fromkeys(("ProjectorFunction", "ReactorFunction", "IngestFunction", "DeliveryWorkerFunction",
                           "ErrorMonitorFunction"), FunctionLoad(1, 1))
    return analyse(1000, template or tiny_template(), Assumptions(mix=(event,), load=loads), {event.name: traffic},
                   measured=measured, **kwargs)


def test_a_moved_entry_costs_its_old_value_a_delete_and_its_new_value_a_put():
    event = EventClass("e", 1.0, "rows", "update", {"by-status": "move"})
    path = tiny(event, Traffic({"t.v1": 1.0}, {"by-status": ("OLD", "NEW")}), buckets={})
    status = next(k for k in path.keys if k.index == "by-status")
    assert (status.value, status.write_units, status.buckets) == ("NEW", 1000, 1)  # OLD ties; either is hottest
    assert status.read_units == 128  # one 1 MB page of queries a second, eventually consistent
    by_type = next(k for k in path.keys if k.index == "by-type")
    assert (by_type.value, by_type.write_units) == ("t.v1", 1000)


def test_buckets_divide_a_named_value_never_the_busiest_entity():
    event = EventClass("e", 1.0, "rows", "insert", {"by-status": "insert"})
    path = tiny(event, Traffic({"t.v1": 0.5, "u.v1": 0.5}, {"by-status": (None, "NEW")}),
                buckets={("rows", "by-status"): 4, ("events", "by-type"): 5}, hot_entity_share=0.1)
    keys = {(k.table, k.index): k for k in path.keys}
    assert keys[("rows", "by-status")].write_units == 1000 / 4
    assert keys[("events", "by-type")].write_units == 500 / 5
    # the event table: 10% of 1,000 events/s on one stream, each event one put of 1 unit (a keyed
    # append puts its guard first, under its own key, once)
    assert (keys[("events", None)].value, keys[("events", None)].write_units) == (ENTITY, 100)
    assert (keys[("events", None)].read_units) == 100  # the stream head, strongly consistent
    assert (keys[("rows", None)].write_units, keys[("rows", None)].read_units) == (100, 100)
    assert (keys[("idempotency", None)].value, keys[("idempotency", None)].write_units) == (ONCE, 1)


def test_the_checkpoint_table_takes_the_busiest_streams_seals_and_by_id_each_id_once():
    """The projector seals the streams it sees (at most one checkpoint per event, under the stream);
    an event id is one index entry, written once."""
    template = tiny_template()
    resources = template["Resources"]
    resources["Checkpoints"] = {"Type": "AWS::DynamoDB::Table", "Properties": {
        "TableName": Tag("Sub", "${AWS::StackName}-checkpoints"),
        "KeySchema": [{"AttributeName": "stream", "KeyType": "HASH"}, {"AttributeName": "version", "KeyType": "RANGE"}]}}
    resources["Events"]["Properties"]["GlobalSecondaryIndexes"].append(
        {"IndexName": "by-id", "KeySchema": [{"AttributeName": "id", "KeyType": "HASH"}],
         "Projection": {"ProjectionType": "KEYS_ONLY"}})
    event = EventClass("e", 1.0, "rows", "insert", {"by-status": "absent"})
    keys = {(k.table, k.index): k for k in tiny(event, Traffic({"t.v1": 1.0}), template, hot_entity_share=0.1).keys}
    assert (keys[("checkpoints", None)].value, keys[("checkpoints", None)].write_units) == (ENTITY, 100)
    assert keys[("events", "by-id")].write_units <= 1


def test_shards_follow_the_event_tables_partitions_and_the_consumers_their_batch_times():
    event = EventClass("e", 1.0, "rows", "insert", {"by-status": "absent"}, idempotency_key=False)
    path = tiny(event, Traffic({"t.v1": 1.0}))
    # 1,000 events/s x 1 unit (a single put) = 1,000 write units; 1,000 stream-head reads / 3,000
    assert (path.event_table_write_units, path.event_table_read_units, path.shards) == (1000, 1000, 2)
    projector, reactor = path.consumers
    assert (projector.factor, projector.events_per_shard) == (2, 500)
    assert projector.capacity == 2 * 100 / 0.5 == 400 and not projector.keeps_up and projector.factor_needed == 3
    assert reactor.capacity == 2 * 25 / 0.1 == 500 and reactor.keeps_up and reactor.factor_needed == 2


def test_the_recorded_batch_times_are_for_the_templates_batch_sizes():
    path = analyse(RATE)
    for consumer in path.consumers:
        assert consumer.batch_size == BATCH_TIMES[consumer.function].batch_size
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", consumer.measured)


def test_a_figure_measured_with_another_batch_size_is_refused():
    template = tiny_template()
    template["Resources"]["ProjectorFunction"]["Properties"]["Events"]["S"]["Properties"]["BatchSize"] = 50
    event = EventClass("e", 1.0, "rows", "insert", {"by-status": "absent"})
    with pytest.raises(ValueError, match="measured with batches of 100, the template has 50"):
        tiny(event, Traffic({"t.v1": 1.0}), template, measured=None)


def test_a_kind_of_event_without_its_keys_is_refused():
    event = EventClass("new kind", 1.0, "rows", "insert", {"by-status": "absent"})
    with pytest.raises(ValueError, match="no key traffic for \\['new kind'\\]"):
        analyse(10, tiny_template(), Assumptions(mix=(event,), load={}), {})


def readme_block() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    found = re.search(r"<!-- hot-keys: generated by `dynafold cost --rate 10000 --markdown`.*?-->\n(.*?)\n"
                      r"<!-- /hot-keys -->", text, re.DOTALL)
    assert found, "the README's hot-key table markers are missing"
    return found.group(1)


def test_the_readme_table_is_the_analysis():
    assert readme_block() == markdown(analyse(RATE)), "regenerate: dynafold cost --rate 10000 --markdown"


def test_cost_command_prints_the_live_path(capsys):
    assert main(["cost", "--json", "--rate", "10000"]) == 0
    printed = json.loads(capsys.readouterr().out)["live_path"]
    assert printed["events_per_second"] == 10000 and printed["over"] == []
    assert printed["event_table"]["stream_shards"] >= 10 and len(printed["consumers"]) == 2
    assert main(["cost", "--rate", "10000"]) == 0
    out = capsys.readouterr().out
    assert "hottest partition key of every table and index at 10000 events/s" in out and "OVER" not in out


@pytest.mark.parametrize("rate", [1, 100, 1000])
def test_lower_rates_hold_too(rate):
    assert analyse(rate).over == []
