"""Inbound webhooks: InFlow orders (seed 000) and Shopify inventory topics (seed 004).

Each verifies an HMAC over the raw body first, then validates, then appends with the sender's
delivery id as idempotency key, so a retried webhook appends nothing and gets the original answer.
"""

from __future__ import annotations

import hashlib

from aws_lambda_powertools.metrics import MetricUnit

from events import shopify
from events.envelope import NewEvent, PlannedAppend
from events.idempotency_keys import broadcast_key
from events.order_rules import Order, validate_order
from events.orders import OrderValidated
from events.errors import VersionConflict
from processors.api.appends import append_planned
from processors.api.deps import ApiDeps
from processors.api.http import ApiError, HttpRequest, HttpResponse, parse_json
from processors.api.telemetry import metrics
from processors.services.state_reader import state_at
from projections.inventory import InventoryProjection

INFLOW_SOURCE = "urn:dynafold:inflow"
_STOREFRONT_RETRIES = 3


def inflow_order(request: HttpRequest, deps: ApiDeps) -> HttpResponse:
    """An InFlow order was created or updated: validate it, append its complete current error set."""
    order = request.parse(Order)
    errors = validate_order(order, deps.settings.order_rules)
    delivery = request.header("x-inflow-delivery-id") or hashlib.sha256(request.body).hexdigest()
    validated = OrderValidated(order_id=order.order_id, order_number=order.order_number, errors=errors,
                               order=order.model_dump(mode="json"))
    plan = PlannedAppend(f"order:{order.order_id}",
                         (NewEvent("dynafold.orders.validated.v1", validated, source=INFLOW_SOURCE,
                                   correlation_id=request.request_id or None),),
                         f"inflow:{delivery}")
    answer = append_planned(deps.store, plan)
    if not answer["deduplicated"]:
        metrics.add_metric(name="OrdersValidated", unit=MetricUnit.Count, value=1)
        metrics.add_metric(name="OrderErrorsReported", unit=MetricUnit.Count, value=len(errors))
    return HttpResponse(200, {**answer, "errors": [e.model_dump(mode="json") for e in errors]})


def shopify_webhook(request: HttpRequest, deps: ApiDeps) -> HttpResponse:
    topic = request.header("x-shopify-topic") or ""
    if topic not in shopify.PAYLOADS:
        raise ApiError(400, f"unsupported X-Shopify-Topic {topic!r} (one of {', '.join(shopify.TOPICS)})")
    webhook_id = request.header("x-shopify-webhook-id")
    if not webhook_id or len(webhook_id) > 200:
        raise ApiError(400, "missing or oversized X-Shopify-Webhook-Id header (it is the idempotency key)")
    payload = parse_json(shopify.PAYLOADS[topic], request.json())
    if isinstance(payload, shopify.InventoryLevelUpdated):
        return _storefront_count(payload, webhook_id, deps)
    if isinstance(payload, shopify.OrderCreated):
        appends, skipped = shopify.order_created(payload, webhook_id)
    elif isinstance(payload, shopify.RefundCreated):
        appends, skipped = shopify.refund_created(payload, webhook_id)
    else:  # a topic in shopify.PAYLOADS that this dispatch does not handle yet
        raise ApiError(400, f"unsupported X-Shopify-Topic {topic!r}")
    return HttpResponse(200, {"topic": topic, "appended": [append_planned(deps.store, plan) for plan in appends],
                              "skipped": skipped})


def _storefront_count(update: shopify.InventoryLevelUpdated, webhook_id: str, deps: ApiDeps) -> HttpResponse:
    """The storefront's count, unless it is the echo of our own broadcast (no loop)."""
    topic = "inventory_levels/update"
    if update.tx_id and deps.store.recorded(broadcast_key(update.tx_id)) is not None:
        metrics.add_metric(name="EchoesIgnored", unit=MetricUnit.Count, value=1)
        return HttpResponse(200, {"topic": topic, "appended": [], "ignored": f"echo of broadcast {update.tx_id}"})
    stream = f"sku:{update.sku}"
    for _ in range(_STOREFRONT_RETRIES):  # the buffer is read, so append at the version read
        state, version = state_at(deps.store, deps.views, InventoryProjection, stream)
        try:
            answer = append_planned(deps.store, shopify.storefront_count(update, state.buffer, webhook_id), version)
        except VersionConflict:
            continue
        return HttpResponse(200, {"topic": topic, "appended": [answer], "skipped": []})
    raise ApiError(409, f"{stream} kept changing; retry the webhook")
