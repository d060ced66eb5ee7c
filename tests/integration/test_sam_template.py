"""template.yaml passes the SAM/CloudFormation linters (offline, from the SAM CLI's own venv)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SAM_VENV = Path(os.environ.get("DYNAFOLD_SAM_VENV", ROOT / ".venv-sam"))

pytestmark = pytest.mark.sam


def _tool(name: str) -> str:
    path = SAM_VENV / "bin" / name
    if not path.exists():
        pytest.fail(f"{path} missing: run `make test` (it builds the SAM tooling venv)")
    return str(path)


def _run(*command: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SAM_CLI_TELEMETRY": "0", "AWS_DEFAULT_REGION": "us-east-1"}
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, env=env, timeout=300, check=False)


def test_cfn_lint_is_clean():
    done = _run(_tool("cfn-lint"), "template.yaml")
    assert done.returncode == 0, done.stdout + done.stderr


def test_sam_validate_lint_is_clean():
    done = _run(_tool("sam"), "validate", "--lint", "--region", "us-east-1")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "is a valid SAM Template" in done.stdout + done.stderr
