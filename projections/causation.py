"""What an event caused and what caused it: a trace through causation and correlation. Pure.

Every derived event names the event that caused it (its causation id) and keeps that cause's
correlation, the request everything started from. So the events of one correlation form a forest
whose roots came in from outside (a webhook, an admin request); a trace shows it in time order,
each event with its depth under its root and, when the trace is about one event, whether it is
one of that event's causes, one of its effects, or only part of the same request.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from events.envelope import RecordedEvent, format_time
from projections.explanation import Explanation, Section

CAUSE, ASKED, EFFECT, SAME_REQUEST = "cause", "asked", "effect", "same request"
# Who appends with each source, in a support engineer's words.
_SOURCES = {
    "urn:dynafold:inflow": "InFlow's webhook",
    "urn:dynafold:shopify": "a Shopify webhook",
    "urn:dynafold:messages": "a message submitted to POST /messages",
    "urn:dynafold:admin": "an admin request",
    "urn:dynafold:cli": "the command line",
    "urn:dynafold:reactor": "the reactor",
    "urn:dynafold:delivery-worker": "the delivery worker",
    "urn:dynafold:error-monitor": "the error monitor",
    "urn:dynafold:stream-failures": "the stream failure consumer",
}


@dataclass(frozen=True, slots=True)
class TraceNode:
    event: RecordedEvent
    depth: int  # causation hops from its root within the trace
    relation: str  # CAUSE, ASKED, EFFECT or SAME_REQUEST (a trace of a correlation: all SAME_REQUEST)
    cause: RecordedEvent | None  # the event it names as its cause, when that is in the trace

    def to_json(self) -> dict[str, object]:
        e = self.event
        return {"id": e.id, "stream": e.stream, "version": e.version, "time": format_time(e.time), "type": e.type,
                "source": e.source, "correlation_id": e.correlation_id, "causation_id": e.causation_id,
                "depth": self.depth, "relation": self.relation}


def trace_nodes(events: Sequence[RecordedEvent], asked: RecordedEvent | None = None) -> list[TraceNode]:
    """Every event once, in time order, placed under its cause; relative to ``asked`` if given."""
    unique = {(e.stream, e.version): e for e in events}
    ordered = sorted(unique.values(), key=lambda e: (e.time, e.stream, e.version))
    by_id = {e.id: e for e in ordered}
    children: dict[str, list[RecordedEvent]] = {}
    for event in ordered:
        if event.causation_id in by_id and event.causation_id != event.id:
            children.setdefault(event.causation_id, []).append(event)

    def ancestors(event: RecordedEvent) -> list[RecordedEvent]:
        chain: list[RecordedEvent] = []
        seen = {event.id}
        while event.causation_id in by_id and event.causation_id not in seen:
            event = by_id[event.causation_id]
            seen.add(event.id)
            chain.append(event)
        return chain

    causes = {e.id for e in ancestors(asked)} if asked is not None else set()
    effects: set[str] = set()
    if asked is not None:
        stack = list(children.get(asked.id, []))
        while stack:
            event = stack.pop()
            if event.id not in effects and event.id != asked.id:
                effects.add(event.id)
                stack.extend(children.get(event.id, []))

    def relation(event: RecordedEvent) -> str:
        if asked is not None and event.id == asked.id:
            return ASKED
        return CAUSE if event.id in causes else EFFECT if event.id in effects else SAME_REQUEST

    return [TraceNode(e, len(ancestors(e)), relation(e), by_id.get(e.causation_id or "")) for e in ordered]


def _name(event: RecordedEvent) -> str:
    """``orders.errors_notified`` for ``dynafold.orders.errors_notified.v1``."""
    parts = event.type.split(".")
    return ".".join(parts[1:-1]) if len(parts) > 2 else event.type


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" + ("" if number == 1 else "s")


def _who(event: RecordedEvent) -> str:
    return _SOURCES.get(event.source, event.source)


def _said(node: TraceNode) -> str:
    """One sentence: when, who, what, where, and because of what."""
    e = node.event
    what = f"At {format_time(e.time)}, {_who(e)} recorded {_name(e)} on {e.stream} (version {e.version})"
    if node.cause is not None:
        return f"{what}, because of {_name(node.cause)} on {node.cause.stream} (version {node.cause.version})."
    if e.causation_id:
        return f"{what}, caused by event {e.causation_id}, which is not in this trace."
    return f"{what}: it came in from outside (request {e.correlation_id})."


def explain_trace(asked_id: str, nodes: Sequence[TraceNode], truncated: bool = False) -> Explanation:
    """The answer to "what did this event cause, and what caused it?" (an event id), or to "what did
    this request cause?" (a correlation id), from the trace's nodes."""
    asked = next((n for n in nodes if n.relation == ASKED), None)
    correlations = sorted({n.event.correlation_id for n in nodes})
    facts = {"asked": asked_id, "matched": "event" if asked else "correlation", "correlation_ids": correlations,
             "events": [n.to_json() for n in nodes], "truncated": truncated}
    ids = tuple(n.event.id for n in nodes)
    more = " (only the first events are shown: the request caused more)" if truncated else ""
    if asked is None:
        roots = [n for n in nodes if not n.event.causation_id]
        answer = (f"Request {asked_id} led to {_count(len(nodes), 'event')} in "
                  f"{_count(len({n.event.stream for n in nodes}), 'stream')}, starting from {len(roots)} that came "
                  f"in from outside{more}.")
        return Explanation("What did this request cause?", asked_id, answer,
                           (Section("What it caused, in time order", tuple(_said(n) for n in nodes)),), facts, ids)
    causes = [n for n in nodes if n.relation == CAUSE]
    effects = [n for n in nodes if n.relation == EFFECT]
    others = [n for n in nodes if n.relation == SAME_REQUEST]
    event = asked.event
    subject = f"{_name(event)} on {event.stream} (version {event.version})"
    if causes:
        root = causes[0].event
        between = len(causes) - 1
        why = (f"goes back to {_name(root)} on {root.stream} (version {root.version}), which came in from "
               f"{_who(root)} (request {root.correlation_id})"
               + (f", through {_count(between, 'event')} in between" if between else ""))
    elif event.causation_id:
        why = f"names event {event.causation_id} as its cause, which is not in the log"
    else:
        why = f"came in from {_who(event)} (request {event.correlation_id}): nothing caused it"
    answer = f"{subject} {why}; it caused {_count(len(effects), 'event')}{more}."
    sections = [Section("What caused it", tuple(_said(n) for n in causes)) if causes else None,
                Section("The event asked about", (_said(asked),)),
                Section("What it caused", tuple(_said(n) for n in effects)) if effects else None,
                Section("Also in the same request", tuple(_said(n) for n in others)) if others else None]
    return Explanation("What did this event cause, and what caused it?", asked_id, answer,
                       tuple(s for s in sections if s is not None), facts, ids)
