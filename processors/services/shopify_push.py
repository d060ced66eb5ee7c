"""The reactor's Shopify push effect (issue 11 §5): carry out a planned push through the Admin API, once.

``projections/reactor/rules/shopify_sync.py`` decides a push (``shopify push`` on the SKU's stream); when the
reactor sees that event it calls this effect, which sets the level with ``inventorySetQuantities``
(compare-and-set). On a compare mismatch it reads the level and decides again: done if Shopify
holds our value, else set it over the level read; the outcome is appended as ``shopify push settled``
under a key per push, so a redelivered record finds the push settled and sends nothing.
Rebuilds read the table, not the stream, so they never push.

Left open: a crash after Shopify applied the push but before the outcome was appended sends it
again; compare-and-set then finds Shopify holding our value (``already_applied``) unless a sale
moved it in between, which is then overwritten and re-pushed as any overwritten sale is.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

from events.envelope import NewEvent, RecordedEvent
from events.inventory import ShopifyPushPlanned, ShopifyPushSettled
from events.shopify_admin import Applied, CompareStale, Level, Refused
from events.ports import EventLog
from events.store import ANY
from processors.adapters.shopify_admin import ShopifyAdminClient
from processors.telemetry.logs import make_logger

SOURCE = "urn:dynafold:reactor"
SETTLED_TYPE = "dynafold.inventory.shopify_push_settled.v1"
MAX_ROUNDS = 3  # compare mismatches re-decided before giving up (Shopify keeps moving under us)
logger = make_logger("reactor", child=True)
Outcome = Literal["applied", "already_applied", "failed"]


def settled_key(push_id: str) -> str:
    return f"shopify-push-settled:{push_id}"


class ShopifyPusher:
    def __init__(self, store: EventLog, client: Callable[[], ShopifyAdminClient]) -> None:
        self._store = store
        self._client = client  # built on first push: the token is read only when needed

    def __call__(self, event: RecordedEvent) -> ShopifyPushSettled | None:
        push = event.data
        if not isinstance(push, ShopifyPushPlanned):
            return None
        key = settled_key(push.push_id)
        if self._store.recorded_streams(key) is not None:
            return None  # settled before: a redelivered record
        settled = self.push(push)
        new = NewEvent(SETTLED_TYPE, settled, source=SOURCE, correlation_id=event.correlation_id, causation_id=event.id)
        self._store.append(event.stream, [new], ANY, idempotency_key=key)
        logger.info("shopify push settled", extra={"sku": push.sku, "push_id": push.push_id,
                                                   "outcome": settled.outcome, "quantity": settled.quantity,
                                                   "attempts": settled.attempts})
        return settled

    def push(self, push: ShopifyPushPlanned) -> ShopifyPushSettled:
        client = self._client()
        quantity, compare = push.quantity, push.compare_quantity

        def settled(outcome: Outcome, attempts: int, detail: str = "", value: int | None = None) -> ShopifyPushSettled:
            return ShopifyPushSettled(sku=push.sku, push_id=push.push_id, outcome=outcome,
                                      quantity=value, attempts=attempts, detail=detail)

        for attempt in range(1, MAX_ROUNDS + 1):
            answer = client.set_available(push.push_id, push.inventory_item_id, push.location_id, quantity, compare)
            if isinstance(answer, Applied):
                return settled("applied", attempt, value=quantity)
            if not isinstance(answer, CompareStale):  # Refused (the client waits throttles out)
                return settled("failed", attempt, _reason(answer))
            level = client.available_at(push.inventory_item_id, push.location_id)
            if not isinstance(level, Level):
                return settled("failed", attempt, f"compare mismatch, then reading the level: {_reason(level)}")
            if level.available is None:
                return settled("failed", attempt, f"the item is not stocked at location {push.location_id}")
            if level.available == quantity:
                return settled("already_applied", attempt, value=quantity)
            # Shopify moved since we looked (a sale, a refund, an edit): our count is the truth, so
            # set it over the level now there. A sale overwritten this way comes back as its
            # orders/create webhook, which lowers our count and (made before this push) is pushed
            # again (projections/reactor/rules/shopify_sync.py ``_overwritten``), so it is never lost.
            compare = level.available
        return settled("failed", MAX_ROUNDS, f"Shopify's level kept changing under {MAX_ROUNDS} compare-and-sets")


def _reason(answer: object) -> str:
    return answer.reason if isinstance(answer, Refused) else type(answer).__name__
