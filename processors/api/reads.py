"""Read routes over the views (API key): the operator's and other services' questions (DESIGN.md, use 3).

Every route is a view's ``Route`` (``projections/<view>/queries.py``), taken from the registry:
``ROUTES`` lists (template, handler) for the router. A bad argument is a 400, a missing thing a 404.
"""

from __future__ import annotations

from collections.abc import Callable

from botocore.exceptions import ClientError

from processors.api.deps import ApiDeps
from processors.api.http import ApiError, HttpRequest, HttpResponse, check_key_bytes
from projections.registry import UNITS
from events.errors import NotFound
from projections.unit import InvalidQuery, Route, ViewUnit

ReadHandler = Callable[[HttpRequest, ApiDeps], HttpResponse]


def handler(unit: ViewUnit, route: Route) -> ReadHandler:
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


ROUTES: tuple[tuple[str, ReadHandler], ...] = tuple(
    (route.template, handler(unit, route)) for unit in UNITS for route in unit.routes)
_BY_TEMPLATE = dict(ROUTES)

# The names the router (processors/api/app.py) lists today; a router iterating ROUTES needs none of them.
order_errors = _BY_TEMPLATE["/orders/{order_id}/errors"]
pending_errors = _BY_TEMPLATE["/pending-errors"]
message_status = _BY_TEMPLATE["/messages/{message_id}"]
inventory = _BY_TEMPLATE["/inventory"]
inventory_item = _BY_TEMPLATE["/inventory/{sku}"]
inventory_returns = _BY_TEMPLATE["/inventory/{sku}/returns"]
alerts = _BY_TEMPLATE["/alerts"]
