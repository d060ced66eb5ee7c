"""The functions' logs as `dynafold logs` reads them; on AWS, CloudWatch Logs' FilterLogEvents.

A log line is what a function printed: Powertools JSON (``timestamp``, ``level``, ``message``,
``correlation_id``, ...), an EMF metrics blob, or plain text. A source answers one question, again
and again for ``--follow``: the lines of these functions since a time, containing a text (a
correlation id), that it has not returned before. The local stack's log files answer it too
(``processors/local/function_logs.py``); the composition root is given one source or the other.

FilterLogEvents (https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_FilterLogEvents.html):
one log group per call, ``startTime`` in epoch milliseconds, a page may be empty while ``nextToken``
says there is more; a quoted ``filterPattern`` matches the exact phrase (an id with dashes would
otherwise split into terms). The account's FilterLogEvents quota is a few calls a second, so a
follow polls every 2 s, one call per log group.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Protocol

from events.errors import DynafoldError

POWERTOOLS_TIME = "%Y-%m-%d %H:%M:%S,%f%z"  # Powertools' default ``timestamp`` format


class UnknownFunction(DynafoldError):
    pass


@dataclass(frozen=True)
class LogLine:
    time: datetime
    function: str
    text: str  # the line as printed (no trailing newline)

    def record(self) -> dict[str, Any] | None:
        """The line's JSON object, when it is one."""
        try:
            value = json.loads(self.text)
        except ValueError:
            return None
        return value if isinstance(value, dict) else None

    def to_json(self) -> dict[str, Any]:
        return {"time": self.time.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
                "function": self.function, "line": self.text, "record": self.record()}


def line_time(text: str) -> datetime | None:
    """When a printed line was logged: Powertools' ``timestamp``, an EMF blob's ``_aws.Timestamp``
    (milliseconds), else unknown (plain text)."""
    try:
        value = json.loads(text)
    except ValueError:
        return None
    if not isinstance(value, dict):
        return None
    stamp = value.get("timestamp")
    if isinstance(stamp, str):
        try:
            return datetime.strptime(stamp, POWERTOOLS_TIME)
        except ValueError:
            pass
    emf = value.get("_aws")
    if isinstance(emf, dict) and isinstance(emf.get("Timestamp"), int | float):
        return datetime.fromtimestamp(emf["Timestamp"] / 1000, timezone.utc)
    return None


def in_time_order(lines: list[LogLine]) -> list[LogLine]:
    """Merged by time; lines of one time keep the order they were read in (one function's, as printed)."""
    return sorted(lines, key=lambda line: line.time)


def check_functions(asked: Sequence[str], known: Sequence[str]) -> tuple[str, ...]:
    """The functions to read: the asked ones (each one of ``known``), or all of them."""
    unknown = [name for name in asked if name not in known]
    if unknown:
        raise UnknownFunction(f"unknown function {unknown[0]!r} (one of {', '.join(known)})")
    return tuple(asked) or tuple(known)


class LogReader(Protocol):
    def poll(self) -> list[LogLine]:
        """Lines not returned before, in time order."""
        ...


class FunctionLogs(Protocol):
    functions: tuple[str, ...]  # what `--function` may name
    poll_seconds: float  # how often `--follow` asks again

    def reader(self, functions: Sequence[str], since: datetime, contains: str | None) -> LogReader: ...


@dataclass
class CloudWatchFunctionLogs:
    """Each function's log group, read with FilterLogEvents."""

    client: Any  # a CloudWatch Logs client
    log_groups: Mapping[str, str]  # function -> its log group (from the template)
    poll_seconds: float = 2.0

    @property
    def functions(self) -> tuple[str, ...]:
        return tuple(self.log_groups)

    def reader(self, functions: Sequence[str], since: datetime, contains: str | None) -> LogReader:
        chosen = check_functions(functions, self.functions)
        return _CloudWatchReader(self.client, {name: self.log_groups[name] for name in chosen},
                                 int(since.timestamp() * 1000), contains)


@dataclass
class _CloudWatchReader:
    client: Any
    groups: Mapping[str, str]
    start_ms: int
    contains: str | None
    _after: dict[str, tuple[int, set[str]]] = field(default_factory=dict)  # group -> (last ms, event ids at it)

    def poll(self) -> list[LogLine]:
        lines: list[LogLine] = []
        for function, group in self.groups.items():
            last, seen = self._after.get(group, (self.start_ms, set()))
            for event in self._events(group, last):
                if event["eventId"] in seen:
                    continue  # asked again from the last millisecond read: already returned
                if event["timestamp"] > last:
                    last, seen = event["timestamp"], set()
                seen.add(event["eventId"])
                lines.append(LogLine(datetime.fromtimestamp(event["timestamp"] / 1000, timezone.utc), function,
                                     event["message"].rstrip("\n")))
            self._after[group] = (last, seen)
        return in_time_order(lines)

    def _events(self, group: str, start_ms: int) -> list[dict[str, Any]]:
        kwargs: dict[str, Any] = {"logGroupName": group, "startTime": start_ms}
        if self.contains:
            kwargs["filterPattern"] = f'"{self.contains}"'
        events: list[dict[str, Any]] = []
        try:
            while True:
                page = self.client.filter_log_events(**kwargs)
                events.extend(page.get("events", []))
                if not page.get("nextToken"):
                    return sorted(events, key=lambda e: (e["timestamp"], e["eventId"]))
                kwargs["nextToken"] = page["nextToken"]
        except Exception as error:  # a group not created yet (never deployed or invoked) has no lines
            if getattr(error, "response", {}).get("Error", {}).get("Code") == "ResourceNotFoundException":
                return []
            raise


def cloudwatch_function_logs(log_groups: Callable[[], Mapping[str, str]] | None) -> CloudWatchFunctionLogs:
    from processors.adapters.aws import logs_client

    if log_groups is None:  # inside a function nobody reads logs; the CLI knows them from the template
        raise DynafoldError("the functions' log groups are not known here: `dynafold logs --on-aws` names them "
                            "from the template")
    return CloudWatchFunctionLogs(logs_client(), dict(log_groups()))
