"""The one catalogue of event types: type name -> data model, stream category, upcasters.

A type on the wire is ``dynafold.<name>.v<N>`` (e.g. ``dynafold.inventory.stock_adjusted.v2``).
Only the current version of each name may be appended; older versions that are already in the
log are upcast on read by a chain of registered functions, never rewritten.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError

from events import alerts, deliveries, inventory, orders, privacy, shopify_items
from events.errors import InvalidEventData, InvalidStreamId, UnknownEventType
from events.personal import personal_fields
from events.schema_base import first_problem

TYPE_PREFIX = "dynafold."
_TYPE_RE = re.compile(r"^dynafold\.(?P<name>[a-z_]+\.[a-z_]+)\.v(?P<version>[1-9][0-9]*)$")
MAX_STREAM_KEY_CHARS = 512  # the key after "<category>:"; DynamoDB's byte limits are checked on append
_STREAM_RE = re.compile(rf"^(?P<category>[a-z]+):(?P<key>[^\x00-\x1f]{{1,{MAX_STREAM_KEY_CHARS}}})$")

Upcaster = Callable[[dict[str, Any]], dict[str, Any]]
ANY_CATEGORY = "*"  # a type that may be appended to a stream of any category


@dataclass(frozen=True, slots=True)
class EventType:
    """One appendable event type: its current version, model and the stream category it lives in."""

    name: str
    version: int
    model: type[BaseModel]
    category: str
    description: str

    @property
    def type(self) -> str:
        return f"{TYPE_PREFIX}{self.name}.v{self.version}"


_CATALOGUE: tuple[EventType, ...] = (
    EventType("orders.validated", 1, orders.OrderValidated, "order",
              "An order was (re-)validated; carries its complete current error set."),
    EventType("orders.errors_notified", 1, orders.OrderErrorsNotified, "order",
              "The one email for an order's expired errors was sent."),
    EventType("orders.notification_claimed", 1, orders.NotificationClaimed, "order",
              "An error monitor claimed the one email for an order's expired errors."),
    EventType("orders.notification_failed", 1, orders.NotificationFailed, "order",
              "A claimed email could not be sent; the next monitor run retries it."),
    EventType("delivery.message_received", 1, deliveries.MessageReceived, "delivery",
              "A sender submitted a message for webhook delivery."),
    EventType("delivery.attempted", 1, deliveries.DeliveryAttempted, "delivery",
              "One HTTP delivery attempt and its classified outcome."),
    EventType("delivery.retry_scheduled", 1, deliveries.RetryScheduled, "delivery",
              "A failed delivery will be retried after an exponential, jittered delay."),
    EventType("delivery.succeeded", 1, deliveries.DeliverySucceeded, "delivery",
              "The target acknowledged the message with a 2xx."),
    EventType("delivery.dead_lettered", 1, deliveries.DeadLettered, "delivery",
              "Delivery gave up (MAX_RETRIES_EXCEEDED or a permanent failure)."),
    EventType("delivery.redrive_requested", 1, deliveries.RedriveRequested, "delivery",
              "An operator redrove a dead-lettered delivery (a fresh retry budget) or asked a scheduled retry "
              "to run now."),
    EventType("delivery.target_disabled", 1, deliveries.TargetDisabled, "target",
              "A webhook target answered 410 Gone: later deliveries to it dead-letter without a request."),
    EventType("delivery.target_enabled", 1, deliveries.TargetEnabled, "target",
              "An operator re-enabled a disabled webhook target."),
    EventType("inventory.physical_count_set", 1, inventory.PhysicalCountSet, "sku",
              "The physical count of a SKU was set (stock take or storefront level)."),
    EventType("inventory.stock_adjusted", 2, inventory.StockAdjusted, "sku",
              "The physical count changed by a delta (order, restock, correction)."),
    EventType("inventory.buffer_set", 1, inventory.BufferSet, "sku",
              "The safety buffer held back from the storefront was set."),
    EventType("inventory.return_recorded", 1, inventory.ReturnRecorded, "sku",
              "A customer return with its disposition; sellable returns restock."),
    EventType("inventory.stock_broadcast", 1, inventory.StockBroadcast, "sku",
              "The available count was pushed to the storefront with a tx id."),
    EventType("inventory.shopify_level", 1, inventory.ShopifyLevelReported, "sku",
              "Shopify reported an inventory level (available at one location) for the SKU's item."),
    EventType("inventory.shopify_push", 1, inventory.ShopifyPushPlanned, "sku",
              "Shopify's available at a location is set to our count (inventorySetQuantities, compare-and-set)."),
    EventType("inventory.shopify_push_settled", 1, inventory.ShopifyPushSettled, "sku",
              "A push to Shopify was applied (with the quantity Shopify now holds), found applied, or failed."),
    EventType("inventory.shopify_item_linked", 1, inventory.ShopifyItemLinked, "sku",
              "A Shopify inventory item was mapped to the SKU: one more listing of its stock pool."),
    EventType("inventory.shopify_item_unlinked", 1, inventory.ShopifyItemUnlinked, "sku",
              "A Shopify inventory item no longer names the SKU: it is no longer pushed."),
    EventType("inventory.shopify_count_adopted", 1, inventory.ShopifyCountAdopted, "sku",
              "A SKU never counted here took Shopify's level as its initial physical count (onboarding)."),
    EventType("shopify.item_mapped", 1, shopify_items.ItemMapped, "shopifyitem",
              "A Shopify inventory item (and variant) is known to be this SKU."),
    EventType("shopify.item_unmapped", 1, shopify_items.ItemUnmapped, "shopifyitem",
              "A Shopify inventory item was deleted: it no longer names a SKU."),
    EventType("shopify.unmapped_level", 1, shopify_items.UnmappedLevelReceived, "shopifyitem",
              "A level update for an inventory item with no SKU yet: kept, counted and alerted once."),
    EventType("alerts.raised", 1, alerts.AlertRaised, "alert",
              "An alert with type and severity was raised."),
    EventType("alerts.read", 1, alerts.AlertRead, "alert",
              "An alert was marked read."),
    EventType("privacy.subject_forgotten", 1, privacy.SubjectForgotten, privacy.SUBJECT_CATEGORY,
              "A data subject's key was destroyed: every value sealed with it now reads [erased]."),
    EventType("privacy.values_erased", 1, privacy.ValuesErased, ANY_CATEGORY,
              "This stream held values of a forgotten subject: its view rows are refolded from the log."),
    EventType("privacy.data_requested", 1, privacy.DataRequested, privacy.SUBJECT_CATEGORY,
              "A data subject's data was requested (Shopify customers/data_request): the operator exports it."),
)

CURRENT: Mapping[str, EventType] = {t.name: t for t in _CATALOGUE}
BY_TYPE: Mapping[str, EventType] = {t.type: t for t in _CATALOGUE}
CATEGORIES: frozenset[str] = frozenset(t.category for t in _CATALOGUE) - {ANY_CATEGORY}


def belongs(spec: EventType, category: str) -> bool:
    """Whether events of ``spec`` may be appended to a stream of ``category``."""
    return spec.category in (category, ANY_CATEGORY)


def _stock_adjusted_v1_to_v2(data: dict[str, Any]) -> dict[str, Any]:
    # Phase 1-2 imports carried a bare signed change and no provenance.
    return {"sku": data["sku"], "delta": data["quantity_change"], "reason": "unspecified"}


# (name, from_version) -> function producing the data of from_version + 1.
UPCASTERS: Mapping[tuple[str, int], Upcaster] = {
    ("inventory.stock_adjusted", 1): _stock_adjusted_v1_to_v2,
}
# Old versions still readable, with the model their stored data had (used to check history).
LEGACY_MODELS: Mapping[tuple[str, int], type[BaseModel]] = {
    ("inventory.stock_adjusted", 1): inventory.StockAdjustedV1,
}


def type_name(event_type: str) -> str:
    """The catalogue name of a wire type (``dynafold.inventory.stock_adjusted.v2`` -> ``inventory.stock_adjusted``)."""
    return split_type(event_type)[0]


def split_type(event_type: str) -> tuple[str, int]:
    match = _TYPE_RE.match(event_type)
    if not match or match["name"] not in CURRENT:
        raise UnknownEventType(event_type)
    return match["name"], int(match["version"])


def resolve(event_type: str) -> EventType:
    """The current type for a wire type name; only current versions may be appended."""
    spec = BY_TYPE.get(event_type)
    if spec is None:
        name, version = split_type(event_type)
        current = CURRENT[name]
        raise UnknownEventType(
            event_type if version > current.version else f"{event_type} (old version; append {current.type})"
        )
    return spec


def check_category(category: str) -> str:
    """``category`` if some event type lives in it; InvalidStreamId naming the known ones otherwise."""
    if category not in CATEGORIES:
        raise InvalidStreamId(f"unknown stream category {category[:80]!r} (one of {', '.join(sorted(CATEGORIES))})")
    return category


def stream_category(stream: str) -> str:
    match = _STREAM_RE.match(stream)
    if not match or match["category"] not in CATEGORIES:
        raise InvalidStreamId(
            f"invalid stream id {stream!r}: expected '<category>:<key>' with category one of "
            f"{', '.join(sorted(CATEGORIES))}"
        )
    return match["category"]


def _first_error(event_type: str, error: ValidationError) -> InvalidEventData:
    field, reason = first_problem(error)
    return InvalidEventData(event_type, field or "<data>", reason)


def validate(event_type: str, data: Mapping[str, Any] | BaseModel) -> BaseModel:
    """Validate new data for appending: the type must be current, the data must fit its model."""
    spec = resolve(event_type)
    if isinstance(data, spec.model):
        return data
    if isinstance(data, BaseModel):
        data = data.model_dump(mode="json")
    if not isinstance(data, Mapping):
        raise InvalidEventData(event_type, "<data>", "must be a JSON object")
    try:
        return spec.model.model_validate(data)
    except ValidationError as error:
        raise _first_error(event_type, error) from None


def decode(event_type: str, data_json: str) -> tuple[str, BaseModel]:
    """Decode stored data into the current model, upcasting old versions. Returns (current type, data)."""
    spec = BY_TYPE.get(event_type)
    try:
        if spec is not None:
            return event_type, spec.model.model_validate_json(data_json)
        name, version = split_type(event_type)
        current = CURRENT[name]
        if version > current.version:
            raise UnknownEventType(event_type)
        data: dict[str, Any] = json.loads(data_json)
        for step in range(version, current.version):
            data = UPCASTERS[(name, step)](data)
        return current.type, current.model.model_validate(data)
    except ValidationError as error:
        raise _first_error(event_type, error) from None


def json_schemas() -> list[dict[str, Any]]:
    """Every appendable type with its JSON Schema, for `dynafold types` and other services."""
    return [
        {
            "type": spec.type,
            "stream": f"{'<any category>' if spec.category == ANY_CATEGORY else spec.category}:<key>",
            "description": spec.description,
            "personal": {name: list(marker.subjects) for name, marker in personal_fields(spec.model).items()},
            "schema": spec.model.model_json_schema(),
        }
        for spec in _CATALOGUE
    ]


def stored_types() -> list[str]:
    """Every type the log may hold: the current ones and the old versions still upcast on read."""
    legacy = [f"{TYPE_PREFIX}{name}.v{version}" for name, version in LEGACY_MODELS]
    return sorted({*BY_TYPE, *legacy})
