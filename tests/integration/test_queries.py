"""Queries over the view tables, and `dynafold query`, against DynamoDB Local.

Rows are written directly in the view store's item shape (head row included for pending errors,
to prove no query returns it). Every query function runs twice: on the plain client, and on one
that forces one item per page, so each answer has to follow LastEvaluatedKey to be complete.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from events.envelope import format_time
from processors.cli.main import main
from projections.alerts import Alert
from projections.alerts.fold import UNREAD_INDEX
from projections.delivery_status import AttemptResult, DeliveryStatus, RetryEntry
from projections.delivery_status.fold import SENDER_INDEX, STATUS_INDEX
from projections.inventory import InventoryItem, InventoryReturn
from projections.pending_errors import PendingError
from projections.pending_errors.fold import PENDING_INDEX, expires_at
from projections.queries import ViewQueries
from events.errors import NotFound
from projections.registry import UNITS
from projections.unit import InvalidQuery
from projections.view_store import to_item
from processors.local.tables import local_tables

NOW = datetime.now(timezone.utc)


def ago(**delta: float) -> str:
    return format_time(NOW - timedelta(**delta))


def t(minute: int) -> str:
    return f"2024-05-01T10:{minute:02d}:00.000000Z"


SKUS = ["P1", "P2", "P3", "P4", "P5"]

INVENTORY = [
    {"sku": sku, "physical": 10 * n, "buffer": 2, "available": max(0, 10 * n - 2), "updated_at": t(n),
     "stream_id": f"sku:{sku}", "stream_version": n,
     **({"last_broadcast": {"count": 10 * n - 2, "tx_id": f"tx-{n}", "time": t(n)}} if n % 2 else {})}
    for n, sku in enumerate(SKUS, start=1)
]

RETURNS = [  # written out of order
    {"sku": "P1", "returned_at": f"{t(30)}#{3:012d}", "time": t(30), "quantity": 1, "disposition": "damaged",
     "order_id": "O-3", "restocked": False, "event_id": "e-3"},
    {"sku": "P1", "returned_at": f"{t(10)}#{1:012d}", "time": t(10), "quantity": 2, "disposition": "resellable",
     "order_id": "O-1", "restocked": True, "event_id": "e-1"},
    {"sku": "P1", "returned_at": f"{t(20)}#{2:012d}", "time": t(20), "quantity": 1, "disposition": "resellable",
     "order_id": "O-2", "restocked": True, "event_id": "e-2"},
    {"sku": "P2", "returned_at": f"{t(5)}#{1:012d}", "time": t(5), "quantity": 4, "disposition": "damaged",
     "order_id": "O-9", "restocked": False, "event_id": "e-9"},
]


def pending_error(order_id: str, error_hash: str, detected: str, version: int, *,
                  legacy: bool = False) -> dict[str, Any]:
    """A stored row; ``legacy``: as a table got it before by-first-detected was sharded ("PENDING")."""
    return {
        "order_id": order_id, "error_hash": error_hash, "order_number": f"#{order_id}", "rule": f"rule-{error_hash}",
        "severity": "error", "message": f"{error_hash} is wrong", "details": {"field": error_hash},
        "first_detected": detected, "last_seen": detected, "expires_at": expires_at(detected),
        "pending": "PENDING" if legacy else PENDING_INDEX.value("PENDING", (order_id, error_hash)),
        "stream_id": f"order:{order_id}", "stream_version": version,
    }


PENDING_ERRORS = [
    {"order_id": "O1", "error_hash": "#", "stream_id": "order:O1", "stream_version": 3},  # head row
    pending_error("O1", "aaa", ago(hours=2), 1),
    pending_error("O1", "bbb", ago(minutes=10), 3, legacy=True),
    {"order_id": "O2", "error_hash": "#", "stream_id": "order:O2", "stream_version": 1},
    pending_error("O2", "ccc", ago(days=1), 1),
    # O3: emailed and still reported; nothing pending, but the order is known (its order row)
    {"order_id": "O3", "error_hash": "#", "stream_id": "order:O3", "stream_version": 2},
    {"order_id": "O3", "error_hash": "@order", "order_number": "SO-3", "indexed_number": "SO-3",
     "first_validated": ago(hours=3), "stream_id": "order:O3", "stream_version": 1},
    {"order_id": "O3", "error_hash": "ddd", "order_number": "SO-3", "notified_at": ago(hours=2),
     "stream_id": "order:O3", "stream_version": 2},
]


LAST_RESULT = {"success": False, "category": "SERVER_ERROR", "status_code": 503, "response_time_ms": 120,
               "error": "Service Unavailable", "time": t(2)}
RETRY = {"attempt": 1, "time": t(2), "category": "SERVER_ERROR", "status_code": 503, "response_time_ms": 120,
         "error": "Service Unavailable", "delay_seconds": 1.5, "exponential_delay": 1, "jitter": 0.5,
         "next_retry_at": t(20)}


def delivery(sender: str, message: str, status: str, due: str, updated: str, **extra: Any) -> dict[str, Any]:
    delivery_id = f"{sender}:{message}"
    return {
        "delivery_id": delivery_id, "sender_id": sender, "message_id": message,
        "target_url": f"https://{sender}.example/hook", "status": status, "attempts": 1, "due_at": due,
        "status_shard": STATUS_INDEX.value(status, (delivery_id,)), "sender_shard": SENDER_INDEX.value(sender, (delivery_id,)),
        "retry_history": [], "created_at": t(0), "updated_at": updated,
        "stream_id": f"delivery:{sender}:{message}", "stream_version": 2, **extra,
    }


DELIVERIES = [
    delivery("s1", "m1", "RETRY_SCHEDULED", t(20), t(3), next_retry_at=t(20),
             retry_history=[RETRY], last_result=LAST_RESULT),
    delivery("s2", "m1", "SUCCESS", t(1), t(1), delivered_at=t(1)),
    delivery("s1", "m2", "RETRY_SCHEDULED", t(40), t(2), next_retry_at=t(40)),
    delivery("s2", "m3", "RETRY_SCHEDULED", t(10), t(4), next_retry_at=t(10)),
    delivery("s1", "m4", "MAX_RETRIES_EXCEEDED", t(5), t(5)),
]


def alert(alert_id: str, severity: str, time: str, *, read: bool, sku: str | None) -> dict[str, Any]:
    row = {
        "alert_id": alert_id, "alert_type": "stock_low", "severity": severity, "subject": f"subject {alert_id}",
        "sku": sku, "message": f"message {alert_id}", "time": time, "read": read,
        "cause_event_id": f"cause-{alert_id}", "stream_id": f"alert:{alert_id}", "stream_version": 1,
    }
    if read:
        row.update(read_at=t(59), read_by="ops")
    else:  # a1 as a table got it before by-unread was sharded
        row["unread"] = "UNREAD" if alert_id == "a1" else UNREAD_INDEX.value("UNREAD", (alert_id,))
    return row


ALERTS = [
    alert("a1", "critical", t(1), read=False, sku="P1"),
    alert("a2", "critical", t(2), read=True, sku="P2"),
    alert("a3", "warning", t(3), read=False, sku="P1"),
    alert("a4", "info", t(4), read=True, sku=None),
]


@pytest.fixture
def views(local_dynamo) -> dict[str, str]:
    views = dict(local_tables("test-").views)
    client = local_dynamo.client
    for family, rows in [("inventory", INVENTORY), ("inventory-returns", RETURNS),
                         ("pending-errors", PENDING_ERRORS), ("delivery-status", DELIVERIES), ("alerts", ALERTS)]:
        for row in rows:
            client.put_item(TableName=views[family], Item=to_item(row))
    return views


class OneItemPages:
    """A client whose every Query/Scan returns at most one item per page."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.calls = 0

    def query(self, **kwargs: Any) -> Any:
        self.calls += 1
        return self._client.query(**{**kwargs, "Limit": 1})

    def scan(self, **kwargs: Any) -> Any:
        self.calls += 1
        return self._client.scan(**{**kwargs, "Limit": 1})

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


