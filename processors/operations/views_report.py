"""Every view at a glance: what `dynafold demo` ends with and `dynafold query all` prints.

Built only from the views' own report sections over their typed queries (index Queries, the one
bounded inventory scan), so it shows exactly what an operator asking the views one by one would see.
"""

from __future__ import annotations

from typing import Any

from processors.cli.output import table
from projections.queries import ViewQueries
from projections.registry import UNITS


def collect(queries: ViewQueries) -> dict[str, list[dict[str, Any]]]:
    """Every row of every view, as plain JSON-able dicts, section by section."""
    return {section.key: section.collect(queries.of(unit)) for unit in UNITS for section in unit.report}


def render(views: dict[str, list[dict[str, Any]]]) -> str:
    parts = []
    for section in (section for unit in UNITS for section in unit.report):
        rows = views.get(section.key, [])
        parts.append(f"== {section.title}: {len(rows)}\n{table(rows, section.columns, max_width=52)}")
    return "\n\n".join(parts)
