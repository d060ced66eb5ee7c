"""Audit commands on DynamoDB Local: tampering found with the exact stream and version, index-served
search and trace, CloudEvents export -> import byte for byte, history check, one-line bad input."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone

import pytest
from cloudevents.core.formats.json import JSONFormat

from events.envelope import NewEvent
from processors.cli.main import main
from processors.local.stack import LocalStack
from processors.local.tables import local_tables
from tests.integration.sample_history import sample_history
from processors.operations.tables import TableNames, create_tables

T0 = datetime(2025, 11, 11, 10, 0, tzinfo=timezone.utc)


@pytest.fixture
def cli(local_dynamo, monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", local_dynamo.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "local")
    monkeypatch.chdir(tmp_path)

    def run(*argv, prefix="test-"):
        code = main([*argv, "--endpoint-url", local_dynamo.endpoint_url, "--table-prefix", prefix])
        out, err = capsys.readouterr()
        return code, out, err

    return run


@pytest.fixture
def project(local_dynamo, tmp_path, capsys):
    """Run the local stack's projector (the composition root's, as Lambda's) over the event table's
    stream until it is caught up: it folds the views and seals each stream's checkpoint."""
    def run():
        stack = LocalStack(local_dynamo.endpoint_url, local_tables("test-", versions={}), tmp_path / "stack",
                           access_key=local_dynamo.access_key)
        stack.runners["projector"].drain()
        capsys.readouterr()  # the handler's log lines, not the CLI's answer

    return run


def sample(store):
    for append in sample_history(T0):
        store.append(append.stream, list(append.events), idempotency_key=append.idempotency_key)


def counts(client, names):
    return {name: client.scan(TableName=name, Select="COUNT")["Count"] for name in names.names.values()}


def adjust(sku, delta, minutes):
    return NewEvent("dynafold.inventory.stock_adjusted.v2", {"sku": sku, "delta": delta, "reason": "order"},
                    time=T0 + timedelta(minutes=minutes))


@pytest.mark.parametrize("tamper, version, problem", [
    ("change data", 2, "altered"),
    ("delete middle", 2, "missing"),
    ("swap versions", 2, "prev_hash"),
    ("delete last", 4, "truncated"),
    ("delete tail", 3, "truncated"),
])
def test_verify_names_the_stream_and_version_of_tampering(cli, local_dynamo, project, tamper, version, problem):
    store = local_dynamo.store()
    store.append("sku:OK", [adjust("OK", 1, 0), adjust("OK", 2, 1)])
    store.append("sku:T", [adjust("T", i, i) for i in range(1, 5)])
    project()
    table, client = local_dynamo.names.events, local_dynamo.client
    items = {int(i["version"]["N"]): i for i in store.read_items("sku:T")}
    if tamper == "change data":
        client.put_item(TableName=table, Item={**items[2], "data": {"S": items[2]["data"]["S"].replace('"delta":2', '"delta":9')}})
    elif tamper == "delete middle":
        client.delete_item(TableName=table, Key={"stream": {"S": "sku:T"}, "version": {"N": "2"}})
    elif tamper.startswith("delete"):  # the tail cut off: what is left is an intact, shorter chain
        for cut in range(version, 5):
            client.delete_item(TableName=table, Key={"stream": {"S": "sku:T"}, "version": {"N": str(cut)}})
    else:  # versions 2 and 3 swapped: each item moved to the other's place
        client.put_item(TableName=table, Item={**items[3], "version": {"N": "2"}})
        client.put_item(TableName=table, Item={**items[2], "version": {"N": "3"}})

    code, out, _ = cli("audit", "verify", "sku:T", "--json")
    [broken] = json.loads(out)["broken"]
    assert code == 1 and (broken["stream"], broken["version"]) == ("sku:T", version) and problem in broken["problem"]

    code, out, _ = cli("audit", "verify", "--all")
    assert code == 1 and f"first broken link: sku:T v{version}" in out and "1 of 2 streams" in out
    assert cli("audit", "verify", "sku:OK")[0] == 0


def test_verify_all_finds_a_stream_whose_every_event_was_deleted(cli, local_dynamo, project):
    store = local_dynamo.store()
    store.append("sku:OK", [adjust("OK", 1, 0)])
    store.append("sku:GONE", [adjust("GONE", 1, 0), adjust("GONE", 2, 1)])
    project()
    for version in (1, 2):
        local_dynamo.client.delete_item(TableName=local_dynamo.names.events,
                                        Key={"stream": {"S": "sku:GONE"}, "version": {"N": str(version)}})
    code, out, _ = cli("audit", "verify", "sku:GONE", "--json")
    [broken] = json.loads(out)["broken"]
    assert code == 1 and (broken["stream"], broken["version"]) == ("sku:GONE", 1) and "truncated" in broken["problem"]
    code, out, _ = cli("audit", "verify", "--all")
    assert code == 1 and "first broken link: sku:GONE v1" in out and "1 of 2 streams" in out


