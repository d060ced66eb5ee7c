"""The order error gate's validators (seed 000): a pluggable rule set over an InFlow sales order.

Pure: an order in, its complete current error set out. Each error is identified by a stable hash
of its rule and the thing it is about (a line's product, the order itself), not of its wording,
so a repeated problem keeps its hash (and its grace period) when its message or amounts change.

The inbound order accepts InFlow's camelCase names (``salesOrderId``, ``orderNumber``,
``remarks``, ``lines[].productName`` ...) and our snake_case ones; unknown fields are ignored,
because the order is someone else's document, not one of our events.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any, Literal

from pydantic import AliasChoices, AliasPath, BaseModel, ConfigDict, Field

from events.envelope import NewEvent, PlannedAppend, RecordedEvent, canonical_json
from events.orders import OrderError, OrderValidated

ASSEMBLY_FEE_SKUS = frozenset({"ASSEMBLY-FEE", "ASSEMBLY", "FEE-ASSEMBLY"})


def _alias(*names: str | AliasPath) -> Any:
    return AliasChoices(*names)


class OrderLine(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True, defer_build=True)

    line_id: str | None = Field(default=None, validation_alias=_alias("line_id", "salesOrderLineId"))
    sku: str = Field(default="", validation_alias=_alias("sku", "productSku", AliasPath("product", "sku")))
    name: str = Field(default="", validation_alias=_alias("name", "productName", AliasPath("product", "name"),
                                                          "description"))
    quantity: Decimal = Field(default=Decimal(1), validation_alias=_alias("quantity", "standardQuantity"))
    unit_price: Decimal = Field(default=Decimal(0), validation_alias=_alias("unit_price", "unitPrice"))
    discount_percent: Decimal = Field(default=Decimal(0), ge=0, le=100,
                                      validation_alias=_alias("discount_percent", "discountPercent", "discount"))
    requires_assembly: bool = Field(default=False, validation_alias=_alias("requires_assembly", "requiresAssembly"))

    @property
    def label(self) -> str:
        return self.sku or self.name or self.line_id or "?"


class Order(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True, defer_build=True)

    order_id: str = Field(min_length=1, max_length=200, validation_alias=_alias("order_id", "salesOrderId", "id"))
    order_number: str = Field(default="", max_length=200, validation_alias=_alias("order_number", "orderNumber"))
    # Whose order (inFlow's customerId): the data subject its remarks belong to. The customer's
    # name, email and addresses are not kept at all (unknown fields are ignored).
    customer_id: str | None = Field(default=None, min_length=1, max_length=200, pattern=r"^[^\x00-\x1f]+$",
                                    validation_alias=_alias("customer_id", "customerId"))
    remarks: str = Field(default="", validation_alias=_alias("remarks", "orderRemarks"))
    is_return: bool = Field(default=False, validation_alias=_alias("is_return", "isReturn"))
    return_reason: str = Field(default="", validation_alias=_alias("return_reason", "returnReason"))
    lines: tuple[OrderLine, ...] = Field(default=(), max_length=1000)


Rule = Callable[[Order], Iterable[OrderError]]


def error_hash(rule: str, subject: Mapping[str, Any]) -> str:
    """Stable identity of one problem: the rule and what it is about (never its wording)."""
    return hashlib.sha256(canonical_json({"rule": rule, "subject": subject}).encode()).hexdigest()[:16]


def _error(rule: str, subject: Mapping[str, Any], message: str, details: Mapping[str, Any],
           severity: Literal["error", "warning"] = "error") -> OrderError:
    return OrderError(error_hash=error_hash(rule, subject), rule=rule, severity=severity,
                      message=message, details=dict(details))


def _is_tuk(line: OrderLine) -> bool:
    return line.sku.upper().startswith("TUK") or line.name.upper().startswith("TUK")


def _is_assembly_fee(line: OrderLine) -> bool:
    return line.sku.upper() in ASSEMBLY_FEE_SKUS or "assembly fee" in line.name.lower()


def order_data_present(order: Order) -> Iterable[OrderError]:
    missing = [name for name, present in (("order number", order.order_number), ("lines", order.lines)) if not present]
    if missing:
        yield _error("order_data_present", {}, f"Order data incomplete: no {' and no '.join(missing)}",
                     {"missing": missing})


def discount_on_tuk_item(order: Order) -> Iterable[OrderError]:
    for line in order.lines:
        if _is_tuk(line) and line.discount_percent > 0:
            yield _error("discount_on_tuk_item", {"item": line.label},
                         f"TUK item {line.label} has {format(line.discount_percent.normalize(), 'f')}% discount",
                         {"item": line.label, "discount_percent": float(line.discount_percent)})


def assembly_fee(order: Order) -> Iterable[OrderError]:
    needing = sorted({line.label for line in order.lines if line.requires_assembly})
    if needing and not any(_is_assembly_fee(line) for line in order.lines):
        yield _error("assembly_fee", {}, f"Assembly fee missing for {', '.join(needing)}", {"items": needing})


def discount_remark(order: Order) -> Iterable[OrderError]:
    discounted = sorted({line.label for line in order.lines if line.discount_percent > 0})
    if discounted and not order.remarks.strip():
        yield _error("discount_remark", {}, "Discounted order has no discount remark", {"items": discounted})


def return_reason(order: Order) -> Iterable[OrderError]:
    returning = order.is_return or any(line.quantity < 0 for line in order.lines)
    if returning and not order.return_reason.strip():
        yield _error("return_reason", {}, "Return has no return reason", {})


DEFAULT_RULES: Mapping[str, Rule] = {
    "order_data_present": order_data_present,
    "discount_on_tuk_item": discount_on_tuk_item,
    "assembly_fee": assembly_fee,
    "discount_remark": discount_remark,
    "return_reason": return_reason,
}


def rule_set(disabled: Sequence[str] = ()) -> tuple[Rule, ...]:
    """The default rules minus the disabled ones (seed 000 deactivated a validator in production)."""
    unknown = set(disabled) - set(DEFAULT_RULES)
    if unknown:
        raise ValueError(f"unknown order rule(s) {', '.join(sorted(unknown))}; known: {', '.join(DEFAULT_RULES)}")
    return tuple(rule for name, rule in DEFAULT_RULES.items() if name not in disabled)


def validate_order(order: Order, rules: Sequence[Rule] = tuple(DEFAULT_RULES.values())) -> tuple[OrderError, ...]:
    """The order's complete current error set, one error per hash, sorted by hash."""
    errors = {error.error_hash: error for rule in rules for error in rule(order)}
    return tuple(errors[h] for h in sorted(errors))


