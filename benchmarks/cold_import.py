"""Cold import of every Lambda function from its SAM-zipped artifact, against `import boto3` (issue 21 §2).

Issue 13 §5: SAM's zip dates every file 1980-01-01, so timestamp-based .pyc files (pip's default,
what the layer used to ship) are stale on Lambda and every module is recompiled at each cold
start. The build ships unchecked-hash .pyc files. This zips a `sam build` output the way SAM
does, unpacks it with the zip's times as Lambda does, and imports each function's handler in fresh
isolated processes (tests/integration/import_built.py: only the artifact, the layer and the
standard library; the host's pydantic_core stands in for the arm64 build on an x86 machine).

Each sample is a pair of fresh processes, in alternating order: `import boto3` (then a plain
`boto3.client("dynamodb")`) and the function's handler import (then its handler built by the
composition root, as the first invocation does before its first record). Two measuring methods:
the ratio of the minimum wall times over the rounds, and the median of the pairs' CPU-time
ratios (each pair sees the same load on a shared machine). Goal: every function's import
<= 1.3x `import boto3`. The projector is also imported from a copy with timestamp bytecode (the
layer before issue 13). Prints figures, never fails.
"""

from __future__ import annotations

import json
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.common import report
from processors.operations.artifact import extract_like_lambda, zip_like_sam

ROOT = Path(__file__).resolve().parents[1]
IMPORT_BUILT = ROOT / "tests" / "integration" / "import_built.py"
DEFAULT_BUILD = ROOT / ".aws-sam" / "build"
BOTO3 = "modules:boto3"
BOTO3_CLIENT = "build:client:dynamodb"
GOAL = 1.3
# The layer's packages worth naming when an import loads them.
HEAVY = ("boto3", "pydantic", "aws_lambda_powertools", "cryptography", "jinja2", "yaml", "cloudevents")
ROUNDS = 7
# Every Lambda function (processors.wiring.root.FUNCTIONS): its build directory and entry module.
LAMBDA_FUNCTIONS = ("ingest", "error-monitor", "rebuild-compare", "stream-failures", "rebuild-segment", "reactor",
                    "delivery-worker", "projector", "console")
# What the composition root reads when it builds a handler (template.yaml's Globals, placeholder
# names; no VIEW_VERSIONS_PARAMETER, so no SSM read is set up).
BUILD_ENV = {"EVENTS_TABLE": "events", "IDEMPOTENCY_TABLE": "idempotency", "CHECKPOINTS_TABLE": "checkpoints",
             "KEYS_TABLE": "keys", "VIEW_TABLES": json.dumps({f: f"{f}-v1" for f in (
                 "inventory", "inventory-returns", "pending-errors", "delivery-status", "alerts")}),
             "DELIVERY_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/jobs",
             "DELIVERY_DEAD_LETTER_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/dead",
             "AWS_DEFAULT_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench",
             "PATH": "/usr/bin:/bin"}


def build_dir_name(function: str) -> str:
    """`sam build`'s directory of a function: its template resource (``rebuild-segment`` -> RebuildSegmentFunction)."""
    return "".join(part.title() for part in function.split("-")) + "Function"


def entry_point(function: str) -> str:
    """The template's Handler of a function: ``processors.functions.<module>.handler``."""
    return f"processors.functions.{function.replace('-', '_')}.handler"


def _host_site() -> Path:
    return next(Path(p) for p in sys.path if (Path(p) / "pydantic_core").is_dir())


@dataclass(frozen=True)
class Sample:
    """One fresh process: its import, then what it built (the handler or the baseline's client)."""

    cpu: float
    wall: float
    build_cpu: float
    compiled: int
    layer_packages: tuple[str, ...]


def _import(task: Path, layer: Path, what: str, build: str) -> Sample:
    # S603: a fixed argv of our own interpreter and script; the paths are our build's
    done = subprocess.run([sys.executable, "-I", "-S", "-B", str(IMPORT_BUILT), str(task), str(layer),  # noqa: S603
                           str(_host_site()), what, build], capture_output=True, text=True, timeout=120,
                          check=True, env=BUILD_ENV)
    result = json.loads(done.stdout)
    return Sample(result["import_cpu_seconds"], result["import_seconds"], result["build_cpu_seconds"],
                  len(result["compiled"]), tuple(result["layer_packages"]))


