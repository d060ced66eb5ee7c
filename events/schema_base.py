"""The base every event-data model shares: strict about unknown fields, immutable."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class EventData(BaseModel):
    # extra="forbid": a misspelt field is an error naming that field, never silently dropped.
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)
