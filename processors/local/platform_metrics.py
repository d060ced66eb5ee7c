"""The metrics AWS services report of the stack, locally: Lambda's IteratorAge for a stream
mapping, SQS's age of the stream failure queue's oldest message and its visible messages.

On AWS these reach CloudWatch from the services themselves, not from the functions' logs. Locally
the stand-ins of those services (the stream runner for Lambda's event source mapping, the local
stack's queue feed for SQS) write them as EMF lines under ``<logs>/platform/``, one file per
namespace, so the local metrics reader (``emf_metrics``) answers the same metric questions from
the same metric names as GetMetricData does on AWS. Only these are reported; an alarm on any other
AWS metric cannot be evaluated locally.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path

PLATFORM_DIR = "platform"
# (namespace, metric) of what the local stand-ins report.
REPORTED = frozenset({("AWS/Lambda", "IteratorAge"), ("AWS/SQS", "ApproximateAgeOfOldestMessage"),
                      ("AWS/SQS", "ApproximateNumberOfMessagesVisible")})


def provided_locally(namespace: str, name: str) -> bool:
    """Whether a local metrics reader can answer this metric: every metric the functions emit
    (their own namespace), and of AWS's only what the stand-ins report."""
    return not namespace.startswith("AWS/") or (namespace, name) in REPORTED


class PlatformMetrics:
    def __init__(self, directory: Path, clock: Callable[[], float] = time.time) -> None:
        self.directory = directory
        self._clock = clock
        self._lock = threading.Lock()

    def put(self, namespace: str, name: str, unit: str, value: float, dimensions: Mapping[str, str]) -> None:
        """One value, as an EMF line (the format the functions' metrics use, with CloudWatch's names)."""
        line = {"_aws": {"Timestamp": int(self._clock() * 1000), "CloudWatchMetrics": [
            {"Namespace": namespace, "Dimensions": [sorted(dimensions)], "Metrics": [{"Name": name, "Unit": unit}]}]},
            **dimensions, name: value}
        path = self.directory / f"{namespace.replace('/', '-')}.log"
        with self._lock:
            self.directory.mkdir(parents=True, exist_ok=True)
            with open(path, "a", encoding="utf-8") as out:  # a metric, not state: no fsync per line
                out.write(json.dumps(line, separators=(",", ":")) + "\n")