def delete(local_dynamo, table, stream, *versions):
    for version in versions:
        local_dynamo.client.delete_item(TableName=table, Key={"stream": {"S": stream}, "version": {"N": str(version)}})


def test_a_tail_cut_before_the_projector_read_it_is_sealed_from_the_stream_and_caught(cli, local_dynamo, project):
    """No append writes a head any more: the seal comes from the stream record of the append, so
    removing the event from the table before the projector gets to it changes nothing."""
    store = local_dynamo.store()
    store.append("sku:T", [adjust("T", i, i) for i in range(1, 5)])
    assert local_dynamo.client.scan(TableName=local_dynamo.names.idempotency)["Items"] == []  # no head, no guard
    delete(local_dynamo, local_dynamo.names.events, "sku:T", 4)
    project()
    code, out, _ = cli("audit", "verify", "sku:T", "--json")
    [broken] = json.loads(out)["broken"]
    assert code == 1 and broken["version"] == 4 and "sealed checkpoint recorded version 4" in broken["problem"]


def test_the_view_rows_witness_streams_older_than_their_checkpoints(cli, local_dynamo, project):
    """A stream projected before checkpoints were sealed (here: its checkpoints removed behind the
    stack's back) is still checked against the version its view rows record as applied."""
    store = local_dynamo.store()
    store.append("sku:OLD", [adjust("OLD", i, i) for i in range(1, 4)])
    store.append("sku:OK", [adjust("OK", 1, 0)])
    project()
    for version in (1, 2, 3):
        delete(local_dynamo, local_dynamo.names.checkpoints, "sku:OLD", version)
    delete(local_dynamo, local_dynamo.names.events, "sku:OLD", 3)
    code, out, _ = cli("audit", "verify", "sku:OLD", "--json")
    [broken] = json.loads(out)["broken"]
    assert code == 1 and broken["version"] == 3 and "inventory view recorded version 3" in broken["problem"]
    code, out, _ = cli("audit", "verify", "--all")
    assert code == 1 and "first broken link: sku:OLD v3" in out and "1 of 2 streams" in out


def test_search_and_trace_are_served_by_the_indexes_without_a_scan(cli, local_dynamo, monkeypatch):
    sample(local_dynamo.store())
    from processors.cli import main as cli_module

    from processors.local import stack as local_stack

    monkeypatch.setattr(cli_module.Context, "client", lambda self: NoScan(local_dynamo.client))
    monkeypatch.setattr(local_stack, "dynamodb_client", lambda *a, **k: NoScan(local_dynamo.client))  # the root's
    code, out, _ = cli("audit", "search", "--type", "dynafold.orders.validated.v1",
                       "--from", "2025-11-11T10:01:00Z", "--to", "2025-11-11T11:00:00Z", "--json")
    assert code == 0, _
    found = json.loads(out)
    assert code == 0 and [e["time"] for e in found["events"]] == ["2025-11-11T10:02:00.000000Z",
                                                                  "2025-11-11T10:12:00.000000Z"]
    code, out, _ = cli("audit", "search", "--type", "dynafold.orders.validated.v1", "--limit", "1", "--json")
    assert code == 0, _
    first = json.loads(out)
    assert len(first["events"]) == 1 and first["next_page_token"]
    code, out, _ = cli("audit", "search", "--type", "dynafold.orders.validated.v1", "--limit", "1",
                       "--page-token", first["next_page_token"], "--json")
    assert json.loads(out)["events"][0]["id"] != first["events"][0]["id"]

    code, out, _ = cli("audit", "trace", "req-msg-1", "--json")
    traced = json.loads(out)["facts"]["events"]
    assert code == 0 and [e["type"].split(".")[2] for e in traced] == [
        "message_received", "attempted", "retry_scheduled", "attempted", "succeeded"]
    assert {e["stream"] for e in traced} == {"delivery:user123:msg-0001"}
    code, out, _ = cli("audit", "trace", traced[1]["id"], "--json")  # an event id: found by the by-id index
    assert code == 0 and json.loads(out)["facts"]["matched"] == "event"


class NoScan:
    def __init__(self, client):
        self._client = client

    def __getattr__(self, name):
        if name == "scan":
            raise AssertionError("audit search/trace must not scan the event table")
        return getattr(self._client, name)


