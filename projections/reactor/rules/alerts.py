"""Which alerts an event calls for: the reactor's alert rules. Pure decisions; the reactor appends what they return.

Each alert's id derives from its cause, so a re-run reactor raises the same alert, and the
cause event id is the append's idempotency key: at-least-once delivery, one alert.
"""

from __future__ import annotations

import uuid

from events.alerts import AlertRaised, AlertRead, AlertType, Severity
from events.deliveries import DeadLettered
from events.envelope import NewEvent, PlannedAppend, RecordedEvent
from events.inventory import ReturnRecorded, ShopifyPushSettled
from events.orders import OrderErrorsNotified
from events.shopify_items import UnmappedLevelReceived
from projections.inventory import InventoryItem, InventoryProjection
from projections.reactor.reaction import Append, Effect, RaiseAlert, Reaction, Rule
from projections.reactor.settings import AlertSettings

_SOURCE = "urn:dynafold:reactor"
_ALERT_NAMESPACE = uuid.UUID("5b0c3c2e-9f5e-4d0e-9a57-2f1d6f0c8a11")


def alert_id(alert_type: str, cause_event_id: str) -> str:
    return str(uuid.uuid5(_ALERT_NAMESPACE, f"{alert_type}:{cause_event_id}"))


def _alert(alert_type: AlertType, severity: Severity, event: RecordedEvent, message: str,
           sku: str | None = None) -> AlertRaised:
    return AlertRaised(
        alert_id=alert_id(alert_type, event.id), alert_type=alert_type, severity=severity,
        subject=event.stream, sku=sku, message=message, cause_event_id=event.id,
    )


def notification_unconfigured_alert(stream: str, notification_id: str, subject: str, reason: str) -> AlertRaised:
    """The order-error notice given as an alert when no email can be sent. Its id derives from the
    notification, so a monitor that retries the notice (a new claim after a crash) raises it once."""
    return AlertRaised(
        alert_id=alert_id("notification_unconfigured", notification_id), alert_type="notification_unconfigured",
        severity="warning", subject=stream, message=f"{subject} (not emailed: {reason})"[:1000],
    )


def _return_damaged(reaction: Reaction) -> list[RaiseAlert]:
    event, data = reaction.event, reaction.data_as(ReturnRecorded)
    if data.disposition == "SELLABLE":
        return []
    return [RaiseAlert(_alert("return_damaged", "warning", event,
                              f"{data.quantity} x {data.sku} returned {data.disposition.lower()}"
                              + (f" (order {data.order_id})" if data.order_id else ""), sku=data.sku))]


def _stock_low(reaction: Reaction) -> list[RaiseAlert]:
    """stock_low fires when available crosses down to the threshold, not on every event below it."""
    before, after = reaction.before, reaction.after
    if _listed_uncounted(after):
        return []  # its 0 is no count: uncounted_sku says so
    limit = reaction.settings.threshold(after.sku)
    first = before.updated_at is None or _listed_uncounted(before)
    if after.available <= limit < before.available or (after.available <= limit and first):
        return [RaiseAlert(_alert("stock_low", "critical" if after.available == 0 else "warning", reaction.event,
                                  f"{after.sku}: {after.available} available (threshold {limit})", sku=after.sku))]
    return []


def _listed_uncounted(state: InventoryItem) -> bool:
    """Shopify lists it, and it was never counted here: its 0 is no count."""
    return state.uncounted and bool(state.shopify_items)


def _reported_uncounted(state: InventoryItem) -> bool:
    """Shopify reported a level of it, and it was never counted here."""
    return state.uncounted and any(item.levels for item in state.shopify_items)


def _delivery_dead_lettered(reaction: Reaction) -> list[RaiseAlert]:
    event, data = reaction.event, reaction.data_as(DeadLettered)
    return [RaiseAlert(_alert("delivery_dead_lettered", "critical", event,
                              f"delivery {event.stream.split(':', 1)[1]} dead-lettered after {data.attempts} "
                              f"attempts: {data.reason}"))]


def _order_errors_notified(reaction: Reaction) -> list[RaiseAlert]:
    event, data = reaction.event, reaction.data_as(OrderErrorsNotified)
    if data.channel == "alert":
        return []  # the notice itself was an alert (notification_unconfigured): saying so twice is noise
    return [RaiseAlert(_alert("order_errors_notified", "info", event,
                              f"order {data.order_id}: {len(data.error_hashes)} error(s) notified by {data.channel}"))]


