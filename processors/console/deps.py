"""What the console's pages read and write, built once per container by the composition root."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the reads and the services load with the first page that asks for them
    from events.log_index import EventIndex
    from events.ports import EventLog
    from processors.adapters.secrets import Secrets
    from projections.queries import ViewQueries
    from processors.services.adoption import ShopifyAdoption
    from processors.services.alert_reads import AlertReads
    from processors.services.event_trace import EventTrace
    from processors.services.status import StatusService
    from processors.services.support import Support
    from processors.services.targets import Targets

SESSION_HOURS = 8


@dataclass(frozen=True)
class ConsoleServices:
    """The read services and actions the CLI and the routes use, each built when first asked for
    (the composition root's own instances: the console answers as `dynafold explain` does)."""

    support: Callable[[], Support]  # explain order / delivery / sku, and the redrive
    status: Callable[[], StatusService]  # readers' lag, failures, alarms, versions, rebuilds
    alert_reads: Callable[[], AlertReads]  # mark alerts read, by id or by filter
    event_trace: Callable[[], EventTrace]  # an event's causes and effects
    adoption: Callable[[], ShopifyAdoption]  # Shopify's level as an uncounted SKU's first count
    targets: Callable[[], Targets]  # enable a target disabled after 410 Gone


@dataclass(frozen=True)
class ConsoleReads:
    """What the pages read, built on the first page that reads (sign-in and the static files read
    nothing: a cold container answers them without loading the log's or the views' modules)."""

    store: EventLog  # streams, the catalogue, chains
    index: EventIndex  # search by type and time, by correlation id, an event by id
    queries: ViewQueries  # every view's questions (the CLI's and the read routes')
    views: Mapping[str, str]  # family -> active table
    # Order errors older than this are overdue (the monitor's): asked for by the Health page only,
    # so the other pages never load the functions' settings.
    grace_period: Callable[[], timedelta] = lambda: timedelta(minutes=30)


@dataclass(frozen=True)
class ConsoleDeps:
    connect: Callable[[], ConsoleReads]
    secrets: Secrets  # the admin API key signs sessions in
    services: ConsoleServices
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(timezone.utc))
    session_hours: int = SESSION_HOURS

    @cached_property
    def reads(self) -> ConsoleReads:
        return self.connect()

    @property
    def store(self) -> EventLog:
        return self.reads.store

    @property
    def index(self) -> EventIndex:
        return self.reads.index

    @property
    def queries(self) -> ViewQueries:
        return self.reads.queries

    @property
    def views(self) -> Mapping[str, str]:
        return self.reads.views

    @property
    def grace_period(self) -> timedelta:
        return self.reads.grace_period()

    @property
    def reader(self) -> Any:
        return self.queries.reader