def test_audit_stream_shows_what_each_event_changed(cli, local_dynamo):
    sample(local_dynamo.store())
    code, out, _ = cli("audit", "stream", "sku:PROD-001", "--json")
    events = json.loads(out)
    assert code == 0 and [e["sequence"][-1] for e in events] == ["1", "2", "3", "4"]
    assert "row added" in events[0]["changed"] and "physical: null -> 50" in events[0]["changed"]
    assert "physical: 50 -> 48" in events[2]["changed"] and "available: 45 -> 43" in events[2]["changed"]
    assert any(c.startswith("inventory-returns: +") and "DAMAGED" in c for c in events[3]["changed"])
    assert events[2]["correlationid"] == "shopify-wh-1"


def test_export_then_import_round_trips_ids_data_and_times_byte_for_byte(cli, local_dynamo, tmp_path):
    store = local_dynamo.store()
    sample(store)
    # An old event version in the log: exported and imported as stored, still upcast on read.
    legacy = {"stream": {"S": "sku:OLD"}, "version": {"N": "1"}, "id": {"S": "legacy-1"},
              "type": {"S": "dynafold.inventory.stock_adjusted.v1"}, "source": {"S": "urn:import"},
              "time": {"S": "2025-11-11T09:00:00.123456Z"}, "data": {"S": '{"quantity_change":-3,"sku":"OLD"}'},
              "correlation_id": {"S": "legacy-1"}, "prev_hash": {"S": "0" * 64}}
    from events.items import recompute_hash, type_shard

    legacy["hash"] = {"S": recompute_hash({**legacy, "hash": {"S": ""}})}
    legacy["type_shard"] = {"S": type_shard(legacy["type"]["S"], "sku:OLD", 1)}  # as every stored event has
    local_dynamo.client.put_item(TableName=local_dynamo.names.events, Item=legacy)

    code, _, err = cli("audit", "export", "--output", "log.jsonl")
    assert code == 0 and "exported 15 events" in err
    lines = (tmp_path / "log.jsonl").read_text().splitlines()
    fmt = JSONFormat()
    assert [fmt.write(fmt.read(None, line)).decode() for line in lines] == lines  # the SDK reads it unchanged
    times = [json.loads(line)["time"] for line in lines]
    assert times == sorted(times)

    other = TableNames.with_prefix("other-")
    create_tables(local_dynamo.client, other)
    code, out, _ = cli("audit", "import", "log.jsonl", "--json", prefix="other-")
    assert code == 0 and json.loads(out) == {"imported": 15, "already_present": 0, "streams": 6}
    code, out, _ = cli("audit", "import", "log.jsonl", "--json", prefix="other-")
    assert json.loads(out)["imported"] == 0 and json.loads(out)["already_present"] == 15
    # Past the idempotency guard's TTL (30 days) its items are gone; the log still knows the ids.
    for item in local_dynamo.client.scan(TableName=other.idempotency)["Items"]:
        local_dynamo.client.delete_item(TableName=other.idempotency, Key={"key": item["key"]})
    code, out, _ = cli("audit", "import", "log.jsonl", "--json", prefix="other-")
    assert json.loads(out) == {"imported": 0, "already_present": 15, "streams": 6}

    def stored(table):
        items = local_dynamo.client.scan(TableName=table)["Items"]
        return {i["id"]["S"]: tuple(i.get(a, {}).get("S") for a in
                                    ("stream", "type", "data", "time", "source", "correlation_id", "causation_id"))
                for i in items}

    assert stored(other.events) == stored(local_dynamo.names.events)
    assert cli("audit", "verify", "--all", prefix="other-")[0] == 0
    code, out, _ = cli("read", "sku:OLD", "--json", prefix="other-")
    # the v1 event upcast on read to today's version, its newer fields at their defaults
    assert json.loads(out)[0]["data"] == {"sku": "OLD", "delta": -3, "reason": "unspecified", "order_id": None,
                                          "tx_id": None, "applied_by_shopify": False, "occurred_at": None,
                                          "by_variant": {}}


def _export(cli, name="log.jsonl"):
    code, _, err = cli("audit", "export", "-o", name)
    assert code == 0, err
    return re.search(r"heads digest ([0-9a-f]{64})", err).group(1)


