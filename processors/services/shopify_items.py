"""The Shopify inventory item -> SKU map, read and changed (webhooks, the admin route, the CLI).

The decisions are pure (events.shopify.mapping_change); this module reads the item streams they
need and parses bulk imports (CSV or JSON) for existing catalogues. A mapping change lands in the
item's stream and in the streams of the SKUs it leaves and joins, in one transaction.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from events.envelope import PlannedAppend
from events.errors import DynafoldError, IdempotencyKeyReused, VersionConflict
from events.shopify import mapping_change, merged
from events.shopify_items import MapSource, ShopifyId, current_sku, current_variant, item_stream
from events.skus import Sku
from events.ports import EventLog

ItemRow = tuple[str, str | None, str | None]  # inventory item id, SKU (None: names none), variant id
MAX_IMPORT_ROWS = 10_000


def sku_for(store: EventLog, inventory_item_id: str) -> str | None:
    return current_sku(store.read_stream(item_stream(inventory_item_id)))


def changes(store: EventLog, rows: Sequence[ItemRow], source: MapSource, correlation_id: str) -> list[PlannedAppend]:
    """The appends that make each item name its SKU (none for items that already do), one per stream."""
    plans = []
    for item_id, sku, variant_id in dict.fromkeys(rows):
        events = store.read_stream(item_stream(item_id))
        plans.extend(mapping_change(item_id, sku, variant_id, source, current_sku(events), current_variant(events),
                                    correlation_id))
    return merged(plans)


def set_items(store: EventLog, rows: Sequence[ItemRow], source: MapSource, correlation_id: str) -> list[dict[str, Any]]:
    """Map items one stream at a time (each conditional on the version read), for operators."""
    answers: list[dict[str, Any]] = []
    for item_id, sku, variant_id in rows:
        stream = item_stream(item_id)
        events = store.read_stream(stream)
        version = events[-1].version if events else 0
        plans = mapping_change(item_id, sku, variant_id, source, current_sku(events), current_variant(events),
                               correlation_id)
        if not plans:
            answers.append({"inventory_item_id": item_id, "sku": sku, "changed": False})
            continue
        # The item's stream and its SKUs' in one transaction; the key names the item's version
        # read, so of two operators who read the same version only one changes the map.
        try:
            results = store.append_streams(plans, f"shopify-map:{item_id}@{version}")
        except IdempotencyKeyReused:
            raise VersionConflict(stream, version, store.stream_version(stream)) from None
        answers.append({"inventory_item_id": item_id, "sku": sku, "changed": True,
                        "version": next(r.last_version for r in results if r.stream == stream)})
    return answers


class _Row(BaseModel):
    """An operator's row: Shopify's ids and a SKU by the one SKU rule (stricter than the stored
    ``item mapped`` event, whose older entries must still decode)."""

    model_config = ConfigDict(extra="ignore", frozen=True, defer_build=True)
    inventory_item_id: ShopifyId
    sku: Sku
    variant_id: ShopifyId | None = None


def checked_row(raw: Any, where: str) -> ItemRow:
    """One import row ({inventory_item_id, sku, variant_id?}) validated before anything is mapped."""
    if not isinstance(raw, dict):
        raise DynafoldError(f"{where}: expected an object with inventory_item_id and sku")
    try:
        mapped = _Row.model_validate({"inventory_item_id": raw.get("inventory_item_id"), "sku": raw.get("sku"),
                                      "variant_id": raw.get("variant_id") or None})
    except ValidationError as error:
        problem = error.errors()[0]
        field = ".".join(str(part) for part in problem["loc"]) or "row"
        raise DynafoldError(f"{where}: {field}: {problem['msg']}") from None
    return mapped.inventory_item_id, mapped.sku, mapped.variant_id


def parse_import(text: str, fmt: str) -> list[ItemRow]:
    """Rows of a CSV (header: inventory_item_id,sku[,variant_id]) or a JSON array of objects."""
    if fmt == "json":
        try:
            loaded = json.loads(text)
        except json.JSONDecodeError as error:
            raise DynafoldError(f"not valid JSON: {error.msg} at line {error.lineno}") from None
        if not isinstance(loaded, list):
            raise DynafoldError("expected a JSON array of {inventory_item_id, sku, variant_id?} objects")
        raw_rows: list[tuple[str, Any]] = [(f"item {index}", row) for index, row in enumerate(loaded)]
    elif fmt == "csv":
        reader = csv.DictReader(io.StringIO(text))
        missing = {"inventory_item_id", "sku"} - set(reader.fieldnames or ())
        if missing:
            raise DynafoldError(f"CSV header lacks {', '.join(sorted(missing))} (inventory_item_id,sku[,variant_id])")
        raw_rows = [(f"line {reader.line_num}", dict(row)) for row in reader]
    else:
        raise DynafoldError(f"unknown import format {fmt!r} (csv or json)")
    if len(raw_rows) > MAX_IMPORT_ROWS:
        raise DynafoldError(f"{len(raw_rows)} rows; import at most {MAX_IMPORT_ROWS} at a time")
    rows = [checked_row(raw, where) for where, raw in raw_rows]
    seen: dict[str, str | None] = {}
    for item_id, sku, _ in rows:
        if seen.setdefault(item_id, sku) != sku:
            raise DynafoldError(f"inventory item {item_id} is given two SKUs ({seen[item_id]!r} and {sku!r})")
    return rows
