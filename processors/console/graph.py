"""An event's trace drawn as a graph: one lane per stream, events left to right in time order, an
arrow from each event to the events it caused. The nodes are the trace's (``projections.causation``,
through the event trace service): its causes up to the request it came from, whatever their
correlation, what it caused, and the rest of its request. Pure layout; the template draws it as SVG
(no script), every node a link to its event page."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

LANE, STEP, LEFT, TOP, RADIUS = 44, 40, 24, 28, 8


@dataclass(frozen=True)
class Node:
    stream: str
    version: int
    type: str
    relation: str  # cause, asked, effect, same request
    x: int
    y: int


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


def layout(events: Sequence[Mapping[str, Any]]) -> Graph:
    """``events``: the trace's nodes in time order (``TraceNode.to_json``: id, stream, version,
    type, causation_id, relation)."""
    lanes: dict[str, int] = {}
    for event in events:
        lanes.setdefault(event["stream"], TOP + len(lanes) * LANE)
    nodes = [Node(e["stream"], int(e["version"]), e["type"], e["relation"], LEFT + n * STEP, lanes[e["stream"]])
             for n, e in enumerate(events)]
    by_id = {event["id"]: node for event, node in zip(events, nodes, strict=True)}
    edges = [Edge(by_id[e["causation_id"]].x, by_id[e["causation_id"]].y, node.x, node.y)
             for e, node in zip(events, nodes, strict=True)
             if e.get("causation_id") in by_id and e["causation_id"] != e["id"]]
    return Graph(sorted(lanes.items(), key=lambda lane: lane[1]), nodes, edges,
                 LEFT * 2 + max(len(nodes) - 1, 0) * STEP, TOP + max(len(lanes), 1) * LANE)
