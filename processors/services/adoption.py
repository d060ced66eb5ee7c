"""Adopting Shopify's level as the first physical count of SKUs never counted here (issue 18 §1).

The decision is pure (projections/inventory/adoption.py); this reads each SKU's history (the
state exactly at its latest version) and appends ``shopify count adopted`` conditionally on that
version, so a count that lands meanwhile is never overwritten. Named SKUs are all checked before
the first append: one that cannot be adopted refuses the whole request. ``every`` takes the SKUs
the inventory view shows uncounted and listed in Shopify, adopts those it can and reports the rest.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from events.envelope import NewEvent
from events.errors import DynafoldError, NotFound, VersionConflict

if TYPE_CHECKING:  # the admin routes import MAX_SKUS at the ingest function's cold start; the root builds this
    from events.ports import EventLog
    from projections.inventory.adoption import Adoption
    from projections.inventory.queries import InventoryQueries
    from projections.queries import ViewQueries

SOURCE = "urn:dynafold:admin"
ADOPTED_TYPE = "dynafold.inventory.shopify_count_adopted.v1"
MAX_SKUS = 1000  # named in one request


@dataclass
class AdoptionReport:
    rows: list[dict[str, Any]] = field(default_factory=list)
    adopted: int = 0
    refused: int = 0
    dry_run: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"dry_run": self.dry_run, "adopted": self.adopted, "refused": self.refused, "skus": self.rows}


class ShopifyAdoption:
    def __init__(self, store: EventLog, queries: ViewQueries) -> None:
        self._store = store
        self._queries = queries

    def _planned(self, sku: str, adopted_by: str, from_items: Collection[str]) -> tuple[Adoption, int]:
        from projections.inventory import InventoryProjection
        from projections.inventory.adoption import plan_adoption

        events = self._store.read_stream(f"sku:{sku}")
        if not events:
            raise NotFound(f"SKU {sku!r}")
        return plan_adoption(InventoryProjection.fold(sku, events), adopted_by, from_items), events[-1].version

    def candidates(self) -> list[str]:
        """The SKUs the inventory view shows uncounted and listed in Shopify (a scan, a page at a time)."""
        inventory: InventoryQueries = self._queries.inventory
        return sorted(row.sku for row in inventory.all() if row.uncounted and row.shopify_items)

    def adopt(self, skus: Sequence[str] | None, adopted_by: str, from_items: Collection[str] = (),
              dry_run: bool = False, source: str = SOURCE) -> AdoptionReport:
        """Adopt the named ``skus`` (all or none), or with None every candidate that can be;
        ``source`` is who appends (the admin route and the CLI, or the console)."""
        if skus is not None and not 0 < len(skus) <= MAX_SKUS:
            raise DynafoldError(f"name 1-{MAX_SKUS} SKUs (or adopt all)")
        named = skus is not None
        plans = [self._planned(sku, adopted_by, from_items) for sku in dict.fromkeys(skus or self.candidates())]
        refused = [plan for plan, _ in plans if plan.refused]
        if named and not dry_run and refused:
            raise DynafoldError("nothing adopted: " + "; ".join(f"{plan.sku}: {plan.refused}" for plan in refused))
        unused = set(from_items) - {plan.event.from_item for plan, _ in plans if plan.event is not None}
        if named and not dry_run and unused:
            raise DynafoldError(f"nothing adopted: --from-item {', '.join(sorted(unused))} is no item of these SKUs "
                                "taken for their count")
        report = AdoptionReport(dry_run=dry_run, refused=len(refused))
        for plan, version in plans:
            row = plan.row()
            if plan.event is not None and not dry_run:
                try:
                    result = self._store.append(f"sku:{plan.sku}", [NewEvent(ADOPTED_TYPE, plan.event, source=source)],
                                                version)
                except VersionConflict:
                    if named:
                        raise
                    row["refused"], report.refused = "it changed while being adopted; run again", report.refused + 1
                else:
                    row["version"], report.adopted = result.last_version, report.adopted + 1
            report.rows.append(row)
        return report
