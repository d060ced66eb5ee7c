"""The base every event-data model shares: strict about unknown fields, immutable."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, ValidationError


class EventData(BaseModel):
    # extra="forbid": a misspelt field is an error naming that field, never silently dropped.
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


def first_problem(error: ValidationError) -> tuple[str, str]:
    """(field path, reason) of the error worth reporting first, naming a few others after it.

    An unknown field is usually a misspelling that also explains the "missing" one: it comes first.
    The path is "" when the problem is with the whole document.
    """
    problems = sorted(error.errors(), key=lambda e: e["type"] != "extra_forbidden")
    first = problems[0]
    field = ".".join(str(p) for p in first["loc"])
    reason = "unknown field (not in the schema)" if first["type"] == "extra_forbidden" else first["msg"]
    others = [".".join(str(p) for p in e["loc"]) for e in problems[1:4]]
    if others:
        reason += f" (also: {', '.join(others)})"
    return field, reason
