"""The projector and reactor handlers on the real DynamoDB Local stream, through the stream runner."""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta, timezone

import pytest

from events.envelope import NewEvent
from processors.handlers import projector as projector_module
from processors.local.stack import LocalStack
from tests.integration.sample_history import sample_history
from processors.local.stream_runner import LambdaContext, StreamRunner, StreamSettings
from projections.alerts.fold import UNREAD_INDEX
from projections.batch import BatchProjector
from projections.pending_errors.fold import is_pending
from projections.registry import VIEWS
from projections.view_store import ViewStore, from_item
from processors.local.tables import local_tables


@pytest.fixture
def stack(local_dynamo, tmp_path):
    return LocalStack(local_dynamo.endpoint_url, local_tables("test-", versions={}), tmp_path,
                      access_key=local_dynamo.access_key)


def scan(stack, family):
    return [from_item(i) for i in stack.client.scan(TableName=stack.tables.views[family])["Items"]]


def test_sample_traffic_builds_all_four_views(stack):
    # Recent times: pending-error rows carry a 7-day TTL that DynamoDB Local enforces in the
    # background, so the sample's fixed 2025 dates would let the engine delete them mid-test.
    for append in sample_history(datetime.now(timezone.utc) - timedelta(hours=1)):
        stack.store.append(append.stream, list(append.events), idempotency_key=append.idempotency_key)
    stack.drain()

    [prod1] = [r for r in scan(stack, "inventory") if r["sku"] == "PROD-001"]
    assert (prod1["physical"], prod1["buffer"], prod1["available"]) == (48, 5, 43)
    [damaged] = scan(stack, "inventory-returns")
    assert (damaged["sku"], damaged["disposition"], damaged["restocked"]) == ("PROD-001", "DAMAGED", False)

    rows = [r for r in scan(stack, "pending-errors") if r["error_hash"] not in ("#", "@order")]
    pending = [r for r in rows if is_pending(r)]  # emailed errors still reported stay, not pending
    assert all("notified_at" in r and "expires_at" not in r for r in rows if r not in pending)
    assert [(r["order_id"][:8], r["rule"]) for r in pending] == [("6ce880f5", "discount_on_tuk_item")]
    orders = {r["indexed_number"]: r["order_id"][:8] for r in scan(stack, "pending-errors") if r["error_hash"] == "@order"}
    assert orders == {"SO-000019": "6ce880f5", "SO-000020": "0b7d2a61"}  # both orders, emailed or fixed

    [delivery] = scan(stack, "delivery-status")
    assert (delivery["status"], delivery["attempts"], len(delivery["retry_history"])) == ("SUCCESS", 2, 1)

    alerts = sorted((r["alert_type"], r.get("sku")) for r in scan(stack, "alerts"))
    assert alerts == [("order_errors_notified", None), ("return_damaged", "PROD-001"), ("stock_low", "PROD-002")]
    assert all(r["unread"] == UNREAD_INDEX.value("UNREAD", (r["alert_id"],)) for r in scan(stack, "alerts"))

    # Draining again (a restart from the checkpoints) changes nothing and raises nothing new.
    assert stack.drain() == 0
    assert len(scan(stack, "alerts")) == 3


def test_poison_record_is_reported_alerted_and_does_not_hold_back_other_streams(stack):
    stack.store.append("sku:GOOD", [NewEvent("dynafold.inventory.physical_count_set.v1",
                                             {"sku": "GOOD", "physical": 30})])
    poison = {"stream": {"S": "sku:BAD"}, "version": {"N": "1"}, "id": {"S": "poison-1"},
              "type": {"S": "dynafold.inventory.physical_count_set.v1"}, "source": {"S": "urn:test"},
              "time": {"S": "2026-01-01T00:00:00.000000Z"}, "data": {"S": '{"sku": "BAD", "physical": "lots"}'},
              "correlation_id": {"S": "c"}, "prev_hash": {"S": "0" * 64}, "hash": {"S": "0" * 64}}
    stack.client.put_item(TableName=stack.tables.events, Item=poison)
    stack.store.append("sku:LATER", [NewEvent("dynafold.inventory.physical_count_set.v1",
                                              {"sku": "LATER", "physical": 40})])
    stack.drain()

    skus = {r["sku"]: r["physical"] for r in scan(stack, "inventory")}
    assert skus == {"GOOD": 30, "LATER": 40}
    # Both readers sent their on-failure record to the one failure queue; the stream-failures
    # handler (the same as on AWS) read the records back and raised an alert per failed batch.
    assert len(stack.stream_failure_queue) == 0
    record_failed = [r for r in scan(stack, "alerts") if r["alert_type"] == "record_failed"]
    assert {r["subject"] for r in record_failed} == {"consumer:dynafold-projector", "consumer:dynafold-reactor"}
    assert all(r["severity"] == "critical" for r in record_failed)
    for alert in record_failed:
        assert "sku:BAD v1" in alert["message"] and "RetryAttemptsExhausted" in alert["message"], alert["message"]
        assert "dynafold.inventory.physical_count_set.v1" in alert["message"]

    # The same failure record delivered again (SQS is at least once) raises nothing new.
    runner = stack.runners["projector"]
    info = {"shardId": "shardId-00000000000000000000-00000000", "startSequenceNumber": "1" * 21,
            "endSequenceNumber": "1" * 21, "batchSize": 1,
            "streamArn": runner.stream_arn, "approximateArrivalOfFirstRecord": None,
            "approximateArrivalOfLastRecord": None}
    body = json.dumps({"requestContext": {"requestId": "r", "functionArn": "arn:aws:lambda:us-east-1:0:function:p",
                                          "condition": "RecordAgeExceeded", "approximateInvokeCount": 0},
                       "version": "1.0", "timestamp": "2026-01-01T00:00:00.000Z", "DDBStreamBatchInfo": info})
    stack.stream_failure_queue.send_body(body)
    stack.stream_failure_queue.send_body(body)
    assert stack.raise_failure_alerts() == 2
    stack.drain()  # the projector folds the new alert into the alerts view
    alerts = [r for r in scan(stack, "alerts") if r["alert_type"] == "record_failed"]
    assert len(alerts) == 3 and any("no longer holds" in r["message"] for r in alerts)


