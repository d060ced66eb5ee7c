"""Figures measured by `make bench` that the cost model reads, each with the day it was measured.

Re-measure with ``python -m benchmarks projector`` (it prints the lines below) and update the figure
and its date together. They are DynamoDB Local figures on the shared 2-core machine the benchmarks
run on: every DynamoDB call there is a local HTTP round trip to a Java engine sharing the CPU with
the Python under test, so they stand for Lambda only roughly (a Lambda at 512 MB has a fraction of a
vCPU, DynamoDB's own latency is a few milliseconds a call).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class BatchTime:
    """How long one invocation takes on a full batch of ``batch_size`` stream records."""

    function: str  # the template's logical id
    batch_size: int  # the template's BatchSize it was measured with
    ms_per_batch: float
    measured: str  # ISO date
    how: str


BATCH_TIMES: dict[str, BatchTime] = {
    "ProjectorFunction": BatchTime(
        "ProjectorFunction", 100, 400.0, "2026-12-06",
        "benchmarks/projector.py: 10,000 mixed events, streams interleaved, folded in batches of 100"),
    "ReactorFunction": BatchTime(
        "ReactorFunction", 25, 267.0, "2026-12-06",
        "benchmarks/projector.py: the same events, views caught up, storefront broadcasts on, batches of 25"),
}