def _edit(path, stream, version, change, rehash=False):
    """Change one exported event's data; with ``rehash``, recompute its stream's chain from it to
    the stream's end, as a forger who knows the (unkeyed) hash would."""
    from events.cloudevent import from_line, to_line
    from events.items import chained_item

    lines = path.read_text().splitlines()
    forged_hash = None
    for number, line in enumerate(lines):
        event = json.loads(line)
        if event["subject"] != stream or int(event["streamversion"]) < version:
            continue
        if int(event["streamversion"]) == version:
            event["data"].update(change)
        if rehash:
            parsed = from_line(json.dumps(event))
            prev = parsed.prev_hash if forged_hash is None else forged_hash
            item = chained_item(stream, parsed.version, parsed.stored, prev)
            forged_hash = item["hash"]["S"]
            lines[number] = to_line(item)
        else:
            lines[number] = json.dumps(event)
    path.write_text("\n".join(lines) + "\n")


def test_an_edited_export_is_refused_by_verify_and_by_import_wherever_it_goes(cli, local_dynamo, tmp_path):
    """Issue 19 §C: an edited export imported into a fresh prefix, `audit verify` said OK, and into
    the original store it was "already present". The export now carries its chain."""
    sample(local_dynamo.store())
    digest = _export(cli)
    code, out, _ = cli("audit", "verify", "--file", "log.jsonl", "--heads-digest", digest)
    assert code == 0 and "OK: 14 events of 5 streams" in out and "Not proved" not in out
    _edit(tmp_path / "log.jsonl", "sku:PROD-001", 3, {"delta": -1})

    code, out, _ = cli("audit", "verify", "--file", "log.jsonl", "--json")
    [broken] = json.loads(out)["broken"]
    assert code == 1 and (broken["stream"], broken["version"]) == ("sku:PROD-001", 3)
    assert "altered" in broken["problem"]

    other = TableNames.with_prefix("other-")
    create_tables(local_dynamo.client, other)
    for prefix, names in (("other-", other), ("test-", local_dynamo.names)):
        before = counts(local_dynamo.client, names)
        code, out, err = cli("audit", "import", "log.jsonl", prefix=prefix)
        assert code == 1 and "nothing imported" in err and "sku:PROD-001 v3: content does not match" in err
        assert counts(local_dynamo.client, names) == before


def test_a_forged_chain_recomputed_to_its_end_is_refused_against_the_store_and_the_stated_heads(
        cli, local_dynamo, tmp_path):
    """The hash is unkeyed: an edit re-hashed to the stream's end is an intact chain. The file
    alone cannot tell (and verify says so); the original store and the stated heads digest can."""
    sample(local_dynamo.store())
    digest = _export(cli)
    _edit(tmp_path / "log.jsonl", "sku:PROD-001", 3, {"delta": -1}, rehash=True)

    code, out, _ = cli("audit", "verify", "--file", "log.jsonl")
    assert code == 0 and "Not proved: that nothing was cut from a stream's end" in out
    code, out, _ = cli("audit", "verify", "--file", "log.jsonl", "--heads-digest", digest)
    assert code == 1 and f"is not the stated {digest}" in out

    before = counts(local_dynamo.client, local_dynamo.names)
    code, _, err = cli("audit", "import", "log.jsonl")
    assert code == 1 and "(sku:PROD-001 v3) differs from the stored one with that id: data" in err
    assert counts(local_dynamo.client, local_dynamo.names) == before

    other = TableNames.with_prefix("other-")
    create_tables(local_dynamo.client, other)
    code, _, err = cli("audit", "import", "log.jsonl", "--heads-digest", digest, prefix="other-")
    assert code == 1 and "is not the stated" in err
    assert sum(counts(local_dynamo.client, other).values()) == 0


def test_a_line_left_out_of_an_export_is_refused_unless_the_export_was_filtered(cli, local_dynamo, tmp_path):
    sample(local_dynamo.store())
    _export(cli)
    path = tmp_path / "log.jsonl"
    lines = path.read_text().splitlines()
    path.write_text("\n".join(line for line in lines
                              if (json.loads(line)["subject"], int(json.loads(line)["streamversion"])) != ("sku:PROD-001", 2))
                    + "\n")
    assert len(path.read_text().splitlines()) == len(lines) - 1
    code, out, _ = cli("audit", "verify", "--file", "log.jsonl")
    assert code == 1 and "sku:PROD-001 v3: version 2 not in the file" in out
    code, _, _ = cli("audit", "verify", "--file", "log.jsonl", "--partial")
    assert code == 0
    code, _, _ = cli("audit", "export", "--type", "dynafold.inventory.stock_adjusted.v2", "-o", "adjusted.jsonl")
    assert code == 0 and cli("audit", "verify", "--file", "adjusted.jsonl")[0] == 1
    code, out, _ = cli("audit", "verify", "--file", "adjusted.jsonl", "--partial", "--json")
    assert code == 0 and json.loads(out)["gaps"] and json.loads(out)["does_not_prove"]


