"""Order error gate (seed 000): validation results and the one notification."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field

from events.personal import Personal, PersonalDict
from events.schema_base import EventData


class OrderError(EventData):
    error_hash: str = Field(min_length=1, description="stable hash of rule + detail")
    rule: str = Field(min_length=1)
    severity: Literal["error", "warning"] = "error"
    message: str
    details: dict[str, Any] = Field(default_factory=dict)


class OrderValidated(EventData):
    """The complete current error set of an order after (re-)validation; empty = clean."""

    order_id: str = Field(min_length=1)
    order_number: str = ""
    errors: tuple[OrderError, ...] = ()
    # The order as validated: its remarks and return reason are free text about people.
    order: Annotated[PersonalDict, Personal("inflow-customer:{customer_id}", "inflow-order:{order_id}")] = Field(
        default_factory=dict, description="the order as validated")
    customer_id: str | None = Field(default=None, max_length=200, description="InFlow's customerId: whose order")


# how the one notice went out ("alert": no email configured)
NotificationChannel = Literal["email", "sns", "outbox", "alert"]


class OrderErrorsNotified(EventData):
    """The one email for these errors was sent; they leave the pending view."""

    order_id: str = Field(min_length=1)
    error_hashes: tuple[str, ...] = Field(min_length=1)
    # "alert": no email settings, the notice was a notification_unconfigured alert (message_ref = its
    # alert id). A new value only widens the type, so every event recorded before still validates.
    channel: NotificationChannel = "email"
    message_ref: str | None = Field(default=None, description="provider's id of the sent message")
    notification_id: str | None = Field(default=None, description="the claim this send completed")


class NotificationClaimed(EventData):
    """A monitor took on sending the one email for these expired errors.

    Appended at the order stream's version the monitor read, so of two monitors that read the
    same state only one can claim: the other's append conflicts and it sends nothing.
    """

    order_id: str = Field(min_length=1)
    notification_id: str = Field(min_length=1, description="stable per (order, error set)")
    error_hashes: tuple[str, ...] = Field(min_length=1)
    attempt: int = Field(ge=1)
    lease_seconds: int = Field(gt=0, description="after this, an unfinished claim may be taken over")


class NotificationFailed(EventData):
    """The claimed send failed; the next monitor run retries it."""

    order_id: str = Field(min_length=1)
    notification_id: str = Field(min_length=1)
    attempt: int = Field(ge=1)
    error: str
