"""Webhook targets disabled after 410 Gone: whether one is, and enabling it again, by appending.

A target is disabled by a ``target disabled`` event in its stream (``target:<hash of the URL>``),
appended by the reactor; enabling it appends ``target enabled`` there, conditionally on the
version read, so two operators at once enable it once. `dynafold targets` and the console's
Delivery page ask this one service.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from events.delivery_policy import TARGET_ENABLED, disabled_by, target_stream
from events.deliveries import TargetEnabled
from events.envelope import NewEvent
from events.errors import DynafoldError
from events.ports import EventLog
from events.store import NO_STREAM


def checked_url(url: str) -> str:
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise DynafoldError(f"not a webhook target URL: {url[:200]!r} (expected http(s)://host/path)")
    return url.strip()


@dataclass(frozen=True)
class TargetState:
    target_url: str
    stream: str
    version: int  # 0: the target was never disabled (no stream)
    reason: str | None  # why it is disabled; None when it is not
    appended: bool | None = None  # after enable: whether this call appended

    @property
    def disabled(self) -> bool:
        return self.reason is not None

    def to_dict(self) -> dict[str, Any]:
        answer = {"target_url": self.target_url, "stream": self.stream, "version": self.version,
                  "disabled": self.disabled, "reason": self.reason}
        return answer if self.appended is None else {**answer, "appended": self.appended}


class Targets:
    def __init__(self, store: EventLog) -> None:
        self._store = store

    def state(self, url: str) -> TargetState:
        url = checked_url(url)
        stream = target_stream(url)
        events = self._store.read_stream(stream)
        disabled = disabled_by(events)
        return TargetState(url, stream, events[-1].version if events else 0, disabled.reason if disabled else None)

    def enable(self, url: str, *, reason: str | None, enabled_by: str | None, source: str) -> TargetState:
        """Append ``target enabled`` when the target is disabled (VersionConflict if it changed
        since it was read); a target that is not disabled appends nothing."""
        state = self.state(url)
        if not state.disabled:
            return TargetState(state.target_url, state.stream, state.version, None, appended=False)
        event = NewEvent(TARGET_ENABLED, TargetEnabled(target_url=state.target_url, reason=reason,
                                                       enabled_by=enabled_by), source=source)
        result = self._store.append(state.stream, [event], state.version or NO_STREAM)
        return TargetState(state.target_url, state.stream, result.last_version, None, appended=True)
