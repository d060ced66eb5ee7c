"""What the console's pages read and write, built once per container by the composition root."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from events.log_index import EventIndex
from events.ports import EventLog
from processors.adapters.secrets import Secrets
from projections.queries import ViewQueries

SESSION_HOURS = 8


@dataclass(frozen=True)
class ConsoleDeps:
    store: EventLog  # streams, the catalogue, chains, and the actions' appends
    index: EventIndex  # search by type and time, by correlation id
    queries: ViewQueries  # every view's questions (the CLI's and the read routes')
    views: Mapping[str, str]  # family -> active table (the Health page's view versions)
    secrets: Secrets  # the admin API key signs sessions in
    grace_period: timedelta = timedelta(minutes=30)  # order errors older than this are overdue (the monitor's)
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(timezone.utc))
    session_hours: int = SESSION_HOURS

    @property
    def reader(self) -> Any:
        return self.queries.reader
