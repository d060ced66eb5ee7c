"""Whether a delivery may be redriven, and the event that does it: a pure decision over its folded state.

- delivered: refused, there is nothing to redrive;
- its target is disabled (it answered 410 Gone): refused with the reason and how to enable it;
- dead-lettered: ``redrive`` (attempt = attempts made + 1, a fresh retry budget from there);
- a retry scheduled, or the first attempt still queued: ``retry_now`` (the same attempt, due now;
  the budget is unchanged);
- already redriven and its attempt not made yet: nothing to do (a second redrive would only
  enqueue a job the worker skips), said so.

The caller appends the event at the version it read, under ``redrive_key``: the stream and that
version name exactly what is redriven and when it was asked, so a retried request (or two
operators at once) redrives once and gets the original answer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from events.deliveries import RedriveRequested, TargetDisabled
from projections.delivery_status.fold import SUCCESS, DeliveryStatus

Outcome = Literal["redrive", "retry_now", "already", "refused"]


@dataclass(frozen=True)
class RedrivePlan:
    """``event`` to append (None for ``already`` and ``refused``) and, in words, why."""

    delivery_id: str
    outcome: Outcome
    reason: str
    event: RedriveRequested | None = None
    target_url: str | None = None

    def to_dict(self) -> dict[str, object]:
        return {"delivery_id": self.delivery_id, "outcome": self.outcome, "reason": self.reason,
                "attempt": None if self.event is None else self.event.attempt, "target_url": self.target_url}


def redrive_key(stream: str, version: int) -> str:
    """The idempotency key of a redrive of ``stream`` asked when it stood at ``version``."""
    return f"redrive:{stream}@{version}"


def enable_hint(url: str) -> str:
    return f"enable it with `dynafold targets enable {url}`"


def plan_redrive(state: DeliveryStatus, disabled: TargetDisabled | None, *, requested_by: str | None = None,
                 reason: str | None = None) -> RedrivePlan:
    """What a redrive of this delivery does (``state``: its delivery-status fold, never empty)."""
    delivery, url = state.delivery_id, state.target_url
    if state.status == SUCCESS:
        return RedrivePlan(delivery, "refused", f"already delivered at {state.delivered_at} "
                                                f"(attempt {state.attempts}): nothing to redrive", target_url=url)
    if disabled is not None:
        return RedrivePlan(delivery, "refused", f"target disabled after {disabled.reason}; "
                                                f"{enable_hint(disabled.target_url)} first", target_url=url)
    attempt = state.attempts + 1
    if state.redriven_at is not None and state.next_retry_at == state.redriven_at and state.dead_letter_reason is None:
        return RedrivePlan(delivery, "already", f"already redriven at {state.redriven_at}: attempt {attempt} is due "
                                                "now", target_url=url)
    kind: Literal["redrive", "retry_now"] = "redrive" if state.dead_letter_reason is not None else "retry_now"
    event = RedriveRequested(attempt=attempt, kind=kind, previous_status=state.status or "PENDING",
                             dead_letter_reason=state.dead_letter_reason, requested_by=requested_by, reason=reason)
    said = (f"dead-lettered ({state.dead_letter_reason}): attempt {attempt} now, with a fresh retry budget"
            if kind == "redrive" else f"attempt {attempt} now instead of at "
                                      f"{state.next_retry_at or 'its queued time'}; the retry budget is unchanged")
    return RedrivePlan(delivery, kind, said, event, url)