@pytest.fixture(params=["plain", "one-item-pages"])
def q(request, local_dynamo, views) -> ViewQueries:
    client = local_dynamo.client if request.param == "plain" else OneItemPages(local_dynamo.client)
    return ViewQueries(client, views)


def ids(rows: list[Any], attr: str) -> list[str]:
    return [getattr(r, attr) for r in rows]


# ----------------------------------------------------------------------------- query functions

def test_pending_errors_by_order_never_returns_the_head_row(q):
    rows = q.pending_errors.by_order("O1")
    assert all(isinstance(r, PendingError) for r in rows)
    assert ids(rows, "error_hash") == ["aaa", "bbb"]
    first = rows[0]
    assert first.order_number == "#O1" and first.details == {"field": "aaa"}
    assert first.pending == PENDING_INDEX.value("PENDING", ("O1", "aaa"))
    assert first.stream_id == "order:O1" and first.stream_version == 1
    assert first.expires_at == first.to_dict()["expires_at"] == PENDING_ERRORS[1]["expires_at"]  # the stored TTL
    assert q.pending_errors.by_order("nope") == []


def test_pending_errors_detected_before_is_the_monitors_question(q):
    rows = q.pending_errors.detected_before(ago(minutes=30))
    assert [(r.order_id, r.error_hash) for r in rows] == [("O2", "ccc"), ("O1", "aaa")]  # oldest first
    assert q.pending_errors.detected_before(NOW - timedelta(days=2)) == []
    assert len(q.pending_errors.detected_before(NOW)) == 3
    assert ids(q.pending_errors.all(), "error_hash") == ["ccc", "aaa", "bbb"]
    with pytest.raises(InvalidQuery, match="cutoff"):
        q.pending_errors.detected_before("yesterday")


