"""Shared benchmark plumbing: one engine, a fresh database per benchmark, timing helpers."""

from __future__ import annotations

import statistics
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from processors.adapters.aws import dynamodb_client
from processors.local.engine import LocalEngine
from processors.operations.tables import TableNames, create_tables


@dataclass
class Bench:
    endpoint_url: str
    client: Any
    names: TableNames
    access_key: str


@contextmanager
def engine(endpoint_url: str | None = None) -> Iterator[str]:
    if endpoint_url:
        yield endpoint_url
        return
    with LocalEngine(in_memory=True) as local:
        yield local.endpoint_url


def fresh(endpoint_url: str) -> Bench:
    """A new empty database on the engine (its own access key), with the template's tables."""
    key = "b" + uuid.uuid4().hex[:15]
    client = dynamodb_client(endpoint_url, access_key=key)
    names = TableNames.with_prefix("bench-")
    create_tables(client, names)
    return Bench(endpoint_url, client, names, key)


def interleaved_medians(operations: list[Callable[[int], None]], runs: list[int], rounds: int = 4) -> list[float]:
    """Median wall time of each operation(i), measured in alternating rounds rather than one after
    another, so the engine's warm-up and drift do not favour whichever runs last."""
    samples: list[list[float]] = [[] for _ in operations]
    counters = [0] * len(operations)
    for _ in range(rounds):
        for index, (operation, total) in enumerate(zip(operations, runs, strict=True)):
            for _ in range(max(1, total // rounds)):
                started = time.perf_counter()
                operation(counters[index])
                samples[index].append(time.perf_counter() - started)
                counters[index] += 1
    return [statistics.median(s) for s in samples]


@dataclass(frozen=True)
class Paired:
    """Medians of a baseline and a measured operation timed in adjacent pairs, and the median of
    the pairs' ratios (measured / baseline): on a machine whose load drifts, each pair sees the
    same load, so the ratio is steadier than the ratio of the medians."""

    baseline: float
    measured: float
    ratio: float


def paired(baseline: Callable[[int], None], measured: Callable[[int], None], runs: int) -> Paired:
    """Time ``runs`` pairs, the baseline first in even pairs and second in odd ones."""
    base: list[float] = []
    ours: list[float] = []
    for i in range(runs):
        order = [(baseline, base), (measured, ours)]
        for operation, samples in order if i % 2 == 0 else reversed(order):
            started = time.perf_counter()
            operation(i)
            samples.append(time.perf_counter() - started)
    ratios = [m / b for b, m in zip(base, ours, strict=True)]
    return Paired(statistics.median(base), statistics.median(ours), statistics.median(ratios))


def report(title: str, rows: list[tuple[str, str]]) -> None:
    print(f"\n== {title}")
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"  {name.ljust(width)}  {value}")
