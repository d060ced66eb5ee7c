"""Admin routes (API key): mark an alert read, set a SKU's physical count or buffer."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from events.envelope import NewEvent, PlannedAppend
from events.errors import DynafoldError, NotFound, VersionConflict
from events.inventory import BufferSet, PhysicalCountSet
from processors.api.appends import append_planned
from processors.api.deps import ApiDeps
from processors.api.http import ApiError, HttpRequest, HttpResponse, parse_json
from processors.services.alerts import read_plan
from processors.services.shopify_items import MAX_IMPORT_ROWS, ItemRow, checked_row, set_items

SOURCE = "urn:dynafold:admin"


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CountBody(_Body):
    physical: int = Field(ge=0, le=100_000_000)


class BufferBody(_Body):
    buffer: int = Field(ge=0, le=100_000_000)


class ReadBody(_Body):
    read_by: str | None = Field(default=None, max_length=200)


def _key(request: HttpRequest, route: str) -> str | None:
    """An optional Idempotency-Key header makes an admin write safe to retry."""
    given = request.header("idempotency-key")
    if given is not None and not 0 < len(given) <= 200:
        raise ApiError(400, "Idempotency-Key must be 1-200 characters")
    return None if given is None else f"admin:{route}:{given}"


def _event(request: HttpRequest, event_type: str, data: BaseModel) -> NewEvent:
    return NewEvent(event_type, data, source=SOURCE, correlation_id=request.request_id or None)


def set_count(request: HttpRequest, deps: ApiDeps) -> HttpResponse:
    sku = request.path_params["sku"]
    body = request.parse(CountBody)
    plan = PlannedAppend(f"sku:{sku}", (_event(request, "dynafold.inventory.physical_count_set.v1",
                                                PhysicalCountSet(sku=sku, physical=body.physical, source="admin")),),
                         _key(request, f"count:{sku}"))
    return HttpResponse(200, append_planned(deps.store, plan))


def set_buffer(request: HttpRequest, deps: ApiDeps) -> HttpResponse:
    sku = request.path_params["sku"]
    body = request.parse(BufferBody)
    plan = PlannedAppend(f"sku:{sku}", (_event(request, "dynafold.inventory.buffer_set.v1",
                                                BufferSet(sku=sku, buffer=body.buffer)),),
                         _key(request, f"buffer:{sku}"))
    return HttpResponse(200, append_planned(deps.store, plan))


def mark_alert_read(request: HttpRequest, deps: ApiDeps) -> HttpResponse:
    """Appends `alert read` once; marking a read alert again changes nothing and says so."""
    alert_id = request.path_params["alert_id"]
    body = parse_json(ReadBody, request.json()) if request.body else ReadBody()
    try:
        plan, version = read_plan(deps.store, alert_id, read_by=body.read_by, source=SOURCE,
                                  correlation_id=request.request_id or None)
    except NotFound:
        raise ApiError(404, f"no alert {alert_id!r}") from None
    if plan is None:
        return HttpResponse(200, {"stream": f"alert:{alert_id}", "version": version, "already_read": True})
    try:
        answer = append_planned(deps.store, plan, version)
    except VersionConflict:
        raise ApiError(409, f"alert {alert_id!r} changed while it was being marked read; retry") from None
    return HttpResponse(200, {**answer, "already_read": False})


class ItemBody(_Body):
    sku: str = Field(min_length=1, max_length=512)
    variant_id: int | str | None = None


class ItemsBody(_Body):
    items: list[dict[str, object]] = Field(min_length=1, max_length=MAX_IMPORT_ROWS)


def set_shopify_item(request: HttpRequest, deps: ApiDeps) -> HttpResponse:
    """Say which SKU a Shopify inventory item is (existing catalogues; products/* teach new ones)."""
    body = request.parse(ItemBody)
    row = _item_row({"inventory_item_id": request.path_params["inventory_item_id"], "sku": body.sku,
                     "variant_id": body.variant_id}, "path")
    [answer] = set_items(deps.store, [row], "admin", request.request_id or "admin")
    return HttpResponse(200, answer)


def import_shopify_items(request: HttpRequest, deps: ApiDeps) -> HttpResponse:
    """Bulk: {"items": [{inventory_item_id, sku, variant_id?}, ...]}; every row is checked first."""
    body = request.parse(ItemsBody)
    rows = [_item_row(raw, f"items[{index}]") for index, raw in enumerate(body.items)]
    if len({row[0] for row in rows}) != len(rows):
        raise ApiError(400, "an inventory item appears twice in items")
    answers = set_items(deps.store, rows, "import", request.request_id or "admin")
    return HttpResponse(200, {"items": answers, "changed": sum(1 for a in answers if a["changed"])})


def _item_row(raw: dict[str, object], where: str) -> ItemRow:
    try:
        return checked_row(raw, where)
    except DynafoldError as error:
        raise ApiError(400, str(error)) from None
