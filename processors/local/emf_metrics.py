"""``MetricsReader`` locally: the EMF lines the functions printed into their log files (and the
stand-ins' platform lines), bucketed as GetMetricData would (projections.health.metrics.series_of).

The functions print EMF to stdout, which CloudWatch Logs turns into metrics on AWS and the local
log router writes to ``<logs>/<function>.log`` (processors/local/lambda_logs.py). A line holds one
directive per namespace, each with dimension sets and metric names whose values are members of the
line, a number or an array of numbers (EMF spec, "Target members":
https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html).
A line that is not EMF, or is malformed, is not a metric (CloudWatch drops it too).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from processors.local.platform_metrics import PLATFORM_DIR, provided_locally
from projections.health.metrics import MetricQuery, Sample, Series, series_of

_EMF_PREFIX = '{"_aws"'
_HEAD_BYTES = 256  # what tells a file appended to from one replaced


def samples_of(line: str) -> list[Sample]:
    """Every value of one EMF line, per dimension set ([] for anything else)."""
    if not line.startswith(_EMF_PREFIX):
        return []
    try:
        blob = json.loads(line)
        meta = blob["_aws"]
        at = datetime.fromtimestamp(meta["Timestamp"] / 1000, timezone.utc)
        found = []
        for directive in meta["CloudWatchMetrics"]:
            for names in directive.get("Dimensions", [[]]):
                dimensions = frozenset((name, str(blob[name])) for name in names)
                for metric in directive["Metrics"]:
                    found += [Sample(directive["Namespace"], metric["Name"], dimensions, at, float(value))
                              for value in _values(blob.get(metric["Name"]))]
        return found
    except (ValueError, KeyError, TypeError, OverflowError):
        return []


def _values(member: Any) -> list[Any]:
    if isinstance(member, list):
        return [value for value in member if isinstance(value, int | float)]
    return [member] if isinstance(member, int | float) and not isinstance(member, bool) else []


class EmfMetrics:
    """The log files read as they grow: each call parses only the lines appended since the last
    (the files are append-only; one whose first bytes changed, or that shrank, was replaced and is
    read again from its start), so a page that asks for the status every few seconds does not
    re-read the day's logs."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        # file -> (its first bytes, bytes parsed, their samples)
        self._read: dict[Path, tuple[bytes, int, list[Sample]]] = {}
        self._lock = threading.Lock()

    def files(self) -> list[Path]:
        return sorted(self.directory.glob("*.log")) + sorted((self.directory / PLATFORM_DIR).glob("*.log"))

    def samples(self, start: datetime, end: datetime) -> Iterator[Sample]:
        with self._lock:
            parsed = [self._caught_up(path) for path in self.files()]
        for found in parsed:
            yield from (sample for sample in found if start <= sample.time < end)

    def _caught_up(self, path: Path) -> list[Sample]:
        head, offset, found = self._read.get(path, (b"", 0, []))
        try:
            with open(path, "rb") as handle:
                start = handle.read(_HEAD_BYTES)
                if len(start) < len(head) or start[:len(head)] != head:  # replaced, not appended to
                    offset, found = 0, []
                handle.seek(offset)
                chunk = handle.read()
        except FileNotFoundError:
            self._read.pop(path, None)
            return []
        complete = chunk[:chunk.rfind(b"\n") + 1]  # a line still being written waits for the next call
        if complete:
            found = found + [sample for line in complete.decode("utf-8", errors="replace").splitlines()
                             for sample in samples_of(line)]
            offset += len(complete)
        self._read[path] = (start[:offset], offset, found)
        return found

    def series(self, queries: Sequence[MetricQuery], start: datetime, end: datetime,
               period: int) -> dict[str, Series]:
        samples = list(self.samples(start, end))
        return {query.id: series_of(samples, query, start, end, period) for query in queries}

    @staticmethod
    def provides(namespace: str, name: str) -> bool:
        return provided_locally(namespace, name)

    def __str__(self) -> str:
        return f"the metrics in {self.directory}"