def _captured_batch(local_dynamo, tmp_path):
    """Real Lambda-shaped events, exactly as the stream runner hands them to a handler."""
    batches = []
    runner = StreamRunner(local_dynamo.streams(), local_dynamo.client, local_dynamo.names.events,
                          lambda event, context: batches.append(event) or {"batchItemFailures": []},
                          StreamSettings(batch_size=100), checkpoint_dir=tmp_path, name="capture")
    runner.drain()
    return [record for batch in batches for record in batch["Records"]]


def test_projector_handler_is_idempotent_and_order_insensitive_on_captured_records(local_dynamo, tmp_path, capsys):
    store = local_dynamo.store()
    for delta in (10, -3, -2):
        store.append("sku:H", [NewEvent("dynafold.inventory.stock_adjusted.v2",
                                        {"sku": "H", "delta": delta, "reason": "order"})])
    records = _captured_batch(local_dynamo, tmp_path)
    assert [r["eventSource"] for r in records] == ["aws:dynamodb"] * 3
    tables = local_tables("test-", versions={})
    views = ViewStore(local_dynamo.client, tables.views)
    handler = projector_module.make_handler(BatchProjector(views, store.read_stream, VIEWS))

    context = LambdaContext("projector", "req-1", "arn:aws:lambda:us-east-1:0:function:projector",
                            time.monotonic() + 60)
    assert handler({"Records": records[2:] + records[:2]}, context) == {"batchItemFailures": []}  # gap filled
    assert handler({"Records": records + records}, context) == {"batchItemFailures": []}  # all duplicates
    [row] = [from_item(i) for i in local_dynamo.client.scan(TableName=tables.views["inventory"])["Items"]]
    assert (row["physical"], row["stream_version"]) == (5, 3)

    emf = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith('{"_aws"')]
    assert emf, "the handler printed no EMF"
    by_name = {}
    for blob in emf:
        directive = blob["_aws"]["CloudWatchMetrics"][0]
        assert directive["Namespace"] == "dynafold"
        assert len(directive["Metrics"]) <= 100
        assert all(len(dims) <= 30 and all(d in blob for d in dims) for dims in directive["Dimensions"])
        for metric in directive["Metrics"]:
            assert metric["Name"] in blob
            by_name.setdefault(metric["Name"], []).append(blob[metric["Name"]])
    assert by_name["GapEventsFilled"][0] == [2.0] and by_name["DuplicatesSkipped"][1] == [6.0]


def test_a_changed_available_count_is_broadcast_once_with_a_message_for_the_storefront(local_dynamo, tmp_path):
    stack = LocalStack(local_dynamo.endpoint_url, local_tables("test-", versions={}), tmp_path,
                       access_key=local_dynamo.access_key, storefront_url="https://shop.invalid/inventory")  # never resolves: no network
    stack.store.append("sku:B1", [NewEvent("dynafold.inventory.physical_count_set.v1", {"sku": "B1", "physical": 20}),
                                  NewEvent("dynafold.inventory.buffer_set.v1", {"sku": "B1", "buffer": 0})])
    stack.drain()
    types = [e.type for e in stack.store.read_stream("sku:B1")]
    assert types == ["dynafold.inventory.physical_count_set.v1", "dynafold.inventory.buffer_set.v1",
                     "dynafold.inventory.stock_broadcast.v1"]  # the buffer change left available at 20
    broadcast = stack.store.read_stream("sku:B1")[-1].data
    message = stack.store.read_stream(f"delivery:dynafold-inventory:{broadcast.tx_id}")[0]
    assert message.data.payload == {"sku": "B1", "available": 20, "tx_id": broadcast.tx_id}
    assert message.data.target_url == "https://shop.invalid/inventory"
    [row] = [r for r in scan(stack, "inventory") if r["sku"] == "B1"]
    assert row["last_broadcast"]["tx_id"] == broadcast.tx_id

    # A reactor that sees the same records again (a retried batch) broadcasts nothing new.
    for event in stack.store.read_stream("sku:B1"):
        stack.reactor.react(event)
    assert len(stack.store.read_stream("sku:B1")) == 3


def test_the_reactor_reads_a_skus_state_once_for_its_consecutive_events(local_dynamo, tmp_path):
    stack = LocalStack(local_dynamo.endpoint_url, local_tables("test-", versions={}), tmp_path,
                       access_key=local_dynamo.access_key)
    stack.store.append("sku:C1", [NewEvent("dynafold.inventory.physical_count_set.v1", {"sku": "C1", "physical": 9})]
                       + [NewEvent("dynafold.inventory.stock_adjusted.v2", {"sku": "C1", "delta": -1, "reason": "order"})
                          for _ in range(5)])
    reads = []
    stack.client.meta.events.register("before-call.dynamodb.*",
                                      lambda model, **_: reads.append(model.name) if model.name in ("GetItem", "Query") else None)
    raised = [a.alert_type for e in stack.store.read_stream("sku:C1") for a in stack.reactor.react(e)]
    assert raised == ["stock_low"]  # 9 -> 8 -> ... -> 4: crosses the threshold (5) once
    state_reads = [r for r in reads if r == "GetItem"]
    assert len(state_reads) == 1  # the first event's state came from the tables; the rest from the fold
