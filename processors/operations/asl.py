"""Amazon States Language tooling for the rebuild state machine: the `asl-validator` npm package.

Installed once into ~/.cache/dynafold (like DynamoDB Local, see processors/local/engine.py), so
`make test` validates statemachine/rebuild.asl.json without a global npm install.
https://www.npmjs.com/package/asl-validator
"""

from __future__ import annotations

import fcntl
import json
import re
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from processors.local.engine import cache_dir

ASL_VALIDATOR = "asl-validator@4.0.0"
ROOT = Path(__file__).resolve().parents[2]
DEFINITION = ROOT / "statemachine" / "rebuild.asl.json"


def ensure_asl_validator(cache: Path | None = None) -> Path:
    """The asl-validator executable, installed with npm the first time."""
    target = (cache or cache_dir()) / ASL_VALIDATOR.replace("@", "-")
    binary = target / "node_modules" / ".bin" / "asl-validator"
    if binary.is_file():
        return binary
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError("npm not found: install Node.js/npm to fetch asl-validator")
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.parent / ".asl.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not binary.is_file():
            # S603: a fixed argv: npm from PATH installing the pinned ASL_VALIDATOR into our cache
            done = subprocess.run([npm, "install", "--prefix", str(target), ASL_VALIDATOR,  # noqa: S603
                                   "--silent", "--no-audit", "--no-fund"], capture_output=True, text=True, check=False)
            if done.returncode != 0 or not binary.is_file():
                raise RuntimeError(f"npm install {ASL_VALIDATOR} failed: {done.stderr.strip()[-300:]}")
    return binary


def substituted(definition: str, substitutions: Mapping[str, str]) -> str:
    """The definition with its ``${Name}`` DefinitionSubstitutions filled in (as CloudFormation does)."""
    missing = set(re.findall(r"\$\{(\w+)\}", definition)) - set(substitutions)
    if missing:
        raise ValueError(f"no substitution for {sorted(missing)}")
    return re.sub(r"\$\{(\w+)\}", lambda m: substitutions[m[1]], definition)


def validate(definition: Mapping[str, Any] | str, scratch: Path) -> tuple[bool, str]:
    """(valid, the validator's report) for a definition (JSON text or data)."""
    path = scratch / "definition.asl.json"
    path.write_text(definition if isinstance(definition, str) else json.dumps(definition))
    # S603: a fixed argv: the validator we installed, on a file we just wrote
    done = subprocess.run([str(ensure_asl_validator()), "--json-path", str(path)],  # noqa: S603
                          capture_output=True, text=True, check=False, timeout=120)
    return done.returncode == 0 and "is invalid" not in done.stdout, done.stdout + done.stderr
