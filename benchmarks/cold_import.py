"""Cold import of the projector from its SAM-zipped artifact, against a bare boto3 + Powertools + pydantic import.

Issue 13 §5: SAM's zip dates every file 1980-01-01, so timestamp-based .pyc files (pip's default,
what the layer used to ship) are stale on Lambda and every module is recompiled at each cold
start. The build now ships unchecked-hash .pyc files. This zips a `sam build` output the way SAM
does, unpacks it with the zip's times as Lambda does, and imports the projector's handler in fresh
isolated processes (tests/integration/import_built.py: only the artifact, the layer and the
standard library; the host's pydantic_core stands in for the arm64 build on an x86 machine),
for the build as shipped and for the same build with timestamp bytecode (the old layer).
Goal: projector <= 1.3x the bare import. Times are the importing process's CPU time (wall time on
a machine shared with other builds mostly measures the queue for a core); wall medians are printed
beside them. Prints figures, never fails.
"""

from __future__ import annotations

import json
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks.common import report
from processors.operations.artifact import extract_like_lambda, zip_like_sam

ROOT = Path(__file__).resolve().parents[1]
IMPORT_BUILT = ROOT / "tests" / "integration" / "import_built.py"
DEFAULT_BUILD = ROOT / ".aws-sam" / "build"
HANDLER = "processors.functions.projector.handler"
BARE = "modules:boto3,aws_lambda_powertools,pydantic"
GOAL = 1.3


def _host_site() -> Path:
    return next(Path(p) for p in sys.path if (Path(p) / "pydantic_core").is_dir())


def _import_seconds(task: Path, layer: Path, what: str) -> tuple[float, float, int]:
    """(CPU seconds, wall seconds, modules compiled from source) of one import in a fresh process."""
    # S603: a fixed argv of our own interpreter and script; the paths are our build's
    done = subprocess.run([sys.executable, "-I", "-S", "-B", str(IMPORT_BUILT), str(task), str(layer),  # noqa: S603
                           str(_host_site()), what], capture_output=True, text=True, timeout=120, check=True)
    result = json.loads(done.stdout)
    return result["import_cpu_seconds"], result["import_seconds"], len(result["compiled"])


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


def run(build_dir: Path = DEFAULT_BUILD, rounds: int = 5) -> dict[str, float]:
    crypto = lazy_crypto(rounds)
    function, layer = build_dir / "ProjectorFunction", build_dir / "DependenciesLayer"
    if not function.is_dir() or not layer.is_dir():
        print(f"\n== cold import: no `sam build` output in {build_dir}; run `make sam-build` first")
        return crypto
    with tempfile.TemporaryDirectory(prefix="dynafold-cold-") as scratch:
        work = Path(scratch)
        variants = {"shipped (unchecked-hash .pyc)": _unzipped(function, layer, work / "shipped")}
        old_function, old_layer = _timestamped(function, layer, work / "old-build")
        variants["before (timestamp .pyc)"] = _unzipped(old_function, old_layer, work / "before")
        cpu: dict[tuple[str, str], list[float]] = {}
        wall: dict[tuple[str, str], list[float]] = {}
        compiled: dict[str, int] = {}
        for _ in range(rounds):  # interleaved, so drift on a shared machine favours no variant
            for name, (task, opt) in variants.items():
                for what in (BARE, HANDLER):
                    cpu_seconds, wall_seconds, recompiled = _import_seconds(task, opt, what)
                    cpu.setdefault((name, what), []).append(cpu_seconds)
                    wall.setdefault((name, what), []).append(wall_seconds)
                    if what == HANDLER:
                        compiled[name] = recompiled
    median = {key: statistics.median(values) for key, values in cpu.items()}
    median_wall = {key: statistics.median(values) for key, values in wall.items()}
    shipped = "shipped (unchecked-hash .pyc)"
    bare, bare_wall = median[(shipped, BARE)], median_wall[(shipped, BARE)]
    result: dict[str, float] = {"bare_ms": bare * 1e3}
    rows = [("bare boto3 + powertools + pydantic, shipped layer",
             f"{bare * 1e3:.0f} ms CPU   (wall {bare_wall * 1e3:.0f} ms)")]
    for name in variants:
        projector, projector_wall = median[(name, HANDLER)], median_wall[(name, HANDLER)]
        result[f"{name.split()[0]}_projector_ms"] = projector * 1e3
        result[f"{name.split()[0]}_ratio"] = projector / bare
        figures = (f"{projector * 1e3:.0f} ms CPU = {projector / bare:.2f}x bare   (wall {projector_wall * 1e3:.0f} ms "
                   f"= {projector_wall / bare_wall:.2f}x; {compiled[name]} modules recompiled; goal <= {GOAL}x)")
        rows.append((f"projector, {name}", figures))
    report(f"cold import from the SAM-zipped artifact (median of {rounds} fresh processes)", rows)
    return {**crypto, **result}


if __name__ == "__main__":
    run(Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_BUILD)