def test_cutoff_in_any_iso_form_compares_like_the_stored_form(q):
    exact = PENDING_ERRORS[1]["first_detected"]  # ".ffffffZ"
    assert ids(q.pending_errors.detected_before(exact), "error_hash") == ["ccc"]  # strictly before
    whole_second = datetime.fromisoformat(exact).replace(microsecond=0) + timedelta(seconds=1)
    as_offset = whole_second.astimezone(timezone(timedelta(hours=2))).isoformat(timespec="seconds")
    assert ids(q.pending_errors.detected_before(as_offset), "error_hash") == ["ccc", "aaa"]


def test_delivery_by_message_lists_every_sender(q):
    rows = q.delivery_status.by_message("m1")
    assert all(isinstance(r, DeliveryStatus) for r in rows)
    assert ids(rows, "delivery_id") == ["s1:m1", "s2:m1"]
    s1 = rows[0]
    assert s1.status == "RETRY_SCHEDULED" and s1.retry_history == (RetryEntry(**RETRY),)
    assert s1.last_result == AttemptResult(**LAST_RESULT) and s1.last_result.status_code == 503
    assert s1.to_dict()["retry_history"] == [RETRY] and s1.to_dict()["last_result"] == LAST_RESULT
    assert s1.due_at == t(20) and s1.to_dict()["due_at"] == t(20)
    assert q.delivery_status.by_message("nope") == []


def test_deliveries_by_status_due_before_and_sender(q):
    assert ids(q.delivery_status.by_status("RETRY_SCHEDULED"), "delivery_id") == ["s2:m3", "s1:m1", "s1:m2"]
    assert ids(q.delivery_status.by_status("RETRY_SCHEDULED", due_before=t(20)), "delivery_id") == ["s2:m3"]
    assert ids(q.delivery_status.by_status("RETRY_SCHEDULED", "2024-05-01T10:30:00Z"), "delivery_id") == [
        "s2:m3", "s1:m1"]
    assert ids(q.delivery_status.by_status("RETRY_SCHEDULED", sender_id="s1"), "delivery_id") == ["s1:m1", "s1:m2"]
    assert ids(q.delivery_status.by_status("MAX_RETRIES_EXCEEDED"), "delivery_id") == ["s1:m4"]
    assert q.delivery_status.by_status("FAILED") == []
    with pytest.raises(InvalidQuery, match="unknown delivery status 'DONE'"):
        q.delivery_status.by_status("DONE")


def test_deliveries_by_sender_in_update_order(q):
    assert ids(q.delivery_status.by_sender("s1"), "delivery_id") == ["s1:m2", "s1:m1", "s1:m4"]
    assert ids(q.delivery_status.by_sender("s1", status="RETRY_SCHEDULED"), "delivery_id") == ["s1:m2", "s1:m1"]
    assert ids(q.delivery_status.by_sender("s1", due_before=t(30)), "delivery_id") == ["s1:m1", "s1:m4"]
    assert q.delivery_status.by_sender("nobody") == []


def test_inventory_item(q):
    item = q.inventory.item("P1")
    assert isinstance(item, InventoryItem)
    assert (item.sku, item.physical, item.buffer, item.available) == ("P1", 10, 2, 8)
    assert item.last_broadcast is not None and item.last_broadcast.count == 8 and item.last_broadcast.tx_id == "tx-1"
    assert item.to_dict()["last_broadcast"] == {"count": 8, "tx_id": "tx-1", "time": t(1)}
    assert q.inventory.item("P2").last_broadcast is None
    assert q.inventory.item("NOPE") is None


