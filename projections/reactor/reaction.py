"""What a reactor rule is: a pure decision about one event, returning the effects the reactor carries out.

A rule declares what it reacts to: the event data types (none = every event) and, when it needs
the state of a view around the event, that view: it then sees only that view's streams, with the
stream's state before and after the event (``Reaction.before``/``after``). The reactor
(processors/services/reactor.py) loops over ``projections.reactor.rules.REACTOR_RULES``: for each
rule that reacts, it reads the state the rule asked for, calls ``plan`` and carries out what it
returns. Every effect is idempotent (its id and idempotency key derive from the cause).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from events.alerts import AlertRaised
from events.envelope import PlannedAppend, RecordedEvent
from events.schema_base import EventData
from projections.reactor.settings import AlertSettings, ShopifySyncSettings
from projections.view import View

D = TypeVar("D", bound=EventData)


@dataclass(frozen=True)
class Reaction:
    """One event as a rule sees it, with the reactor's settings."""

    event: RecordedEvent
    settings: AlertSettings
    storefront_url: str | None = None
    before: Any = None  # the rule's view state right before the event (None when it asked for no view)
    after: Any = None  # ... and right after it
    shopify: ShopifySyncSettings | None = None  # None: no Shopify push configured

    def data_as(self, kind: type[D]) -> D:
        """The event's data as the type the rule declared in ``event_types`` (typed for the rule's
        body). Rules run only on events they react to, so another type is a wiring bug."""
        data = self.event.data
        if not isinstance(data, kind):
            raise TypeError(f"rule for {kind.__name__} given {type(data).__name__} ({self.event.stream})")
        return data


@dataclass(frozen=True)
class RaiseAlert:
    """Append the alert (once: its id derives from the cause)."""

    alert: AlertRaised


@dataclass(frozen=True)
class Append:
    """Append planned events; ``metric`` is counted when the append lands (not when deduplicated)."""

    plan: PlannedAppend
    metric: str | None = None


@dataclass(frozen=True)
class Count:
    """Count something the rule noticed that changes nothing (e.g. an echo of our own push ignored)."""

    metric: str


Effect = RaiseAlert | Append | Count


@dataclass(frozen=True)
class Rule:
    name: str
    plan: Callable[[Reaction], Sequence[Effect]]
    event_types: tuple[type[EventData], ...] = ()  # () = every event (of ``view``'s streams, if given)
    view: View[Any] | None = None  # the view whose state around the event the rule reads

    def reacts_to(self, event: RecordedEvent) -> bool:
        if self.view is not None and event.stream.partition(":")[0] != self.view.category:
            return False
        return not self.event_types or isinstance(event.data, self.event_types)
