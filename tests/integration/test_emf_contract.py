"""Every alarm and dashboard line on the application's own metrics watches a metric that is emitted.

CloudWatch matches a metric by name AND its exact dimension set: an alarm on {service} or a
dashboard SEARCH over {service} never sees a count emitted only with {service, event_type}, and
stays silent forever (EMF: https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/
CloudWatch_Embedded_Metric_Format_Specification.html; SEARCH schemas: .../search-expression-syntax.html).
So the demo drives the seeds' traffic through every handler (ingest, projector, reactor, delivery
worker, error monitor: the composition root's handlers on DynamoDB Local), the EMF lines they
print are read back from their logs, and each metric the template refers to must be among them.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from processors.operations.template import Tag, load_template
from processors.wiring.root import FUNCTIONS

ROOT = Path(__file__).resolve().parents[2]
NAMESPACE = "dynafold"  # the MetricsNamespace parameter's default, and Powertools' namespace locally
# (metric name, dimension names, the values of those the template pins: service)
Emitted = tuple[str, frozenset[str], tuple[tuple[str, str], ...]]
SEARCH = re.compile(r"SEARCH\('\{\"(?P<ns>[^\"]+)\",(?P<dims>[^}]*)\}\s+MetricName=\"(?P<metric>[^\"]+)\"")


def emf_metrics(lines: list[str]) -> set[tuple[str, str, frozenset[tuple[str, str]]]]:
    """(namespace, metric, {(dimension, value)}) for every metric of every EMF line."""
    found = set()
    for line in lines:
        if not line.startswith('{"_aws"'):
            continue
        blob = json.loads(line)
        for directive in blob["_aws"]["CloudWatchMetrics"]:
            for dimension_set in directive["Dimensions"]:
                dims = frozenset((name, str(blob[name])) for name in dimension_set)
                for metric in directive["Metrics"]:
                    found.add((directive["Namespace"], metric["Name"], dims))
    return found


def wanted_by_template(template: dict[str, Any]) -> list[tuple[str, str, dict[str, str | None]]]:
    """(where, metric, {dimension: value or None for any value}) of each reference to our namespace."""
    wanted: list[tuple[str, str, dict[str, str | None]]] = []
    for name, resource in template["Resources"].items():
        if resource["Type"] != "AWS::CloudWatch::Alarm":
            continue
        props = resource["Properties"]
        metrics = [props] + [m["MetricStat"]["Metric"] for m in props.get("Metrics", []) if "MetricStat" in m]
        for metric in metrics:
            if metric.get("Namespace") == Tag("Ref", "MetricsNamespace"):
                wanted.append((name, metric["MetricName"], {d["Name"]: d["Value"] for d in metric.get("Dimensions", [])}))
    body = template["Resources"]["Dashboard"]["Properties"]["DashboardBody"].value
    body = re.sub(r"\$\{[^}]+\}", lambda m: NAMESPACE if m.group(0) == "${MetricsNamespace}" else "x", body)
    for widget in json.loads(body)["widgets"]:
        for line in widget.get("properties", {}).get("metrics", []):
            if isinstance(line[0], dict):  # an expression: only SEARCH names metrics
                search = SEARCH.search(line[0]["expression"])
                if search and search["ns"] == NAMESPACE:
                    dims = [d.strip() for d in search["dims"].split(",") if d.strip()]
                    wanted.append((f"dashboard {widget['properties']['title']!r}", search["metric"],
                                   dict.fromkeys(dims)))
            elif line[0] == NAMESPACE:
                values = [v for v in line[2:] if not isinstance(v, dict)]
                wanted.append((f"dashboard {widget['properties']['title']!r}", line[1],
                               dict(zip(values[::2], values[1::2], strict=True))))
    return wanted


def unmatched(wanted: list[tuple[str, str, dict[str, str | None]]],
              emitted: set[tuple[str, str, frozenset[tuple[str, str]]]]) -> list[str]:
    problems = []
    for where, metric, dims in wanted:
        if not any(ns == NAMESPACE and name == metric and {d for d, _ in got} == set(dims)
                   and all(value is None or (d, value) in got for d, value in dims.items())
                   for ns, name, got in emitted):
            shapes = sorted({tuple(sorted(got)) for ns, name, got in emitted if name == metric})
            problems.append(f"{where}: {metric} with dimensions {dims} is never emitted (emitted as {shapes})")
    return problems


@pytest.fixture(scope="module")
def emitted(dynamodb_local, tmp_path_factory) -> dict[str, set[tuple[str, str, frozenset[tuple[str, str]]]]]:
    """Run the demo once; the EMF each function printed, by function."""
    directory = tmp_path_factory.mktemp("demo")
    # Its own process: the Powertools loggers bind their stream at import, and an earlier test's
    # captured stdout must not be where this run's handlers write. Its own database (access key).
    env = {**os.environ, "PYTHONPATH": str(ROOT), "AWS_ACCESS_KEY_ID": "emf" + uuid.uuid4().hex[:16],
           "AWS_SECRET_ACCESS_KEY": "local"}
    done = subprocess.run([sys.executable, "-m", "processors.cli.main", "demo", "--json", "--endpoint-url",
                           dynamodb_local.endpoint_url, "--table-prefix", "emf-"],
                          cwd=directory, env=env, capture_output=True, text=True, timeout=240, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    logs = directory / ".dynafold" / "logs"
    return {path.stem.removeprefix("dynafold-"): emf_metrics(path.read_text(encoding="utf-8").splitlines())
            for path in logs.glob("*.log")}


# The demo's traffic runs these; the stream failure consumer runs only when a batch is given up on,
# the rebuild's functions only under its state machine, the console when an operator opens a page
# (their metrics are AWS/Lambda's own: invocations, errors, duration).
ON_DEMAND = {"stream-failures", "rebuild-segment", "rebuild-compare", "console"}


def test_every_function_emitted_emf(emitted):
    assert {f for f, metrics in emitted.items() if metrics} >= set(FUNCTIONS) - ON_DEMAND


def test_every_alarm_and_dashboard_metric_is_emitted_with_its_dimensions(emitted):
    everything = set().union(*emitted.values())
    wanted = wanted_by_template(load_template())
    assert len(wanted) >= 20  # the alarms' and the dashboard's own metrics were all found
    assert unmatched(wanted, everything) == []


def test_a_search_over_the_wrong_dimension_set_is_caught(emitted):
    """The defect this guards against: {service} never matches EventsAppended {service, event_type}."""
    everything = set().union(*emitted.values())
    assert unmatched([("dashboard", "EventsAppended", {"service": None})], everything)
    assert unmatched([("dashboard", "AlertsRaised", {"service": None})], everything)
    assert not unmatched([("dashboard", "EventsAppended", {"service": None, "event_type": None})], everything)
    assert unmatched([("alarm", "RecordsFailed", {"service": "reactor"})], everything)  # wrong service
