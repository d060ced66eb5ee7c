"""The HTTP API function: one router over every route, API Gateway HTTP API (payload v2) in and out.

The same ``make_handler(deps)`` serves Lambda (``handler``, deps from the environment) and the
local stack's loopback HTTP server. Every failure is a JSON ``{"error": reason}`` with a 4xx
status naming what is wrong (or 503 when a secret is missing), and a rejected request appends
nothing: checks come first, the append last.

Why not Powertools' ``APIGatewayHttpResolver``: importing its event handler package (every
resolver, asyncio, all the event data classes) and building it over these routes with validation
costs about 95 ms more CPU at cold start than this router (``python -m benchmarks.api_cold_import``;
the budget was 15 ms). The route table carries what the resolver would have given (method, path,
auth, body models, parameters), and ``processors.api.openapi`` generates the OpenAPI document from it
(``python -m processors.api > openapi.json``).
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from events import shopify
from events.errors import (
    DynafoldError,
    EventTooLarge,
    IdempotencyKeyReused,
    NotFound,
    StreamContended,
    VersionConflict,
)
from events.order_rules import Order
from processors.api import admin, health, messages, privacy, reads, support, traces, webhooks
from processors.api.auth import require_api_key, verify_inflow, verify_shopify
from processors.api.deps import ApiDeps
from processors.api.http import ApiError, HttpRequest, HttpResponse, check_key_bytes
from processors.api.routing import MAX_PATH_PARAM_BYTES, Param, Route, public
from processors.api.telemetry import logger, metrics

def _openapi(request: HttpRequest, deps: ApiDeps) -> HttpResponse:
    from processors.api.openapi import document  # only this route pays for building it

    return HttpResponse(200, document(ROUTES))


_LIMIT = Param("limit", "page size, 1-1000 (default 100)", {"type": "integer", "minimum": 1, "maximum": 1000})
_NEXT = Param("next", "the continuation token from the previous page's `next`")
_IDEMPOTENCY = Param("Idempotency-Key", "1-200 characters; a retry with the same key appends nothing and "
                                        "gets the original answer",
                     {"type": "string", "minLength": 1, "maxLength": 200})
_APPENDED = {200: "appended (or deduplicated: the original answer)"}

ROUTES: tuple[Route, ...] = (
    Route("POST", "/webhooks/inflow/orders", webhooks.inflow_order, verify_inflow,
          "InFlow order created or updated: validate it and append its complete error set",
          body=(Order,), headers=(Param("X-Inflow-Delivery-Id", "the delivery id, used as idempotency key "
                                                                 "(else the body's SHA-256)"),),
          ok=_APPENDED),
    Route("POST", "/webhooks/shopify", webhooks.shopify_webhook, verify_shopify,
          "Shopify webhook (orders, refunds, inventory levels, products, inventory items and the privacy topics)",
          body=tuple(dict.fromkeys(shopify.PAYLOADS.values())),
          headers=(Param("X-Shopify-Topic", "the webhook topic", {"type": "string", "enum": list(shopify.TOPICS)},
                         required=True),
                   Param("X-Shopify-Event-Id", "the event's id: one decision per event, across subscriptions",
                         {"type": "string", "minLength": 1, "maxLength": 200}),
                   Param("X-Shopify-Webhook-Id", "Shopify's delivery id, the idempotency key without an event id",
                         {"type": "string", "minLength": 1, "maxLength": 200}, required=True)),
          ok=_APPENDED, errors={409: "the SKU's stream kept changing; retry"}),
    Route("POST", "/messages", messages.submit_message, require_api_key,
          "Submit a message for webhook delivery (once per sender and message id)",
          body=(messages.MessageSubmission,),
          ok={202: "accepted for delivery", 200: "already submitted: the original answer"},
          errors={409: "the message id was already used (with another body, or over 30 days ago)"}),
    Route("POST", "/alerts/{alert_id}/read", admin.mark_alert_read, require_api_key, "Mark an alert read",
          body=(admin.ReadBody,), body_required=False, ok={200: "marked read, or already read"},
          errors={404: "no such alert", 409: "the alert changed meanwhile; retry"}),
    Route("POST", "/alerts/read", admin.mark_alerts_read, require_api_key,
          "Mark every unread alert matching the filters read (type, sku, severity, before; at least one)",
          body=(admin.ReadMatchingBody,), ok={200: "what was marked (or, with dry_run, would be)"},
          errors={409: "an alert changed meanwhile; retry (nothing is marked twice)"}),
    Route("PUT", "/inventory/{sku}/count", admin.set_count, require_api_key, "Set a SKU's physical count",
          body=(admin.CountBody,), headers=(_IDEMPOTENCY,), ok=_APPENDED, errors={409: "Idempotency-Key reused"}),
    Route("PUT", "/inventory/{sku}/buffer", admin.set_buffer, require_api_key, "Set a SKU's buffer",
          body=(admin.BufferBody,), headers=(_IDEMPOTENCY,), ok=_APPENDED, errors={409: "Idempotency-Key reused"}),
    Route("PUT", "/shopify/items/{inventory_item_id}", admin.set_shopify_item, require_api_key,
          "Map a Shopify inventory item to a SKU (or unmap it)", body=(admin.ItemBody,), ok=_APPENDED),
    Route("POST", "/shopify/items", admin.import_shopify_items, require_api_key,
          "Map many Shopify inventory items to SKUs at once, all checked first", body=(admin.ItemsBody,),
          ok=_APPENDED),
    Route("POST", "/shopify/adopt", admin.adopt_shopify_levels, require_api_key,
          "Onboarding: record Shopify's level as the first physical count of SKUs never counted here "
          "(named SKUs all or none; `all`: every uncounted SKU Shopify lists, refusals reported)",
          body=(admin.AdoptBody,), ok={200: "adopted (or, with dry_run, what would be)"},
          errors={404: "no such SKU", 409: "a SKU changed while it was being adopted; run again"}),
    Route("POST", "/messages/{message_id}/redrive", support.redrive_message, require_api_key,
          "Redrive a dead-lettered delivery (a fresh retry budget), or run its scheduled retry now",
          body=(support.RedriveBody,), body_required=False,
          ok={200: "redriven, already waiting for its attempt, or (dry_run) what would happen"},
          errors={404: "no such message or delivery",
                  409: "not redriven: delivered, or its target is disabled (the reason says how to enable it)"}),
    Route("POST", "/dead-letters/redrive", support.redrive_dead_letters, require_api_key,
          "Redrive every dead-lettered delivery (optionally since a time); each one's outcome listed",
          body=(support.DeadLettersBody,), body_required=False),
    Route("GET", "/orders/{order_id}/errors", reads.order_errors, require_api_key,
          "An order's pending errors, by order id or InFlow order number", errors={404: "no such order"}),
    Route("GET", "/orders/{order}/explanation", support.order_explanation, require_api_key,
          "Why an order was held: each error's detection, grace period and fix, the notification, what is pending",
          errors={404: "no order with this id or InFlow order number"}),
    Route("GET", "/messages/{message_id}/explanation", support.delivery_explanation, require_api_key,
          "Whether a webhook was delivered, when the next retry is, the retries left and when it gives up",
          query=(Param("sender_id", "the sender, when several used this message id"),),
          errors={404: "no such message or delivery"}),
    Route("GET", "/pending-errors", reads.pending_errors, require_api_key,
          "Pending order errors, or those older than a duration",
          query=(Param("older_than", "a duration such as 30m, 2h or 7d"),)),
    Route("GET", "/messages/{message_id}", reads.message_status, require_api_key,
          "What happened to a message: its deliveries", errors={404: "no such message"}),
    Route("GET", "/inventory", reads.inventory, require_api_key, "All SKUs, a page at a time",
          query=(_LIMIT, _NEXT)),
    Route("GET", "/inventory/{sku}", reads.inventory_item, require_api_key, "One SKU's stock",
          errors={404: "no such SKU"}),
    Route("GET", "/inventory/{sku}/returns", reads.inventory_returns, require_api_key, "A SKU's returns"),
    Route("GET", "/inventory/{sku}/explanation", support.sku_explanation, require_api_key,
          "Why Shopify shows what it shows for a SKU, in sentences: our count, each item's levels as Shopify last "
          "reported them, the last push and its outcome, echoes, drift (as `dynafold explain sku`)",
          errors={404: "no such SKU"}),
    Route("GET", "/alerts", reads.alerts, require_api_key, "Alerts, newest first",
          query=(Param("unread", "true or false", {"type": "boolean"}),
                 Param("severity", "only this severity"), Param("sku", "only this SKU's alerts"))),
    Route("GET", "/trace/{id}", traces.trace, require_api_key,
          "What an event caused and what caused it (an event id), or what one request caused (a correlation id): "
          "the events in time order, each with its cause and depth",
          errors={404: "no event and no request with that id"}),
    Route("GET", "/status", health.status, require_api_key,
          "Is everything caught up and healthy? Readers' lag (and its series), failures and dead letters, "
          "alarms in ALARM, view versions, rebuilds in progress",
          query=(Param("window", "how far back to look, 5m..24h (default 1h)"),
                 Param("lag_threshold", "a reader further behind needs attention (default 60s)"))),
    Route("POST", "/subjects/{subject}/forget", privacy.forget_subject, require_api_key,
          "Forget a data subject: destroy its key, so its values read [erased] everywhere (`dynafold forget`)",
          body=(privacy.ForgetBody,), ok={200: "forgotten (or, with dry_run, what would be)"},
          errors={404: "no personal data is held for that subject"}),
    Route("GET", "/subjects/{subject}/personal-data", privacy.export_subject, require_api_key,
          "Every personal value held for a data subject (a data request's export), [erased] once forgotten"),
    Route("GET", "/openapi.json", _openapi, public, "This API's OpenAPI 3 document"),
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
            for name, value in params.items():
                check_key_bytes(f"path parameter {name!r}", value, MAX_PATH_PARAM_BYTES)
            return route, params
        allowed.append(route.method)
    if allowed:
        methods = sorted(set(allowed))
        raise ApiError(405, f"{request.method} is not allowed on {request.path}", allow=methods,
                       headers={"allow": ", ".join(methods)})
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
        if route.body and (request.body or route.body_required):
            request.require_json()
        return template, route.handler(replace(request, path_params=params), deps)
    except ApiError as error:
        return template, error.response()
    except (VersionConflict, IdempotencyKeyReused) as error:
        return template, ApiError(409, str(error)).response()
    except EventTooLarge as error:
        return template, ApiError(413, str(error)).response()
    except NotFound as error:
        return template, ApiError(404, str(error)).response()
    except StreamContended as error:  # busy, not wrong: the caller (Shopify, ...) retries later
        return template, ApiError(503, str(error)).response()
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
