"""The support questions' pages: an order (why wasn't it sent?), a delivery (delivered? next retry?
retries left? gives up?) and a SKU (why does Shopify show what it shows?), each the explanation the
CLI's `dynafold explain` gives, from the same service, with what is better seen than read (a
delivery's attempts on a timeline, a SKU's counts and Shopify's levels over time) and the action
that follows (redrive, enable the target, adopt Shopify's level)."""

from __future__ import annotations

from typing import Any

from events.envelope import RecordedEvent
from events.inventory import ShopifyPushPlanned, ShopifyPushSettled
from processors.console.charts import stock_chart
from processors.console.context import Context
from processors.console.timeline import timeline
from processors.console.web import Page
from projections.explanation import said_time
from projections.inventory import InventoryProjection


def order(ctx: Context) -> Page:
    answer = ctx.deps.services.support().orders.explain(ctx.params["ref"])
    return ctx.page("order.html", section="health", title=f"Order {answer.facts.get('order_number') or answer.subject}",
                    answer=answer, facts=answer.facts, stream=f"order:{answer.facts['order_id']}")


def delivery(ctx: Context) -> Page:
    deliveries = ctx.deps.services.support().deliveries
    ref, sender = ctx.params["ref"], ctx.query.get("sender") or None
    answer = deliveries.explain(ref, sender)
    history, _ = deliveries.history(ref, sender)
    facts = answer.facts
    return ctx.page("delivery.html", section="health", title=f"Delivery {facts['delivery_id']}", answer=answer,
                    facts=facts, stream=answer.subject, timeline=timeline(history, facts),
                    done=ctx.query.get("done", ""))


def sku(ctx: Context) -> Page:
    name = ctx.params["sku"]
    history = ctx.deps.store.read_stream(f"sku:{name}")
    answer = ctx.deps.services.support().skus.explain(name)  # NotFound (404) for a SKU without a history
    state = InventoryProjection.fold(name, history)
    adoption = None
    if state.uncounted and state.shopify_items:
        [adoption] = ctx.deps.services.adoption().adopt([name], "console", dry_run=True).rows
    return ctx.page("sku.html", section="health", title=f"SKU {name}", sku=name, answer=answer, facts=answer.facts,
                    state=state, chart=stock_chart(name, history), pushes=pushes(history), adoption=adoption,
                    stream=f"sku:{name}", done=ctx.query.get("done", ""))


def pushes(history: list[RecordedEvent]) -> list[dict[str, Any]]:
    """Every push to Shopify, newest first, with its outcome once settled."""
    settled: dict[str, tuple[RecordedEvent, ShopifyPushSettled]] = {}
    for event in history:
        if isinstance(event.data, ShopifyPushSettled):
            settled[event.data.push_id] = (event, event.data)
    shown = []
    for event in reversed(history):
        push = event.data
        if not isinstance(push, ShopifyPushPlanned):
            continue
        found, outcome = settled.get(push.push_id, (None, None))
        shown.append({"event": event, "time": said_time(event.time), "item": push.inventory_item_id,
                      "location": push.location_id, "quantity": push.quantity, "total": push.total,
                      "drift": push.drift, "outcome": outcome.outcome if outcome else "not settled yet",
                      "detail": outcome.detail if outcome else "", "settled": found})
    return shown
