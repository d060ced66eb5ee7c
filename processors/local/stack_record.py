"""What a local stack's state directory says about the stack that owns it.

`dynafold up` owns its state directory (``.dynafold`` by default) while it runs: it holds an
exclusive lock on ``<state dir>/stack.lock`` and records in ``<state dir>/stack.json`` the engine
it started (endpoint, and the access key and region that select its database: DynamoDB Local keeps
one database per pair), its table prefix, its HTTP API and where its own state lives (``run_dir``:
views.json, checkpoints, queues, rebuild progress; a fresh directory for an in-memory engine, whose
data dies with it). Other commands read the record to talk to that stack when no endpoint is
given, and a second `up` on the same directory is refused while the lock is held. The record
outlives the run, so the next `up` reuses its ports and credentials.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any

from events.errors import DynafoldError
from processors.local.files import write_atomically

RECORD_NAME = "stack.json"
LOCK_NAME = "stack.lock"


class StackRunning(DynafoldError):
    """Another `dynafold up` owns the state directory."""


@dataclass(frozen=True)
class StackRecord:
    endpoint_url: str
    access_key: str
    region: str
    table_prefix: str
    run_dir: str
    in_memory: bool
    pid: int
    api_url: str | None = None
    command: str = "dynafold up"  # what runs the stack (`dynafold demo --stay` runs one too)

    @property
    def port(self) -> int:
        return int(self.endpoint_url.rsplit(":", 1)[1])

    @property
    def api_port(self) -> int | None:
        return int(self.api_url.rsplit(":", 1)[1]) if self.api_url else None

    def describe(self) -> str:
        where = "in memory" if self.in_memory else "persistent"
        return f"DynamoDB Local at {self.endpoint_url} ({where}, `{self.command}` pid {self.pid})"

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "StackRecord":
        return cls(**{name: data[name] for name in cls.__dataclass_fields__ if name in data})


def read_record(state_dir: Path) -> StackRecord | None:
    """The last record `up` wrote here, running or not (None: none, or unreadable)."""
    try:
        return StackRecord.from_json(json.loads((state_dir / RECORD_NAME).read_text()))
    except (OSError, ValueError, TypeError, KeyError):
        return None


def write_record(state_dir: Path, record: StackRecord) -> None:
    write_atomically(state_dir / RECORD_NAME, json.dumps(asdict(record), indent=2, sort_keys=True) + "\n")


def _try_lock(state_dir: Path) -> IO[str] | None:
    """The lock file, locked by this call; None when another process holds it."""
    state_dir.mkdir(parents=True, exist_ok=True)
    handle = open(state_dir / LOCK_NAME, "a")  # noqa: SIM115 - the caller keeps it open while it holds the lock
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        return None
    return handle


def is_running(state_dir: Path) -> bool:
    """Whether a `dynafold up` holds this state directory now (its lock dies with its process)."""
    if not (state_dir / LOCK_NAME).exists():
        return False
    handle = _try_lock(state_dir)
    if handle is None:
        return True
    handle.close()
    return False


def running_stack(state_dir: Path) -> StackRecord | None:
    """The record of the stack running from this state directory, if one is."""
    return read_record(state_dir) if is_running(state_dir) else None


@contextlib.contextmanager
def owned(state_dir: Path) -> Iterator[None]:
    """Hold the state directory for one `up`; refuse while another holds it."""
    handle = _try_lock(state_dir)
    if handle is None:
        record = read_record(state_dir)
        holder = record.describe() if record else "another `dynafold up` or `dynafold demo --stay`"
        api = f", HTTP API on {record.api_url}" if record and record.api_url else ""
        raise StackRunning(f"the local stack of {state_dir} is already running: {holder}{api}; "
                           "stop it first, or give another --state-dir")
    try:
        handle.truncate(0)
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        yield
    finally:
        handle.close()  # releases the lock
