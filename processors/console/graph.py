"""A correlation drawn as a graph: one lane per stream, events left to right in time order, and an
arrow from each event to the events it caused (causation ids within the correlation). Pure layout;
the template draws it as SVG (no script), every node a link to its event page."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from events.envelope import RecordedEvent

LANE, STEP, LEFT, TOP, RADIUS = 44, 40, 24, 28, 8


@dataclass(frozen=True)
class Node:
    event: RecordedEvent
    x: int
    y: int
    current: bool


@dataclass(frozen=True)
class Edge:
    x1: int
    y1: int
    x2: int
    y2: int


@dataclass(frozen=True)
class Graph:
    lanes: list[tuple[str, int]]  # (stream, y)
    nodes: list[Node]
    edges: list[Edge]
    width: int
    height: int


def layout(events: Sequence[RecordedEvent], current_id: str) -> Graph:
    ordered = sorted(events, key=lambda e: (e.time, e.stream, e.version))
    lanes: dict[str, int] = {}
    for event in ordered:
        lanes.setdefault(event.stream, TOP + len(lanes) * LANE)
    nodes = [Node(event, LEFT + n * STEP, lanes[event.stream], event.id == current_id)
             for n, event in enumerate(ordered)]
    by_id = {node.event.id: node for node in nodes}
    edges = [Edge(by_id[n.event.causation_id].x, by_id[n.event.causation_id].y, n.x, n.y)
             for n in nodes if n.event.causation_id in by_id and n.event.causation_id != n.event.id]
    return Graph(sorted(lanes.items(), key=lambda lane: lane[1]), nodes, edges,
                 LEFT * 2 + max(len(nodes) - 1, 0) * STEP, TOP + max(len(lanes), 1) * LANE)
