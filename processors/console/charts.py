"""What the console's charts draw, as the JSON the page carries for ``static/console.js``. Pure.

A chart is ``{"times": [epoch seconds...], "series": {label: [value or null, ...]}, "unit": "...",
"stepped": bool}``: every series has one value per time (null where it has none: uPlot leaves a
gap), so one x axis serves them all.

- ``lag_chart``: the readers' lag, one point per metric period over the status window (periods
  without a datapoint are gaps, as CloudWatch leaves them out);
- ``stock_chart``: a SKU's physical and available count and each Shopify item's level at each
  location, after every event of its history, folded with the inventory view's own fold (a
  stepped line: a level holds until the next event changes it).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from events.envelope import RecordedEvent
from projections.health.metrics import Series, aligned
from projections.inventory.fold import InventoryItem, apply, initial

MAX_STOCK_POINTS = 2000  # the newest events of a long history are drawn; the page says so


def lag_chart(series: Mapping[str, Series], end: datetime, window: timedelta, period: int) -> dict[str, Any]:
    """``series``: label -> lag in seconds per period; the x axis is every period of the window."""
    start = aligned(end - window, period)
    count = int((end - start).total_seconds() // period) + 1
    times = [start + timedelta(seconds=period * n) for n in range(count)]
    values: dict[str, list[float | None]] = {}
    for label, one in series.items():
        by_time = {point.time: point.value for point in one.points}
        values[label] = [by_time.get(moment) for moment in times]
    return {"times": [int(moment.timestamp()) for moment in times], "series": values, "unit": "seconds behind",
            "stepped": False}


def _levels(state: InventoryItem) -> dict[str, int | None]:
    return {f"item {item.inventory_item_id} @ {level.location_id}": level.available
            for item in state.shopify_items for level in item.levels}


def stock_chart(sku: str, history: Sequence[RecordedEvent]) -> dict[str, Any]:
    """The SKU's counts and Shopify's levels after each event (the newest ``MAX_STOCK_POINTS``)."""
    state = initial(sku)
    rows: list[tuple[datetime, dict[str, int | None]]] = []
    for event in history:
        state = apply(state, event)
        rows.append((event.time, {"physical": state.physical, "available": state.available, **_levels(state)}))
    cut = max(0, len(rows) - MAX_STOCK_POINTS)
    shown = rows[cut:]
    labels = list(dict.fromkeys(label for _, values in shown for label in values))
    return {"times": [round(moment.timestamp(), 3) for moment, _ in shown],
            "series": {label: [values.get(label) for _, values in shown] for label in labels},
            "unit": "units", "stepped": True, "cut": cut}
