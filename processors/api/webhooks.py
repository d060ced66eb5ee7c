"""Inbound webhooks: InFlow orders (seed 000) and Shopify inventory topics (seed 004).

Each verifies an HMAC over the raw body first, then validates, then appends with the sender's
delivery id as idempotency key, so a retried webhook appends nothing and gets the original answer.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from events import shopify
from events.envelope import NewEvent, PlannedAppend, RecordedEvent
from events.order_rules import Order, inflow_validation, validate_order
from events.orders import OrderValidated
from events.shopify_items import MapSource
from events.errors import VersionConflict
from events.store import ANY, MAX_TRANSACTION_ITEMS, NO_STREAM
from processors.api.appends import answer, append_atomically, append_planned
from processors.api.http import check_key_bytes
from processors.api.deps import ApiDeps
from processors.api.http import ApiError, HttpRequest, HttpResponse, parse_json
from processors.api.telemetry import logger, metrics
from processors.services import shopify_items

INFLOW_SOURCE = "urn:dynafold:inflow"
_ORDER_RETRIES = 3


def inflow_order(request: HttpRequest, deps: ApiDeps) -> HttpResponse:
    """An InFlow order was created or updated: validate it, append its complete current error set.

    Deduplication never swallows a state change (``events.order_rules.inflow_validation``)."""
    order = request.parse(Order)
    errors = validate_order(order, deps.settings.order_rules)
    delivery = request.header("x-inflow-delivery-id")
    validated = OrderValidated(order_id=order.order_id, order_number=order.order_number, errors=errors,
                               order=order.model_dump(mode="json"))
    event = NewEvent("dynafold.orders.validated.v1", validated, source=INFLOW_SOURCE,
                     correlation_id=request.request_id or None)
    stream = f"order:{order.order_id}"
    for _ in range(_ORDER_RETRIES):
        history = [] if delivery else deps.store.read_stream(stream)
        step = inflow_validation(stream, history, event, delivery, request.body)
        if isinstance(step, RecordedEvent):  # the log already says exactly this: nothing changed
            metrics.add_metric(name="AppendsDeduplicated", unit=MetricUnit.Count, value=1)
            answer = {"stream": stream, "version": step.version, "versions": [step.version], "event_id": step.id,
                      "event_ids": [step.id], "deduplicated": True}
            break
        # Without a delivery id the key holds at the version read: append exactly there.
        expected = ANY if delivery else (history[-1].version if history else NO_STREAM)
        try:
            answer = append_planned(deps.store, step, expected)
        except VersionConflict:
            continue  # the order changed meanwhile: decide again on what is there now
        break
    else:
        raise ApiError(409, f"{stream} kept changing; retry the webhook")
    if not answer["deduplicated"]:
        metrics.add_metric(name="OrdersValidated", unit=MetricUnit.Count, value=1)
        metrics.add_metric(name="OrderErrorsReported", unit=MetricUnit.Count, value=len(errors))
    return HttpResponse(200, {**answer, "errors": [e.model_dump(mode="json") for e in errors]})


def shopify_webhook(request: HttpRequest, deps: ApiDeps) -> HttpResponse:
    """One Shopify webhook = one decision, appended atomically and keyed by its X-Shopify-Event-Id.

    Shopify's headers: https://shopify.dev/docs/apps/build/webhooks/subscribe/https -- the event id
    is the same for every delivery of one event (also across subscriptions), the webhook id differs
    per delivery, so the event id is the idempotency key (the webhook id when it is absent).
    A webhook we do not act on is answered 200 (a 4xx makes Shopify retry and, in the end, drop
    the subscription); a malformed one is a 400 and appends nothing.
    """
    topic = request.header("x-shopify-topic") or ""
    event_key = request.header("x-shopify-event-id") or request.header("x-shopify-webhook-id")
    if not event_key or len(event_key) > 200:
        raise ApiError(400, "missing or oversized X-Shopify-Event-Id / X-Shopify-Webhook-Id header "
                            "(it is the idempotency key)")
    if topic not in shopify.PAYLOADS:
        logger.info("shopify topic ignored", extra={"topic": topic, "event_key": event_key})
        metrics.add_metric(name="ShopifyTopicsIgnored", unit=MetricUnit.Count, value=1)
        return HttpResponse(200, {"topic": topic, "appended": [], "ignored": f"topic {topic!r} is not used"})
    payload = parse_json(shopify.PAYLOADS[topic], request.json())
    key = f"shopify:{topic}:{event_key}"
    earlier = deps.store.recorded_streams(key)
    if earlier is not None:  # a redelivery: the original answer, nothing decided again
        metrics.add_metric(name="AppendsDeduplicated", unit=MetricUnit.Count, value=1)
        return HttpResponse(200, {"topic": topic, "event_key": event_key, "deduplicated": True,
                                  "appended": [answer(result) for result in earlier], "skipped": []})
    plans, skipped, unmapped = _decide(topic, payload, event_key, request, deps)
    if skipped:
        metrics.add_metric(name="ShopifyLinesSkipped", unit=MetricUnit.Count, value=len(skipped))
        logger.warning("shopify lines skipped", extra={"topic": topic, "event_key": event_key, "skipped": skipped})
    if unmapped:
        metrics.add_metric(name="ShopifyUnmappedItemUpdates", unit=MetricUnit.Count, value=len(unmapped))
    for plan in plans:  # every part is checked before the first is appended: all or nothing
        check_key_bytes("stream id", plan.stream)
    appended = []
    for part_key, part in shopify.plan_parts(plans, key, MAX_TRANSACTION_ITEMS):
        appended.extend(append_atomically(deps.store, part, part_key))
    return HttpResponse(200, {"topic": topic, "event_key": event_key, "deduplicated": False, "appended": appended,
                              "skipped": skipped, "unmapped_items": unmapped})


def _triggered_at(request: HttpRequest) -> datetime | None:
    """X-Shopify-Triggered-At (e.g. 2023-03-29T18:00:27.877041743Z: nanoseconds, cut to micro)."""
    text = request.header("x-shopify-triggered-at") or ""
    head, dot, fraction = text.partition(".")
    try:
        moment = datetime.fromisoformat(head + (f".{fraction.rstrip('Z')[:6]}Z" if dot else ""))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


def _decide(topic: str, payload: Any, event_key: str, request: HttpRequest,
            deps: ApiDeps) -> tuple[list[PlannedAppend], list[str], list[str]]:
    """(appends, lines skipped, inventory items without a SKU) for one parsed webhook."""
    if isinstance(payload, shopify.OrderCreated):
        return (*shopify.order_created(payload, event_key), [])
    if isinstance(payload, shopify.RefundCreated):
        return (*shopify.refund_created(payload, event_key), [])
    if isinstance(payload, shopify.InventoryLevelUpdated):
        sku = shopify_items.sku_for(deps.store, payload.inventory_item_id)
        locations = deps.settings.shopify_locations
        counted = not locations or payload.location_id in locations
        triggered = _triggered_at(request)
        plan = shopify.level_reported(payload, sku, counted, event_key, triggered or deps.clock(), triggered)
        return [plan], [], [] if sku is not None else [payload.inventory_item_id]
    source: MapSource = "products" if topic.startswith("products/") else "inventory_items"
    rows, skipped = shopify.learned_items(payload)
    return shopify_items.changes(deps.store, rows, source, event_key), skipped, []
