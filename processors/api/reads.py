"""Read routes over the views (API key): the operator's and other services' questions (DESIGN.md, use 3).

Every route is a view's ``Route`` (``projections/<view>/queries.py``), taken from the registry:
``routes()`` lists (template, handler) for the router. A bad argument is a 400, a missing thing a 404.
The registry (every view's fold and queries) loads with the first read, not at the ingest
function's cold start: most of its requests are webhooks, which read no view through these routes.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

from processors.api.deps import ApiDeps
from processors.api.http import ApiError, HttpRequest, HttpResponse, check_key_bytes
from events.errors import NotFound

if TYPE_CHECKING:
    from projections.unit import Route, ViewUnit

ReadHandler = Callable[[HttpRequest, ApiDeps], HttpResponse]


def handler(unit: ViewUnit, route: Route) -> ReadHandler:
    from projections.unit import InvalidQuery

    def read(request: HttpRequest, deps: ApiDeps) -> HttpResponse:
        for name, value in request.query.items():  # a key DynamoDB would refuse is the caller's 400
            check_key_bytes(f"query parameter {name!r}", value)
        try:
            body = route.answer(deps.queries.of(unit), request.path_params, request.query, deps.clock())
        except NotFound as error:
            raise ApiError(404, str(error)) from None
        except InvalidQuery as error:
            raise ApiError(400, str(error)) from None
        except ClientError as error:  # a key-shaped token that is no key of this table (forged): DynamoDB says no
            if error.response["Error"]["Code"] != "ValidationException":
                raise
            token = request.query.get("next")
            if token is not None:
                raise ApiError(400, f"invalid continuation token {token[:100]!r}") from None
            raise ApiError(400, f"invalid request: {error.response['Error'].get('Message', '')[:200]}") from None
        return HttpResponse(200, body)

    read.__name__ = read.__qualname__ = f"read {route.template}"
    read.__doc__ = route.answer.__doc__
    return read


@cache
def routes() -> tuple[tuple[str, ReadHandler], ...]:
    """(template, handler) of every view's route, in the registry's order."""
    from projections.registry import UNITS

    return tuple((route.template, handler(unit, route)) for unit in UNITS for route in unit.routes)


@cache
def _by_template() -> dict[str, ReadHandler]:
    return dict(routes())


def _read(template: str) -> ReadHandler:
    """The route ``template``'s handler, looked up in ``routes()`` when first called."""

    def read(request: HttpRequest, deps: ApiDeps) -> HttpResponse:
        return _by_template()[template](request, deps)

    read.__name__ = read.__qualname__ = f"read {template}"
    return read


# The names the router (processors/api/app.py) lists today; a router iterating routes() needs none of them.
order_errors = _read("/orders/{order_id}/errors")
pending_errors = _read("/pending-errors")
message_status = _read("/messages/{message_id}")
inventory = _read("/inventory")
inventory_item = _read("/inventory/{sku}")
inventory_returns = _read("/inventory/{sku}/returns")
alerts = _read("/alerts")