@dataclass
class Pairs:
    """A function's samples, each taken beside a baseline's (`import boto3`, then a client)."""

    baseline: list[Sample] = field(default_factory=list)
    measured: list[Sample] = field(default_factory=list)

    def take(self, baseline: Callable[[], Sample], measured: Callable[[], Sample], measured_first: bool) -> None:
        if measured_first:
            self.measured.append(measured())
            self.baseline.append(baseline())
        else:
            self.baseline.append(baseline())
            self.measured.append(measured())

    def cpu_ratio(self) -> float:
        """Median of the pairs' import CPU-time ratios."""
        return statistics.median(m.cpu / b.cpu for b, m in zip(self.baseline, self.measured, strict=True))

    def wall_ratio(self) -> float:
        """Minimum import wall time over the rounds, against the baseline's minimum."""
        return min(m.wall for m in self.measured) / min(b.wall for b in self.baseline)

    def built_ratio(self) -> float:
        """Median of the pairs' CPU ratios of import + build (handler / `import boto3` + one client)."""
        return statistics.median((m.cpu + m.build_cpu) / (b.cpu + b.build_cpu)
                                 for b, m in zip(self.baseline, self.measured, strict=True))


def _timestamped(function: Path, layer: Path, into: Path) -> tuple[Path, Path]:
    """The build as it was: no bytecode in the function, pip's timestamp bytecode in the layer."""
    task, opt = into / "function", into / "layer"
    shutil.copytree(function, task, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(layer, opt)
    # S603: a fixed argv of our own interpreter and compileall on a copy of our build
    subprocess.run([sys.executable, "-m", "compileall", "-q", "-f", "-j", "2",  # noqa: S603
                    "--invalidation-mode", "timestamp", str(opt)], check=True, capture_output=True)
    return task, opt


def _unzipped(function: Path, layer: Path, into: Path) -> tuple[Path, Path]:
    task = extract_like_lambda(zip_like_sam(function, into / "function.zip"), into / "task")
    opt = extract_like_lambda(zip_like_sam(layer, into / "layer.zip"), into / "opt")
    return task, opt / "python"


# Every function's entry point: none may load `cryptography` at its cold start (issue 22); the
# functions that seal or open a personal value load it on first use (events/cipher.py).
FUNCTION_MODULES = ("projector", "reactor", "ingest", "error_monitor", "delivery_worker", "stream_failures",
                    "rebuild_segment", "rebuild_compare")
_CRYPTO_PROBE = """
import json, sys, time
modules = sys.argv[1].split(",")
loaded = []
for name in modules:
    __import__(f"processors.functions.{name}")
    if "cryptography" in sys.modules:
        loaded.append(name)
started = time.process_time()
from cryptography.hazmat.primitives.ciphers.aead import AESGCM  # noqa: F401
print(json.dumps({"loaded_at_cold_start": loaded, "first_use_cpu_seconds": time.process_time() - started}))
"""


def lazy_crypto(rounds: int = 5) -> dict[str, float]:
    """Which functions import `cryptography` at cold start (none should), and what its first use
    costs the ones that seal or open a value (host interpreter; fresh processes)."""
    env = {"EVENTS_TABLE": "events", "IDEMPOTENCY_TABLE": "idempotency", "AWS_DEFAULT_REGION": "us-east-1"}
    costs, loaded = [], set()
    for _ in range(rounds):
        # S603: a fixed argv of our own interpreter and a probe written above
        done = subprocess.run([sys.executable, "-c", _CRYPTO_PROBE, ",".join(FUNCTION_MODULES)],  # noqa: S603
                              capture_output=True, text=True, timeout=120, check=True, cwd=ROOT,
                              env={**env, "PATH": "/usr/bin:/bin"})
        answer = json.loads(done.stdout)
        costs.append(answer["first_use_cpu_seconds"])
        loaded.update(answer["loaded_at_cold_start"])
    first_use = statistics.median(costs)
    report("cryptography (AES-256-GCM for personal values), host interpreter", [
        ("functions importing it at cold start", ", ".join(sorted(loaded)) or "none"),
        ("first seal or open in an invocation",
         f"{first_use * 1e3:.1f} ms CPU (median of {rounds}), once per container"),
    ])
    return {"crypto_first_use_ms": first_use * 1e3, "crypto_at_cold_start": float(len(loaded))}


def run(build_dir: Path = DEFAULT_BUILD, rounds: int = ROUNDS) -> dict[str, float]:
    crypto = lazy_crypto(rounds)
    layer = build_dir / "DependenciesLayer"
    missing = [f for f in LAMBDA_FUNCTIONS if not (build_dir / build_dir_name(f)).is_dir()]
    if missing or not layer.is_dir():
        print(f"\n== cold import: no `sam build` output in {build_dir}; run `make sam-build` first")
        return crypto
    with tempfile.TemporaryDirectory(prefix="dynafold-cold-") as scratch:
        work = Path(scratch)
        opt = extract_like_lambda(zip_like_sam(layer, work / "layer.zip"), work / "opt") / "python"
        tasks = {f: extract_like_lambda(zip_like_sam(build_dir / build_dir_name(f), work / f"{f}.zip"), work / f)
                 for f in LAMBDA_FUNCTIONS}
        old_task, old_opt = _unzipped(*_timestamped(build_dir / build_dir_name("projector"), layer, work / "old-build"),
                                      work / "before")
        old = "projector, timestamp .pyc (the layer before issue 13)"
        pairs: dict[str, Pairs] = {name: Pairs() for name in [*LAMBDA_FUNCTIONS, old]}
        for index in range(rounds):  # interleaved, so drift on a shared machine favours no function
            for name, pair in pairs.items():
                task, site, function = (old_task, old_opt, "projector") if name == old else (tasks[name], opt, name)

                def measured(task: Path = task, site: Path = site, function: str = function) -> Sample:
                    return _import(task, site, entry_point(function), f"build:{function}")

                def baseline(task: Path = task) -> Sample:
                    return _import(task, opt, BOTO3, BOTO3_CLIENT)

                pair.take(baseline, measured, measured_first=index % 2 == 1)
    boto3 = [b for pair in pairs.values() for b in pair.baseline]
    cpu = statistics.median(b.cpu for b in boto3)
    client = statistics.median(b.build_cpu for b in boto3)
    print(f"\n== cold import from the SAM-zipped artifact / `import boto3`, {rounds} rounds of fresh process pairs "
          f"(goal <= {GOAL}x)\n  import boto3 (the layer's): {cpu * 1e3:.0f} ms CPU (median), "
          f"{min(b.wall for b in boto3) * 1e3:.0f} ms wall (min); a DynamoDB client then {client * 1e3:.0f} ms CPU")
    header = ("function", "CPU x", "wall x", "CPU ms", "+handler x", "recompiled", "heavy packages at import")
    lines = [header]
    result: dict[str, float] = {"boto3_ms": cpu * 1e3}
    for name, pair in pairs.items():
        key = "projector_timestamp_pyc" if name == old else name
        result[f"{key}_cpu_ratio"], result[f"{key}_wall_ratio"] = pair.cpu_ratio(), pair.wall_ratio()
        result[f"{key}_built_ratio"] = pair.built_ratio()
        loaded = set().union(*(m.layer_packages for m in pair.measured))
        lines.append((name, f"{pair.cpu_ratio():.2f}", f"{pair.wall_ratio():.2f}",
                      f"{statistics.median(m.cpu for m in pair.measured) * 1e3:.0f}", f"{pair.built_ratio():.2f}",
                      str(max(m.compiled for m in pair.measured)),
                      ", ".join(p for p in HEAVY if p in loaded) or "none"))
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    for line in lines:
        print("  " + "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip())
    print("  CPU x: median of the pairs' CPU-time ratios; wall x: min wall / min wall; +handler x: import and the "
          "handler built (first invocation, before any record) / import boto3 and one client, CPU")
    return {**crypto, **result}


if __name__ == "__main__":
    run(Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_BUILD)