def test_inventory_pages_cover_every_sku_once(q):
    seen, token, pages = [], None, 0
    while True:
        rows, token = q.inventory.page(2, token)
        assert len(rows) <= 2
        seen += ids(rows, "sku")
        pages += 1
        if token is None:
            break
        assert isinstance(token, str)
    assert sorted(seen) == SKUS and pages >= 3
    rows, token = q.inventory.page(100)
    assert sorted(ids(rows, "sku")) == SKUS and token is None
    assert sorted(ids(q.inventory.all(page_size=2), "sku")) == SKUS
    with pytest.raises(InvalidQuery, match="continuation token"):
        q.inventory.page(2, "not-a-token")
    with pytest.raises(InvalidQuery, match=">= 1"):
        q.inventory.page(0)


def test_returns_in_time_order(q):
    rows = q.inventory.returns_of("P1")
    assert all(isinstance(r, InventoryReturn) for r in rows)
    assert ids(rows, "event_id") == ["e-1", "e-2", "e-3"]
    assert rows[0].restocked is True and rows[0].quantity == 2 and rows[2].disposition == "damaged"
    assert q.inventory.returns_of("NOPE") == []


@pytest.mark.parametrize("filters, expected", [
    ({}, ["a4", "a3", "a2", "a1"]),
    ({"unread": True}, ["a3", "a1"]),
    ({"unread": False}, ["a4", "a2"]),
    ({"severity": "critical"}, ["a2", "a1"]),
    ({"unread": True, "severity": "critical"}, ["a1"]),
    ({"unread": False, "severity": "critical"}, ["a2"]),
    ({"sku": "P1"}, ["a3", "a1"]),
    ({"sku": "P1", "severity": "warning"}, ["a3"]),
    ({"sku": "P1", "unread": False}, []),
    ({"sku": "P2", "unread": False, "severity": "critical"}, ["a2"]),
    ({"sku": "NOPE"}, []),
    # When they were raised (issue 19: status's window, mark-read's --before): since inclusive, before exclusive.
    ({"since": t(2)}, ["a4", "a3", "a2"]),
    ({"before": t(3)}, ["a2", "a1"]),
    ({"since": t(2), "before": t(4)}, ["a3", "a2"]),
    ({"since": t(3), "before": t(3)}, []),  # empty, not refused
    ({"unread": True, "before": t(3)}, ["a1"]),  # a1 holds the legacy "UNREAD": bounded too
    ({"unread": True, "since": t(2)}, ["a3"]),  # every bucket of by-unread, bounded
    ({"unread": True, "since": t(1), "before": t(3), "severity": "critical"}, ["a1"]),
    ({"sku": "P1", "since": t(2)}, ["a3"]),
    ({"alert_type": "stock_low", "severity": "critical", "since": t(2)}, ["a2"]),
    ({"alert_type": "sync_drift"}, []),
])
def test_alerts_combine_filters(q, filters, expected):
    rows = q.alerts.find(**filters)
    assert all(isinstance(r, Alert) for r in rows)
    assert ids(rows, "alert_id") == expected


def test_alert_rows_are_typed(q):
    (a1,) = q.alerts.find(unread=True, severity="critical")
    assert a1.is_unread and a1.read is False and a1.sku == "P1" and a1.time == t(1)
    (a2,) = q.alerts.find(unread=False, severity="critical")
    assert not a2.is_unread and a2.read is True and a2.read_by == "ops"
    assert ids(q.alerts.find(newest_first=False), "alert_id") == ["a1", "a2", "a3", "a4"]
    with pytest.raises(InvalidQuery, match="unknown alert severity"):
        q.alerts.find(severity="loud")
    with pytest.raises(InvalidQuery, match="unknown alert type"):
        q.alerts.find(alert_type="stock_high")
    with pytest.raises(InvalidQuery, match="before: expected an ISO 8601 time"):
        q.alerts.find(before="soon")


def test_queries_follow_pagination(local_dynamo, views):
    paged = OneItemPages(local_dynamo.client)
    q = ViewQueries(paged, views)
    assert len(q.pending_errors.by_order("O1")) == 2
    assert paged.calls >= 3  # one item per page: the answer took several pages


