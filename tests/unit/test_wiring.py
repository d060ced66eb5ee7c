"""Local and AWS are wired by the same composition root (DESIGN.md rule 9).

Both sides are built for real — the AWS root from a Lambda-shaped environment, the local stack
over an engine address nothing listens on (building connects to nothing) — and their collaborator
graphs are walked: every collaborator the functions use must have the same type and the same
settings on both sides, except the adapters, which may differ only in the documented pairs.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from processors.local.stack import LocalStack
from processors.adapters.view_versions import LocalVersions
from processors.local.tables import local_tables
from processors.wiring.aws import aws_root
from processors.wiring.root import FUNCTIONS, Root

# Where AWS and a laptop may differ: where things go, never what is done with them.
ADAPTER_PAIRS = {
    ("SqsDeliveryQueue", "LocalSqsQueue"),
    ("SqsDeadLetters", "LocalDeadLetters"),
    ("SesMailer", "OutboxMailer"),
    ("LogOrderSource", "LogOrderSource"),
    # `dynafold status` (processors/services/status.py): CloudWatch, Step Functions, or the local stack's files.
    ("CloudWatchMetrics", "EmfMetrics"),
    ("CloudWatchAlarms", "TemplateAlarms"),
    ("MappingPositions", "CheckpointPositions"),
    ("StepFunctionsRebuilds", "LocalRebuilds"),
}
OWN = ("events.", "projections.", "processors.")
COLLABORATORS = ("store", "keyless_store", "personal_data", "views", "queries", "projector", "reactor",
                 "delivery_worker", "error_monitor", "api_deps", "event_trace", "status", "alert_reads",
                 "shopify_adoption", "support", "console_deps")

ENV = {
    "EVENTS_TABLE": "dynafold-events", "IDEMPOTENCY_TABLE": "dynafold-idempotency",
    "CHECKPOINTS_TABLE": "dynafold-checkpoints",
    "VIEW_TABLES": '{"inventory": "dynafold-inventory-v1", "pending-errors": "dynafold-pending-errors-v1", '
                   '"delivery-status": "dynafold-delivery-status-v2", "alerts": "dynafold-alerts-v1"}',
    "AWS_DEFAULT_REGION": "us-east-1", "DELIVERY_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/1/jobs",
    "DELIVERY_DEAD_LETTER_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/1/dead",
    "DYNAFOLD_NOTIFY_EMAIL": "ops@example.com", "DYNAFOLD_SENDER_EMAIL": "dynafold@example.com",
    "DYNAFOLD_LOW_STOCK_THRESHOLD": "7", "DYNAFOLD_MAX_RETRIES": "4",
    # The local stack's own names for what a stack is called and its failure queue (dynafold-stream-failures).
    "DYNAFOLD_STACK_NAME": "dynafold", "STREAM_FAILURE_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/1/dynafold-stream-failures",
}


def graph(obj: Any, path: str, out: dict[str, str], depth: int = 0) -> dict[str, str]:
    """path -> type name of every dynafold object reachable through attributes (settings by value)."""
    kind = type(obj)
    if not kind.__module__.startswith(OWN) or depth > 6:
        return out
    out[path] = kind.__name__
    if kind.__module__.startswith(("processors.adapters.", "processors.local.")):
        return out  # an adapter's insides are its own business; its type is compared above
    if dataclasses.is_dataclass(obj) and kind.__name__.endswith(("Settings", "Policy")):
        out[path] += f" = {obj!r}"
        return out
    fields = vars(obj) if hasattr(obj, "__dict__") else {}
    for name, value in sorted(fields.items()):
        if name.startswith("__") or (callable(value) and not hasattr(value, "__dict__")):
            continue
        graph(value, f"{path}.{name.lstrip('_')}", out, depth + 1)
    return out


@pytest.fixture()
def both(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Root, Root]:
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    local = LocalStack("http://127.0.0.1:9", local_tables("dynafold-", versions={}), tmp_path)
    return aws_root(ENV), local.root


def test_every_collaborator_has_the_same_type_and_settings_on_aws_and_locally(both):
    on_aws, local = both
    for name in COLLABORATORS:
        aws_graph = graph(getattr(on_aws, name), name, {})
        local_graph = graph(getattr(local, name), name, {})
        assert aws_graph.keys() == local_graph.keys(), name
        differences = {(aws_graph[p], local_graph[p]) for p in aws_graph if aws_graph[p] != local_graph[p]}
        assert differences <= ADAPTER_PAIRS, (name, differences - ADAPTER_PAIRS)


def test_both_sides_build_every_function_handler(both):
    for root in both:
        for function in FUNCTIONS:
            assert callable(root.handler(function)), function


def test_an_unknown_function_is_refused_by_name(both):
    with pytest.raises(ValueError, match="unknown function 'nope'"):
        both[0].handler("nope")


def test_a_switch_written_through_the_root_is_read_by_the_tables_it_switches(tmp_path):
    """On AWS the functions read, and the compare step writes, one SSM parameter; locally the
    switch must land in the very file the stack's tables follow, wherever that is."""
    tables = local_tables("dynafold-", settings=LocalVersions(tmp_path / "elsewhere" / "views.json"))
    stack = LocalStack("http://127.0.0.1:9", tables, tmp_path / "state")
    assert tables.views["inventory"] == "dynafold-inventory-v1"
    stack.root.adapters.view_versions().write({"inventory": "v2"})
    assert tables.views["inventory"] == "dynafold-inventory-v2"
