"""Inbound webhooks: InFlow orders (seed 000) and Shopify inventory topics (seed 004).

Each verifies an HMAC over the raw body first, then validates, then appends under an idempotency
key (the sender's delivery id; for a Shopify order or refund, the order or refund itself), so a
retried webhook appends nothing and gets the original answer.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from pydantic import ValidationError

from events import shopify
from events.envelope import NewEvent, PlannedAppend, RecordedEvent
from events.idempotency_keys import shopify_delivery_key
from events.order_rules import Order, inflow_validation, validate_order
from events.orders import OrderValidated
from events.shopify_items import MapSource
from events.errors import IdempotencyKeyReused, VersionConflict
from events.schema_base import first_problem
from events.store import ANY, MAX_TRANSACTION_ITEMS, NO_STREAM
from processors.api.appends import answer, append_atomically, append_planned, check_parts
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
    """One Shopify webhook = one decision, appended atomically under the key of its effect.

    Shopify's headers: https://shopify.dev/docs/apps/build/webhooks/subscribe/https -- the event id
    is the same for every delivery of one event (also across subscriptions), the webhook id differs
    per delivery. An order's effect is keyed by the order and a refund's by the refund
    (``events.shopify.effect_key``): the same order under other delivery ids (a second
    subscription, a re-registered webhook, a replay) appends nothing and gets the original answer.
    Other topics are keyed by the event id (the webhook id when it is absent); a redelivery of an
    event is answered from its key before anything is decided again, for every topic.
    A webhook we do not act on is answered 200 (a 4xx makes Shopify retry and, in the end, drop
    the subscription); a malformed one, or one naming an unusable SKU, is a 400 and appends nothing.
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
    delivery = shopify_delivery_key(topic, event_key)
    key = shopify.effect_key(topic, payload, event_key)
    # The event's own key first: it also answers deliveries recorded before effects had keys of their own.
    for known in dict.fromkeys((delivery, key)):
        earlier = deps.store.recorded_streams(known)
        if earlier is not None:  # a redelivery: the original answer, nothing decided again
            metrics.add_metric(name="AppendsDeduplicated", unit=MetricUnit.Count, value=1)
            return HttpResponse(200, {"topic": topic, "event_key": event_key, "deduplicated": True,
                                      "appended": [answer(result) for result in earlier], "skipped": []})
    try:
        plans, skipped, unmapped = _decide(topic, payload, event_key, request, deps)
    except ValidationError as error:  # the payload models should have refused it; never a 500 either way
        name, reason = first_problem(error)
        raise ApiError(400, f"body: field {name!r}: {reason}", field=name) from None
    if skipped:
        metrics.add_metric(name="ShopifyLinesSkipped", unit=MetricUnit.Count, value=len(skipped))
        logger.warning("shopify lines skipped", extra={"topic": topic, "event_key": event_key, "skipped": skipped})
    if unmapped:
        metrics.add_metric(name="ShopifyUnmappedItemUpdates", unit=MetricUnit.Count, value=len(unmapped))
    parts = shopify.plan_parts(plans, key, MAX_TRANSACTION_ITEMS - 1)
    check_parts(parts, deps.clock())  # every part is checked before the first is appended: all or nothing
    appended = []
    for part_key, part in parts:
        appended.extend(_append_part(deps, part, part_key, effect=key != delivery))
    return HttpResponse(200, {"topic": topic, "event_key": event_key,
                              "deduplicated": bool(appended) and all(a["deduplicated"] for a in appended),
                              "appended": appended, "skipped": skipped, "unmapped_items": unmapped})


def _append_part(deps: ApiDeps, part: list[PlannedAppend], key: str, *, effect: bool) -> list[dict[str, Any]]:
    """One part of a webhook's decision. Under an order's or refund's key, what its first delivery
    appended stands even if a later delivery of it reads differently (Shopify's test notification
    repeats one sample order; subscriptions may differ in API version): a 409 would only make
    Shopify retry it, and in the end drop the subscription."""
    try:
        return append_atomically(deps.store, part, key)
    except IdempotencyKeyReused:
        if not effect:
            raise
        recorded = deps.store.recorded_streams(key) or []
        metrics.add_metric(name="ShopifyEffectsDiffered", unit=MetricUnit.Count, value=1)
        logger.warning("shopify order or refund delivered again with other lines; its first effect stands",
                       extra={"key": key, "streams": [plan.stream for plan in part]})
        return [answer(result) for result in recorded]


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
