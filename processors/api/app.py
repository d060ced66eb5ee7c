"""The HTTP API function: one router over every route, API Gateway HTTP API (payload v2) in and out.

The same ``make_handler(deps)`` serves Lambda (``handler``, deps from the environment) and the
local stack's loopback HTTP server. Every failure is a JSON ``{"error": reason}`` with a 4xx
status naming what is wrong (or 503 when a secret is missing), and a rejected request appends
nothing: checks come first, the append last.
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from events.errors import DynafoldError, EventTooLarge, IdempotencyKeyReused, VersionConflict
from processors.api import admin, messages, reads, webhooks
from processors.api.auth import require_api_key, verify_inflow, verify_shopify
from processors.api.deps import ApiDeps
from processors.api.http import ApiError, HttpRequest, HttpResponse
from processors.api.telemetry import logger, metrics
from processors.adapters.secrets import Secrets

RouteHandler = Callable[[HttpRequest, ApiDeps], HttpResponse]


Auth = Callable[[HttpRequest, Secrets], None]  # raises ApiError (401/403, or 503 without its secret)


@dataclass(frozen=True)
class Route:
    method: str
    template: str
    handler: RouteHandler
    auth: Auth  # checked before the handler sees the body: a rejected caller is never parsed

    @property
    def pattern(self) -> re.Pattern[str]:
        return re.compile("^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", self.template) + "$")


ROUTES: tuple[Route, ...] = (
    Route("POST", "/webhooks/inflow/orders", webhooks.inflow_order, verify_inflow),
    Route("POST", "/webhooks/shopify", webhooks.shopify_webhook, verify_shopify),
    Route("POST", "/messages", messages.submit_message, require_api_key),
    Route("POST", "/alerts/{alert_id}/read", admin.mark_alert_read, require_api_key),
    Route("PUT", "/inventory/{sku}/count", admin.set_count, require_api_key),
    Route("PUT", "/inventory/{sku}/buffer", admin.set_buffer, require_api_key),
    Route("GET", "/orders/{order_id}/errors", reads.order_errors, require_api_key),
    Route("GET", "/pending-errors", reads.pending_errors, require_api_key),
    Route("GET", "/messages/{message_id}", reads.message_status, require_api_key),
    Route("GET", "/inventory", reads.inventory, require_api_key),
    Route("GET", "/inventory/{sku}", reads.inventory_item, require_api_key),
    Route("GET", "/inventory/{sku}/returns", reads.inventory_returns, require_api_key),
    Route("GET", "/alerts", reads.alerts, require_api_key),
)
_COMPILED = [(route, route.pattern) for route in ROUTES]


def match(request: HttpRequest) -> tuple[Route, dict[str, str]]:
    allowed = []
    for route, pattern in _COMPILED:
        found = pattern.match(request.path)
        if found is None:
            continue
        if route.method == request.method:
            params = {name: urllib.parse.unquote(value) for name, value in found.groupdict().items()}
            if any(not value or "\x00" in value for value in params.values()):
                raise ApiError(400, "empty or invalid path parameter")
            return route, params
        allowed.append(route.method)
    if allowed:
        raise ApiError(405, f"{request.method} is not allowed on {request.path}", allow=sorted(set(allowed)))
    raise ApiError(404, f"no route for {request.method} {request.path}")


def dispatch(event: dict[str, Any], deps: ApiDeps) -> tuple[str, HttpResponse]:
    """(route template, response) for one API Gateway event; never raises."""
    template = "-"
    try:
        request = HttpRequest.from_api_gateway(event)
        if len(request.body) > deps.settings.max_body_bytes:
            raise ApiError(413, f"body is {len(request.body)} bytes; the limit is {deps.settings.max_body_bytes}")
        route, params = match(request)
        template = f"{route.method} {route.template}"
        route.auth(request, deps.secrets)
        return template, route.handler(replace(request, path_params=params), deps)
    except ApiError as error:
        return template, error.response()
    except (VersionConflict, IdempotencyKeyReused) as error:
        return template, ApiError(409, str(error)).response()
    except EventTooLarge as error:
        return template, ApiError(413, str(error)).response()
    except DynafoldError as error:
        return template, ApiError(400, str(error)).response()
    except Exception:  # noqa: BLE001 - logged with its trace; the caller learns nothing internal
        logger.exception("request failed", extra={"route": template})
        return template, HttpResponse(500, {"error": "internal error; the request id is in the logs"})


def make_handler(deps: ApiDeps) -> Callable[[dict[str, Any], Any], dict[str, Any]]:
    @logger.inject_lambda_context(clear_state=True)
    @metrics.log_metrics
    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        request_id = (event.get("requestContext") or {}).get("requestId")
        if request_id:
            logger.set_correlation_id(request_id)
        route, response = dispatch(event, deps)
        metrics.add_dimension("route", route)
        metrics.add_metric(name="Requests", unit=MetricUnit.Count, value=1)
        metrics.add_metric(name=f"Responses{response.status // 100}xx", unit=MetricUnit.Count, value=1)
        log = logger.warning if response.status >= 400 else logger.info
        log("request", extra={"route": route, "status": response.status,
                              "error": response.body.get("error") if isinstance(response.body, dict) else None})
        return response.to_api_gateway()

    return handler
