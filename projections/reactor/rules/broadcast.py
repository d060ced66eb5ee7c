"""When to push stock to the storefront (seed 004). A pure decision; the reactor appends what it returns.

When a SKU's available count changes, the storefront must learn the new count: the reactor
appends ``stock broadcast`` (with a tx id) to the SKU's stream and submits a message carrying the
count and the tx id to the storefront endpoint, which the delivery worker delivers with retries.
The storefront's echo carries that tx id back and is ignored, and a broadcast itself never
changes the available count, so there is no loop.

The tx id derives from the cause event, so a re-run reactor plans the same appends and their
idempotency keys make them land once.
"""

from __future__ import annotations

import uuid

from events.deliveries import MessageReceived
from events.envelope import NewEvent, PlannedAppend, RecordedEvent
from events.idempotency_keys import broadcast_key, message_key
from events.inventory import StockBroadcast
from projections.inventory import InventoryItem, InventoryProjection
from projections.reactor.reaction import Append, Reaction, Rule

BROADCAST_SENDER = "dynafold-inventory"
SOURCE = "urn:dynafold:reactor"
_TX_NAMESPACE = uuid.UUID("0f5b8c1e-2d3a-4e6f-9a7b-1c2d3e4f5a6b")


def tx_id_for(cause_event_id: str) -> str:
    return "tx-" + str(uuid.uuid5(_TX_NAMESPACE, cause_event_id))


def plan_broadcast(cause: RecordedEvent, before: InventoryItem, after: InventoryItem,
                   storefront_url: str | None) -> list[PlannedAppend]:
    if not storefront_url or isinstance(cause.data, StockBroadcast) or after.available == before.available:
        return []
    tx_id = tx_id_for(cause.id)

    def event(event_type: str, data: StockBroadcast | MessageReceived) -> NewEvent:
        return NewEvent(event_type, data, source=SOURCE, correlation_id=cause.correlation_id, causation_id=cause.id)

    broadcast = StockBroadcast(sku=after.sku, count=after.available, tx_id=tx_id)
    message = MessageReceived(sender_id=BROADCAST_SENDER, message_id=tx_id, target_url=storefront_url,
                              payload={"sku": after.sku, "available": after.available, "tx_id": tx_id})
    return [
        PlannedAppend(cause.stream, (event("dynafold.inventory.stock_broadcast.v1", broadcast),), broadcast_key(tx_id)),
        PlannedAppend(f"delivery:{BROADCAST_SENDER}:{tx_id}",
                      (event("dynafold.delivery.message_received.v1", message),),
                      message_key(BROADCAST_SENDER, tx_id)),
    ]


def _broadcast(reaction: Reaction) -> list[Append]:
    """Push a changed available count to the storefront: a broadcast on the SKU's stream (counted as
    StockBroadcasts) and a message for the delivery worker."""
    plans = plan_broadcast(reaction.event, reaction.before, reaction.after, reaction.storefront_url)
    return [Append(plan, "StockBroadcasts" if plan.stream == reaction.event.stream else None) for plan in plans]


RULES: tuple[Rule, ...] = (Rule("stock_broadcast", _broadcast, view=InventoryProjection),)
