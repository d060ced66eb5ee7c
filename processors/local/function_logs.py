"""The local stack's function logs, read as CloudWatch Logs is on AWS (`dynafold logs`).

The local stack writes what each function prints to ``<state dir>/logs/dynafold-<function>.log``
(``processors/local/lambda_logs.py``), the lines CloudWatch would receive. A reader keeps its
place in each file, so ``--follow`` returns only what was written since; a line still being written
(no newline yet) waits for the next poll. A plain-text line has no time of its own and takes the
time of the line before it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from processors.adapters.function_logs import LogLine, check_functions, in_time_order, line_time
from processors.operations.template import lambda_functions

LOG_PREFIX = "dynafold-"  # the local stack's function names: dynafold-<function> (its "stack name")


@dataclass
class LocalFunctionLogs:
    directory: Path
    functions: tuple[str, ...]  # the template's functions
    poll_seconds: float = 0.5

    def reader(self, functions: Sequence[str], since: datetime, contains: str | None) -> "_FileReader":
        chosen = check_functions(functions, self.functions)
        return _FileReader({name: self.directory / f"{LOG_PREFIX}{name}.log" for name in chosen}, since, contains)


@dataclass
class _FileReader:
    files: dict[str, Path]
    since: datetime
    contains: str | None
    _offsets: dict[str, int] = field(default_factory=dict)
    _last_time: dict[str, datetime] = field(default_factory=dict)

    def poll(self) -> list[LogLine]:
        lines: list[LogLine] = []
        for function, path in self.files.items():
            lines.extend(self._new_lines(function, path))
        return in_time_order(lines)

    def _new_lines(self, function: str, path: Path) -> list[LogLine]:
        try:
            with path.open("rb") as handle:
                handle.seek(self._offsets.get(function, 0))
                data = handle.read()
        except FileNotFoundError:
            return []  # the function has not run yet
        complete = data[:data.rfind(b"\n") + 1]
        self._offsets[function] = self._offsets.get(function, 0) + len(complete)
        found = []
        for raw in complete.decode("utf-8", errors="replace").splitlines():
            time = line_time(raw) or self._last_time.get(function) or self.since
            self._last_time[function] = time
            if time >= self.since and (self.contains is None or self.contains in raw) and raw.strip():
                found.append(LogLine(time, function, raw))
        return found


def local_function_logs(directory: Path) -> LocalFunctionLogs:
    """The log files under ``directory`` of every function the template defines."""
    return LocalFunctionLogs(directory, lambda_functions())
