"""All four views at a glance: what `dynafold demo` ends with and `dynafold query all` prints.

Built only from the typed queries (index Queries, the one bounded inventory scan), so it shows
exactly what an operator asking the views one by one would see.
"""

from __future__ import annotations

from typing import Any

from processors.cli.output import table
from projections.queries import DELIVERY_STATUSES, ViewQueries

_SECTIONS: tuple[tuple[str, str, list[str]], ...] = (
    ("pending_errors", "Pending order errors (seed 000)",
     ["order_number", "rule", "severity", "first_detected", "last_seen", "message"]),
    ("deliveries", "Webhook deliveries (seeds 001/002)",
     ["delivery_id", "status", "attempts", "next_retry_at", "delivered_at", "target_url"]),
    ("inventory", "Inventory (seed 004)", ["sku", "physical", "buffer", "available", "broadcast", "updated_at"]),
    ("returns", "Returns (seed 004)", ["sku", "time", "quantity", "disposition", "restocked", "order_id"]),
    ("alerts", "Alerts, newest first (seeds 003/004)", ["time", "severity", "alert_type", "sku", "read", "message"]),
)


def collect(queries: ViewQueries) -> dict[str, list[dict[str, Any]]]:
    """Every row of every view, as plain JSON-able dicts, section by section."""
    inventory = sorted(queries.inventory_all(), key=lambda row: row.sku)
    deliveries = [row for status in DELIVERY_STATUSES for row in queries.deliveries_by_status(status)]
    return {
        "pending_errors": [row.to_dict() for row in queries.pending_errors()],
        "deliveries": [row.to_dict() for row in sorted(deliveries, key=lambda d: d.delivery_id)],
        "inventory": [
            {**row.to_dict(), "broadcast": row.last_broadcast.count if row.last_broadcast else None}
            for row in inventory
        ],
        "returns": [
            ret.to_dict() for row in inventory for ret in queries.returns_of(row.sku)
        ],
        "alerts": [row.to_dict() for row in queries.alerts()],
    }


def render(views: dict[str, list[dict[str, Any]]]) -> str:
    parts = []
    for key, title, columns in _SECTIONS:
        rows = views.get(key, [])
        parts.append(f"== {title}: {len(rows)}\n{table(rows, columns, max_width=52)}")
    return "\n\n".join(parts)
