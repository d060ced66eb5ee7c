"""Erasure and data requests (GDPR; Shopify's mandatory privacy webhooks). Pure.

None of these events holds personal data: a subject is a pseudonymous id (``inflow-customer:C-1``),
and a reason is the operator's words about the request, not about the person.

- ``subject forgotten`` (stream ``subject:<subject>``): the subject's key was destroyed, so every
  value sealed with it reads ``[erased]`` from now on, in the log and in every copy of it.
- ``values erased`` (in each stream whose view rows kept the subject's values): the projector
  refolds that stream's rows from the log, where those values are now ``[erased]``. Appended
  after the key is gone, it reaches the rows in stream order, so no row keeps a value afterwards.
- ``data requested``: someone asked for the subject's data (Shopify's ``customers/data_request``);
  the reactor raises a ``data_request`` alert telling the operator how to export it.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, Field

from events.personal import check_subject
from events.schema_base import EventData

SUBJECT_CATEGORY = "subject"
Subject = Annotated[str, Field(min_length=3, max_length=512), AfterValidator(check_subject)]
Requester = Literal["cli", "admin api", "shopify customers/redact", "shopify shop/redact",
                    "shopify customers/data_request"]


def subject_stream(subject: str) -> str:
    return f"{SUBJECT_CATEGORY}:{subject}"


class SubjectForgotten(EventData):
    subject: Subject
    reason: str = Field(min_length=1, max_length=500)
    requested_by: Requester
    key_id: str | None = Field(default=None, description="the destroyed key's id; none: the subject had no key")
    streams: tuple[str, ...] = Field(default=(), description="the streams holding values sealed for the subject")
    request_ref: str | None = Field(default=None, max_length=200, description="the request's own id (Shopify's)")


class ValuesErased(EventData):
    subject: Subject


class DataRequested(EventData):
    subject: Subject
    requested_by: Requester
    request_ref: str | None = Field(default=None, max_length=200, description="Shopify's data_request id")
    orders_requested: tuple[str, ...] = Field(default=(), max_length=10_000)
