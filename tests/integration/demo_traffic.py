"""The demo's traffic (processors/local/demo_scenario.py, `dynafold demo`) on the session's engine,
kept for the support questions' tests: its own database, its stack's state in a folder the test
reads afterwards (checkpoints, queues, the functions' logs and metrics)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class DemoRun:
    endpoint_url: str
    access_key: str  # DynamoDB Local's database of this run
    directory: Path  # the working directory (the CLI's .dynafold/views.json is under it)
    state_dir: Path  # `--state-dir` of the demo, for `dynafold status --state-dir`
    summary: dict[str, Any]  # what `dynafold demo --json` printed


def run_demo(endpoint_url: str, directory: Path, prefix: str = "dynafold-") -> DemoRun:
    """`dynafold demo --json --state-dir` in its own process: the Powertools loggers bind their stream
    at import, so an earlier test's captured stdout must not be where this run's handlers write."""
    access_key = "demo" + uuid.uuid4().hex[:16]
    state_dir = directory / ".dynafold"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "AWS_ACCESS_KEY_ID": access_key, "AWS_SECRET_ACCESS_KEY": "local"}
    done = subprocess.run([sys.executable, "-m", "processors.cli.main", "demo", "--json", "--endpoint-url",
                           endpoint_url, "--table-prefix", prefix, "--state-dir", str(state_dir)],
                          cwd=directory, env=env, capture_output=True, text=True, timeout=240, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    return DemoRun(endpoint_url, access_key, directory, state_dir, json.loads(done.stdout))


Cli = Callable[..., tuple[int, str, str]]


def demo_cli(demo: DemoRun, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
             *common: str) -> Cli:
    """`dynafold ...` in this process against the demo's database, from its folder: (exit code, stdout,
    stderr); ``common`` is added to every command line after the endpoint."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", demo.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "local")
    monkeypatch.chdir(demo.directory)

    def run(*argv: str) -> tuple[int, str, str]:
        from processors.cli.main import main

        code = main([*argv, "--endpoint-url", demo.endpoint_url, *common])
        out, err = capsys.readouterr()
        return code, out, err

    return run
