"""Read routes over the views (API key): the operator's and other services' questions (DESIGN.md, use 3)."""

from __future__ import annotations

from processors.api.deps import ApiDeps
from processors.api.http import ApiError, HttpRequest, HttpResponse
from projections.queries import InvalidQuery, parse_duration, time_bound


def _rows(rows: list) -> list[dict]:
    return [row.to_dict() for row in rows]


def _flag(request: HttpRequest, name: str) -> bool | None:
    value = request.query.get(name)
    if value is None or value == "":
        return None
    if value.lower() in ("true", "1", "yes"):
        return True
    if value.lower() in ("false", "0", "no"):
        return False
    raise ApiError(400, f"query parameter {name!r} must be true or false, not {value!r}")


def _limit(request: HttpRequest) -> int:
    text = request.query.get("limit", "100")
    if not text.isdigit() or not 1 <= int(text) <= 1000:
        raise ApiError(400, f"query parameter 'limit' must be 1-1000, not {text!r}")
    return int(text)


def order_errors(request: HttpRequest, deps: ApiDeps) -> HttpResponse:
    order_id = request.path_params["order_id"]
    return HttpResponse(200, {"order_id": order_id, "errors": _rows(deps.queries.pending_errors_by_order(order_id))})


def pending_errors(request: HttpRequest, deps: ApiDeps) -> HttpResponse:
    """All pending errors, or with ?older_than=30m those past that age (the monitor's question)."""
    older_than = request.query.get("older_than")
    if older_than is None:
        return HttpResponse(200, {"errors": _rows(deps.queries.pending_errors())})
    try:
        cutoff = deps.clock() - parse_duration(older_than)
    except InvalidQuery as error:
        raise ApiError(400, f"older_than: {error}") from None
    return HttpResponse(200, {"cutoff": time_bound(cutoff),
                              "errors": _rows(deps.queries.pending_errors_detected_before(cutoff))})


def message_status(request: HttpRequest, deps: ApiDeps) -> HttpResponse:
    message_id = request.path_params["message_id"]
    deliveries = _rows(deps.queries.delivery_by_message(message_id))
    if not deliveries:
        raise ApiError(404, f"no message {message_id!r}")
    return HttpResponse(200, {"message_id": message_id, "deliveries": deliveries})


def inventory(request: HttpRequest, deps: ApiDeps) -> HttpResponse:
    """All SKUs a page at a time: ?limit=N&next=<token from the previous page>."""
    rows, token = deps.queries.inventory_page(_limit(request), request.query.get("next") or None)
    return HttpResponse(200, {"items": _rows(rows), "next": token})


def inventory_item(request: HttpRequest, deps: ApiDeps) -> HttpResponse:
    item = deps.queries.inventory_item(request.path_params["sku"])
    if item is None:
        raise ApiError(404, f"no SKU {request.path_params['sku']!r}")
    return HttpResponse(200, item.to_dict())


def inventory_returns(request: HttpRequest, deps: ApiDeps) -> HttpResponse:
    sku = request.path_params["sku"]
    return HttpResponse(200, {"sku": sku, "returns": _rows(deps.queries.returns_of(sku))})


def alerts(request: HttpRequest, deps: ApiDeps) -> HttpResponse:
    """?unread=true&severity=critical&sku=PROD-1, newest first."""
    try:
        found = deps.queries.alerts(unread=_flag(request, "unread"), severity=request.query.get("severity") or None,
                                    sku=request.query.get("sku") or None)
    except InvalidQuery as error:
        raise ApiError(400, str(error)) from None
    return HttpResponse(200, {"alerts": _rows(found)})