def inflow_validation(stream: str, history: Sequence[RecordedEvent], event: NewEvent, delivery_id: str | None,
                      body: bytes) -> PlannedAppend | RecordedEvent:
    """The append an InFlow order webhook asks for, or the recorded event it repeats.

    With InFlow's delivery id, that id is the idempotency key: a retried delivery gets the original
    answer. Without one, the body alone cannot be the key: an order that goes BAD -> FIXED -> BAD
    sends the first body again, and deduplicating it would swallow a state change (issue 12
    defect 4). So: if the latest validation in ``history`` already says exactly this (same order,
    same errors), nothing changed and that recorded event is the answer; otherwise the key is the
    body's hash *at the stream's current version*, and the caller appends at that version, so two
    identical deliveries racing append once and a later repeat after a change appends again.

    Returns a ``PlannedAppend`` or the ``RecordedEvent`` that already records this state.
    """
    if delivery_id:
        return PlannedAppend(stream, (event,), f"inflow:{delivery_id}")
    latest = next((e for e in reversed(history) if isinstance(e.data, OrderValidated)), None)
    wanted = event.data.model_dump(mode="json") if isinstance(event.data, BaseModel) else dict(event.data)
    if latest is not None and latest.data.model_dump(mode="json") == wanted:
        return latest
    version = history[-1].version if history else 0
    return PlannedAppend(stream, (event,), f"inflow:{hashlib.sha256(body).hexdigest()}@{version}")