def test_queries_accept_tables_and_never_scan_except_inventory(local_dynamo, views):
    class NoScan(OneItemPages):
        def scan(self, **kwargs: Any) -> Any:
            raise AssertionError("scan")

    q = ViewQueries(NoScan(local_dynamo.client), local_tables("test-"))
    q.pending_errors.by_order("O1"), q.pending_errors.detected_before(NOW), q.pending_errors.all()
    q.delivery_status.by_message("m1"), q.delivery_status.by_status("SUCCESS"), q.delivery_status.by_sender("s1")
    q.inventory.item("P1"), q.inventory.returns_of("P1"), q.alerts.find(), q.alerts.find(unread=False), q.alerts.find(sku="P1")
    with pytest.raises(AssertionError, match="scan"):
        q.inventory.page(10)


# ----------------------------------------------------------------------------- the CLI

@pytest.fixture
def cli(local_dynamo, views, monkeypatch, capsys):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", local_dynamo.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "local")

    def run(*argv: str) -> tuple[int, str, str]:
        code = main(["query", *argv, "--endpoint-url", local_dynamo.endpoint_url, "--table-prefix", "test-"])
        out, err = capsys.readouterr()
        return code, out, err

    return run


def cli_json(cli, *argv: str) -> Any:
    code, out, err = cli(*argv, "--json")
    assert code == 0, err
    return json.loads(out)


def test_cli_pending_errors(cli):
    assert [r["error_hash"] for r in cli_json(cli, "pending-errors")] == ["ccc", "aaa", "bbb"]
    assert [r["error_hash"] for r in cli_json(cli, "pending-errors", "--order", "O1")] == ["aaa", "bbb"]
    assert [r["error_hash"] for r in cli_json(cli, "pending-errors", "--older-than", "30m")] == ["ccc", "aaa"]
    assert [r["error_hash"] for r in cli_json(cli, "pending-errors", "--order", "O1", "--older-than", "1h")] == ["aaa"]
    assert cli_json(cli, "pending-errors", "--older-than", "2d") == []
    code, out, _ = cli("pending-errors", "--order", "O1")
    lines = out.strip().splitlines()
    assert code == 0 and lines[0].split()[:3] == ["ORDER_ID", "ORDER_NUMBER", "RULE"] and len(lines) == 3
    assert "aaa is wrong" in out and "bbb is wrong" in out


def test_cli_pending_errors_of_an_order_with_nothing_pending_says_so_and_an_unknown_order_is_not_found(cli):
    # Issue 19: both printed "(none)" and exited 0, so an emailed order looked like an unknown one.
    assert cli_json(cli, "pending-errors", "--order", "SO-3") == []
    code, out, _ = cli("pending-errors", "--order", "SO-3")
    assert code == 0 and out.splitlines()[0] == "(none)"
    assert "order SO-3 (O3): nothing pending; 1 error(s) emailed at" in out and "still reported" in out
    code, out, err = cli("pending-errors", "--order", "nope")
    assert (code, out) == (4, "") and err.strip() == (
        "dynafold: not found: order 'nope' (no order has this id or InFlow order number)")


def test_cli_delivery(cli):
    rows = cli_json(cli, "delivery-status", "m1")
    assert [r["delivery_id"] for r in rows] == ["s1:m1", "s2:m1"] and rows[0]["attempts"] == 1
    assert cli_json(cli, "delivery", "m1") == rows  # the older spelling, an alias
    code, out, _ = cli("delivery-status", "m1")
    assert code == 0 and "RETRY_SCHEDULED" in out and "SUCCESS" in out and "s1:m1 attempt history:" in out


@pytest.mark.parametrize("argv, template, path", [
    (["delivery-status", "nope"], "/messages/{message_id}", {"message_id": "nope"}),
    (["delivery", "nope", "--json"], "/messages/{message_id}", {"message_id": "nope"}),
    (["inventory", "NOPE"], "/inventory/{sku}", {"sku": "NOPE"}),
    (["inventory", "NOPE", "--json"], "/inventory/{sku}", {"sku": "NOPE"}),
])
def test_cli_a_lookup_of_something_missing_is_not_found_exit_4_like_its_route(cli, local_dynamo, views, argv,
                                                                             template, path):
    """Issue 19: `query inventory NOPE` and `query delivery nope` printed (none) and exited 0, while
    their routes answered 404. Both now raise the view's one NotFound."""
    code, out, err = cli(*argv)
    [(unit, route)] = [(unit, route) for unit in UNITS for route in unit.routes if route.template == template]
    with pytest.raises(NotFound) as answered:
        route.answer(ViewQueries(local_dynamo.client, views).of(unit), path, {}, NOW)
    assert (code, out, err) == (4, "", f"dynafold: {answered.value}\n")
    assert "not found: " in err