def test_check_history_reports_events_that_no_longer_decode(cli, local_dynamo):
    sample(local_dynamo.store())
    assert cli("check-history")[0] == 0
    bad = {"stream": {"S": "sku:BAD"}, "version": {"N": "1"}, "id": {"S": "b1"},
           "type": {"S": "dynafold.inventory.buffer_set.v1"}, "source": {"S": "urn:x"},
           "time": {"S": "2025-11-11T09:00:00.000000Z"}, "data": {"S": '{"sku":"BAD","bufer":1}'},
           "correlation_id": {"S": "b1"}, "prev_hash": {"S": "0" * 64}, "hash": {"S": "0" * 64}}
    local_dynamo.client.put_item(TableName=local_dynamo.names.events, Item=bad)
    code, out, _ = cli("check-history", "--json")
    [problem] = json.loads(out)["undecodable"]
    assert code == 1 and (problem["stream"], problem["version"]) == ("sku:BAD", 1) and "bufer" in problem["problem"]


@pytest.mark.parametrize("argv, fragment", [
    (["rebuild", "nope"], "unknown view"),
    (["rebuild", "inventory", "--segments", "0"], "--segments"),
    (["rebuild", "inventory", "--max-write-rate", "-5"], "--max-write-rate"),
    (["views", "drop", "inventory", "v1"], "active"),
    (["views", "drop", "inventory", "v7"], "does not exist"),
    (["views", "drop", "events", "v1"], "unknown view table family"),
    (["views", "activate", "inventory", "seven"], "invalid view version"),
    (["audit", "verify"], "STREAM or --all"),
    (["audit", "verify", "nostream"], "invalid stream id"),
    (["audit", "search", "--type", "dynafold.nope.v1"], "unknown event type"),
    (["audit", "search", "--type", "dynafold.alerts.raised.v1", "--from", "yesterday"], "invalid time"),
    (["audit", "search", "--type", "dynafold.alerts.raised.v1", "--page-token", "%%%"], "page token"),
    (["audit", "export", "--from", "2026-01-02T00:00:00Z", "--to", "2026-01-01T00:00:00Z"], "after"),
    (["audit", "import", "missing.jsonl"], "no such file"),
    (["audit", "import", "bad.jsonl"], "bad.jsonl:2"),
    (["audit", "import", "bad.jsonl", "--heads-digest", "DIGEST"], "--heads-digest"),
    (["audit", "verify", "--file", "bad.jsonl", "sku:A"], "one of them"),
    (["audit", "verify", "sku:A", "--partial"], "go with --file"),
    (["audit", "trace", ""], "give an event id or a correlation id"),
    (["check-history", "--segments", "x"], "segments"),
])
def test_bad_input_is_one_line_exit_2_and_changes_nothing(cli, local_dynamo, tmp_path, argv, fragment):
    sample(local_dynamo.store())
    good = ('{"specversion": "1.0", "id": "e1", "source": "urn:x", "type": "dynafold.alerts.read.v1", '
            '"subject": "alert:a1", "time": "2025-11-11T10:00:00Z", "data": {"alert_id": "a1"}}')
    (tmp_path / "bad.jsonl").write_text(good + "\n" + '{"specversion": "1.0", "id": "e2"}\n')
    before = counts(local_dynamo.client, local_dynamo.names)
    code, out, err = cli(*argv)
    assert code == 2, (out, err)
    assert fragment in err and len(err.strip().splitlines()) == 1
    assert counts(local_dynamo.client, local_dynamo.names) == before
    assert not (tmp_path / ".dynafold" / "views.json").exists()


def test_views_drop_removes_a_version_s_tables_and_its_rebuild_progress(cli, local_dynamo, tmp_path):
    from processors.operations.rebuild import template_base
    from processors.operations.tables import create_copy, list_table_names
    from projections.rebuild.plan import RebuildProgress

    targets = {"inventory": "test-inventory-v2", "inventory-returns": "test-inventory-returns-v2"}
    for family, table in targets.items():
        create_copy(local_dynamo.client, template_base(family), table)
    progress = tmp_path / ".dynafold" / "rebuilds" / "test-inventory.json"
    progress.parent.mkdir(parents=True)
    progress.write_text(json.dumps(RebuildProgress(["inventory"], targets, 4, [1]).to_json()))

    code, out, _ = cli("views", "drop", "inventory", "v2", "--json")
    assert code == 0, out
    assert json.loads(out)["dropped"] == ["test-inventory-v2", "test-inventory-returns-v2"]
    assert not progress.exists()  # nothing resumes into tables that are gone
    assert not set(targets.values()) & set(list_table_names(local_dynamo.client))
