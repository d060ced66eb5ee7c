"""Admin routes (API key): mark alerts read (one, or by filter), set a SKU's physical count or buffer, map
Shopify items, adopt Shopify's levels as first counts."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field, model_validator

from events.envelope import NewEvent, PlannedAppend
from events.errors import DynafoldError
from events.inventory import BufferSet, PhysicalCountSet
from events.skus import Sku, sku_problem
from processors.api.appends import append_planned, count_appended
from processors.api.deps import ApiDeps
from processors.api.http import ApiError, HttpRequest, HttpResponse, parse_json
from processors.api.telemetry import logger
from processors.services.adoption import MAX_SKUS
from processors.services.shopify_items import MAX_IMPORT_ROWS, ItemRow, checked_row, set_items

if TYPE_CHECKING:  # imported by the alert routes that use them: every other request's cold start skips them
    from processors.services.alert_reads import AlertReads, ReadOutcome

SOURCE = "urn:dynafold:admin"


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


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


def _sku(request: HttpRequest) -> str:
    """The path's SKU, refused here if it could never be a stream key (the one SKU rule)."""
    sku = request.path_params["sku"]
    problem = sku_problem(sku)
    if problem is not None:
        raise ApiError(400, f"path parameter 'sku': SKU {problem}", field="sku")
    return sku


def set_count(request: HttpRequest, deps: ApiDeps) -> HttpResponse:
    sku = _sku(request)
    body = request.parse(CountBody)
    plan = PlannedAppend(f"sku:{sku}", (_event(request, "dynafold.inventory.physical_count_set.v1",
                                                PhysicalCountSet(sku=sku, physical=body.physical, source="admin")),),
                         _key(request, f"count:{sku}"))
    return HttpResponse(200, append_planned(deps.store, plan))


def set_buffer(request: HttpRequest, deps: ApiDeps) -> HttpResponse:
    sku = _sku(request)
    body = request.parse(BufferBody)
    plan = PlannedAppend(f"sku:{sku}", (_event(request, "dynafold.inventory.buffer_set.v1",
                                                BufferSet(sku=sku, buffer=body.buffer)),),
                         _key(request, f"buffer:{sku}"))
    return HttpResponse(200, append_planned(deps.store, plan))


def _alert_reads(deps: ApiDeps) -> AlertReads:
    from processors.services.alert_reads import AlertReads

    return AlertReads(deps.store, deps.queries.alerts)  # as the composition root builds it for the CLI


def _reported(outcome: ReadOutcome, request: HttpRequest) -> ReadOutcome:
    from processors.services.alert_reads import ALERT_READ

    count_appended(ALERT_READ for _ in outcome.newly_read if not outcome.dry_run)
    logger.info("alerts marked read", extra={"alerts": [m.alert_id for m in outcome.newly_read],
                                             "dry_run": outcome.dry_run, "request_id": request.request_id})
    return outcome


def mark_alert_read(request: HttpRequest, deps: ApiDeps) -> HttpResponse:
    """Appends `alert read` once; marking a read alert again changes nothing and says so."""
    body = parse_json(ReadBody, request.json()) if request.body else ReadBody()
    outcome = _alert_reads(deps).mark([request.path_params["alert_id"]], read_by=body.read_by, source=SOURCE,
                                      correlation_id=request.request_id or None)
    [marked] = _reported(outcome, request).marked
    return HttpResponse(200, marked.to_dict())


class ReadMatchingBody(_Body):
    type: str | None = Field(default=None, max_length=100, description="only alerts of this type")
    sku: str | None = Field(default=None, min_length=1, max_length=512, description="only this SKU's alerts")
    severity: str | None = Field(default=None, max_length=20, description="info, warning or critical")
    before: str | None = Field(default=None, max_length=64,
                               description="only alerts raised before this ISO 8601 time")
    read_by: str | None = Field(default=None, max_length=200)
    dry_run: bool = Field(default=False, description="answer what would be marked; append nothing")


def mark_alerts_read(request: HttpRequest, deps: ApiDeps) -> HttpResponse:
    """Marks every unread alert matching all the given filters (at least one); already read ones are untouched."""
    from processors.services.alert_reads import AlertFilter

    body = request.parse(ReadMatchingBody)
    where = AlertFilter.of(body.type, body.sku, body.severity, body.before)
    outcome = _alert_reads(deps).mark_matching(where, read_by=body.read_by, source=SOURCE,
                                               correlation_id=request.request_id or None, dry_run=body.dry_run)
    return HttpResponse(200, _reported(outcome, request).to_dict())


class ItemBody(_Body):
    sku: Sku
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


class AdoptBody(_Body):
    """``skus`` to adopt (all or none), or ``all`` the uncounted SKUs Shopify lists."""

    skus: list[Sku] | None = Field(default=None, min_length=1, max_length=MAX_SKUS)
    all: bool = False
    from_items: list[str] = Field(default_factory=list, max_length=MAX_SKUS,
                                  description="the item to take the count from, for SKUs whose items disagree")
    dry_run: bool = False

    @model_validator(mode="after")
    def _one_selection(self) -> "AdoptBody":
        if (self.skus is None) == (not self.all):
            raise ValueError("give either skus or all: true")
        return self


def adopt_shopify_levels(request: HttpRequest, deps: ApiDeps) -> HttpResponse:
    """Record Shopify's level as the first physical count of SKUs never counted here (issue 18 §1)."""
    body = request.parse(AdoptBody)
    if deps.adoption is None:
        raise ApiError(503, "adoption is not wired in this deployment")
    from_items = [_item_row({"inventory_item_id": item, "sku": "-"}, "from_items")[0] for item in body.from_items]
    report = deps.adoption().adopt(body.skus, f"admin API (request {request.request_id or '-'})", from_items,
                                 dry_run=body.dry_run)
    return HttpResponse(200, report.to_dict())