def test_cli_deliveries(cli):
    assert cli_json(cli, "delivery-status", "--sender", "s1") == cli_json(cli, "deliveries", "--sender", "s1")
    assert [r["delivery_id"] for r in cli_json(cli, "deliveries", "--status", "RETRY_SCHEDULED")] == [
        "s2:m3", "s1:m1", "s1:m2"]
    assert [r["delivery_id"] for r in cli_json(cli, "deliveries", "--status", "retry_scheduled",
                                               "--due-before", "2024-05-01T10:30:00Z")] == ["s2:m3", "s1:m1"]
    assert [r["delivery_id"] for r in cli_json(cli, "deliveries", "--status", "RETRY_SCHEDULED",
                                               "--sender", "s1")] == ["s1:m1", "s1:m2"]
    assert [r["delivery_id"] for r in cli_json(cli, "deliveries", "--sender", "s1")] == ["s1:m2", "s1:m1", "s1:m4"]
    assert len(cli_json(cli, "deliveries", "--status", "RETRY_SCHEDULED", "--due-before", "now")) == 3
    code, out, _ = cli("deliveries", "--status", "FAILED")
    assert (code, out.strip()) == (0, "(none)")
    code, out, _ = cli("deliveries", "--status", "MAX_RETRIES_EXCEEDED")
    assert code == 0 and "DELIVERY_ID" in out and "s1:m4" in out


def test_cli_inventory(cli):
    one = cli_json(cli, "inventory", "P3")
    assert one["sku"] == "P3" and one["available"] == 28 and one["last_broadcast"]["tx_id"] == "tx-3"
    assert [r["sku"] for r in cli_json(cli, "inventory", "--page-size", "2")] == SKUS  # every page
    code, out, _ = cli("inventory", "--page-size", "2")
    lines = out.strip().splitlines()
    assert code == 0 and lines[0].split()[:4] == ["SKU", "PHYSICAL", "BUFFER", "AVAILABLE"]
    assert [line.split()[0] for line in lines[1:]] == SKUS


def test_cli_returns(cli):
    assert [r["event_id"] for r in cli_json(cli, "returns", "P1")] == ["e-1", "e-2", "e-3"]
    code, out, _ = cli("returns", "P1")
    assert code == 0 and [line.split()[0] for line in out.strip().splitlines()[1:]] == [t(10), t(20), t(30)]
    code, out, _ = cli("returns", "NOPE")
    assert (code, out.strip()) == (0, "(none)")


def test_cli_alerts(cli):
    assert [r["alert_id"] for r in cli_json(cli, "alerts")] == ["a4", "a3", "a2", "a1"]
    assert [r["alert_id"] for r in cli_json(cli, "alerts", "--unread", "--severity", "critical")] == ["a1"]
    assert [r["alert_id"] for r in cli_json(cli, "alerts", "--read")] == ["a4", "a2"]
    assert [r["alert_id"] for r in cli_json(cli, "alerts", "--sku", "P1", "--severity", "WARNING")] == ["a3"]
    code, out, _ = cli("alerts", "--unread")
    assert code == 0 and out.splitlines()[0].split()[:3] == ["TIME", "SEVERITY", "ALERT_TYPE"] and "a3" in out
    code, out, _ = cli("alerts", "--sku", "NOPE")
    assert (code, out.strip()) == (0, "(none)")


@pytest.mark.parametrize("argv, fragment", [
    (["pending-errors", "--older-than", "soon"], "--older-than"),
    (["pending-errors", "--older-than", "30"], "invalid duration '30'"),
    (["pending-errors", "--older-than", "-5m"], "--older-than"),
    (["deliveries", "--status", "DONE"], "unknown status 'DONE'"),
    (["deliveries", "--status", "PENDING", "--due-before", "tomorrow"], "invalid time 'tomorrow'"),
    (["deliveries"], "--status"),
    (["alerts", "--severity", "loud"], "unknown severity 'loud'"),
    (["alerts", "--unread", "--read"], "not allowed with"),
    (["inventory", "--page-size", "0"], "--page-size"),
    (["returns"], "required"),
    (["delivery"], "give a MESSAGE_ID"),
    (["delivery-status", "m1", "--status", "SUCCESS"], "not both"),
    (["bogus"], "invalid choice"),
    ([], "required"),
])
def test_cli_bad_arguments_are_one_line_exit_2(cli, argv, fragment):
    code, out, err = cli(*argv)
    assert code == 2 and out == ""
    assert fragment in err and len(err.strip().splitlines()) == 1 and err.startswith("dynafold: ")