def _unmapped_item(reaction: Reaction) -> list[RaiseAlert]:
    """One alert per item, not per webhook: the id derives from the item, so later updates of the
    same unmapped item find it raised (the reactor appends it once)."""
    event, data = reaction.event, reaction.data_as(UnmappedLevelReceived)
    return [RaiseAlert(AlertRaised(
        alert_id=alert_id("unmapped_item", data.inventory_item_id), alert_type="unmapped_item",
        severity="warning", subject=event.stream, cause_event_id=event.id,
        message=(f"Shopify inventory item {data.inventory_item_id} has no SKU: its level updates are kept "
                 "but not compared; map it (PUT /shopify/items/{id} or `dynafold shopify map`)")))]


def _uncounted_sku(reaction: Reaction) -> list[Effect]:
    """One alert per SKU, when Shopify first reports a level of a SKU never counted here (its id
    derives from the SKU); marked read, with the reason, once the SKU is counted or adopted."""
    before, after, event = reaction.before, reaction.after, reaction.event
    raised = alert_id("uncounted_sku", after.sku)
    if _reported_uncounted(after) and not _reported_uncounted(before):
        items = ", ".join(f"{item.inventory_item_id} shows {item.available if item.available is not None else '?'}"
                          for item in after.shopify_items)
        return [RaiseAlert(AlertRaised(
            alert_id=raised, alert_type="uncounted_sku", severity="warning", subject=event.stream, sku=after.sku,
            cause_event_id=event.id,
            message=(f"{after.sku}: Shopify lists it (item {items}) but it was never counted here: nothing is "
                     f"pushed for it until it is counted (PUT /inventory/{{sku}}/count) or Shopify's level is "
                     f"adopted (`dynafold shopify adopt --sku {after.sku}`)")[:1000]))]
    if _reported_uncounted(before) and after.counted:
        read = AlertRead(alert_id=raised, read_by=f"dynafold: counted here by {event.id} ({event.type})")
        new = NewEvent("dynafold.alerts.read.v1", read, source=_SOURCE, correlation_id=event.correlation_id,
                       causation_id=event.id)
        return [Append(PlannedAppend(f"alert:{raised}", (new,), f"uncounted-closed:{raised}"), "UncountedSkusCounted")]
    return []


def _push_failed(reaction: Reaction) -> list[RaiseAlert]:
    event, data = reaction.event, reaction.data_as(ShopifyPushSettled)
    if data.outcome != "failed":
        return []
    return [RaiseAlert(_alert("sync_failed", "critical", event,
                              f"{data.sku}: push {data.push_id} to Shopify failed after {data.attempts} "
                              f"attempt(s): {data.detail}", sku=data.sku))]


RULES: tuple[Rule, ...] = (
    Rule("return_damaged", _return_damaged, event_types=(ReturnRecorded,)),
    Rule("stock_low", _stock_low, view=InventoryProjection),
    Rule("unmapped_item", _unmapped_item, event_types=(UnmappedLevelReceived,)),
    Rule("uncounted_sku", _uncounted_sku, view=InventoryProjection),
    Rule("sync_failed", _push_failed, event_types=(ShopifyPushSettled,)),
    Rule("delivery_dead_lettered", _delivery_dead_lettered, event_types=(DeadLettered,)),
    Rule("order_errors_notified", _order_errors_notified, event_types=(OrderErrorsNotified,)),
)


def alerts_for(
    event: RecordedEvent,
    settings: AlertSettings,
    before: InventoryItem | None = None,
    after: InventoryItem | None = None,
) -> list[AlertRaised]:
    """The alerts one event raises (the alert rules, in order). For SKU events, ``before``/``after``
    are the inventory state around it; without them the rules that read it do not run."""
    raised: list[AlertRaised] = []
    for rule in RULES:
        if rule.reacts_to(event) and (rule.view is None or (before is not None and after is not None)):
            reaction = Reaction(event, settings, before=before, after=after)
            raised.extend(effect.alert for effect in rule.plan(reaction) if isinstance(effect, RaiseAlert))
    return raised
