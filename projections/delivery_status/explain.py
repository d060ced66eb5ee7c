""""Did this webhook get delivered? When is the next retry, how many retries are left, when does it
give up?": the answer, built purely from the delivery's history, its target's state and the retry
policy (``events.delivery_policy``: the schedule the worker follows).

The four questions are always answered, in that order, whatever the delivery's state; the attempts
follow in time order, with what each one got back and what was decided after it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from events.deliveries import (
    DeadLettered, DeliveryAttempted, DeliverySucceeded, MessageReceived, RedriveRequested, RetryScheduled,
    TargetDisabled,
)
from events.delivery_policy import MAX_RETRIES_EXCEEDED, RetryOutlook, RetryPolicy, retry_outlook
from events.envelope import RecordedEvent, format_time
from projections.delivery_status.fold import PENDING, RETRY_SCHEDULED, SUCCESS, DeliveryStatus, DeliveryStatusProjection
from projections.delivery_status.redrive import enable_hint
from projections.explanation import Explanation, Section, said_duration, said_relative, said_time
from projections.view import stream_key

QUESTION = "Did this webhook get delivered? When is the next retry, how many retries are left, when does it give up?"


def explain_delivery(history: Sequence[RecordedEvent], disabled: TargetDisabled | None, policy: RetryPolicy,
                     timeout_seconds: float, now: datetime) -> Explanation:
    """``history``: the delivery stream's events (never empty); ``disabled``: its target's state."""
    stream = history[0].stream
    state = DeliveryStatusProjection.fold(stream_key(stream), list(history))
    outlook = _outlook(state, policy, timeout_seconds)
    redrive = f"`dynafold deliveries redrive {state.delivery_id}`"
    four = _four_answers(state, outlook, disabled, redrive, now)
    sections = [Section("Delivered? Next retry? Retries left? Gives up?", four),
                Section("What happened", tuple(_story(history))),
                Section("Retry policy", (_policy(policy, timeout_seconds),))]
    if disabled is not None:
        sections.append(Section("Target", (f"{state.target_url} is disabled after {disabled.reason}: every delivery to "
                                           f"it dead-letters without a request; {enable_hint(disabled.target_url)}.",)))
    return Explanation(QUESTION, stream, four[0], tuple(sections), _facts(state, outlook, disabled, policy,
                                                                           timeout_seconds),
                       tuple(event.id for event in history))


def _outlook(state: DeliveryStatus, policy: RetryPolicy, timeout_seconds: float) -> RetryOutlook | None:
    """From the attempt the delivery waits for, when it is still trying (else None)."""
    if state.status == RETRY_SCHEDULED and state.next_retry_at:
        due = state.next_retry_at
    elif state.status == PENDING and state.created_at:
        due = state.created_at
    else:
        return None
    awaited = state.attempts + 1
    if awaited > state.round_start + policy.max_retries:  # scheduled under a larger budget than today's
        return None
    return retry_outlook(policy, timeout_seconds, awaited_attempt=awaited, due_at=datetime.fromisoformat(due),
                         round_start=state.round_start)


def _four_answers(state: DeliveryStatus, outlook: RetryOutlook | None, disabled: TargetDisabled | None,
                  redrive: str, now: datetime) -> tuple[str, str, str, str]:
    target = state.target_url
    if state.status == SUCCESS and state.delivered_at:
        code = state.last_result.status_code if state.last_result else None
        return (f"Yes: delivered to {target} at {said_time(state.delivered_at)} on attempt {state.attempts}"
                + (f" (HTTP {code})." if code else "."),
                "Next retry: none, it was delivered.",
                "Retries left: none needed.",
                "Gives up: never, it was delivered.")
    if state.dead_letter_reason is not None:
        gave_up = said_time(state.updated_at) if state.updated_at else "an unknown time"
        why = ("every retry failed" if state.dead_letter_reason == MAX_RETRIES_EXCEEDED
               else "the failure is permanent, so it was not retried")
        hint = (f"{enable_hint(disabled.target_url)}, then redrive it with {redrive}" if disabled is not None
                else f"redrive it with {redrive} for a fresh round of retries")
        return (f"No: it was dead-lettered at {gave_up} after {state.attempts} attempt(s), {why} "
                f"({state.dead_letter_reason}).",
                f"Next retry: none; {hint}.",
                "Retries left: none.",
                f"Gives up: it already gave up, at {gave_up}.")
    if outlook is None:  # FAILED between an attempt and its outcome, or a budget changed since
        return (f"Not yet: attempt {state.attempts} failed and no retry is scheduled (status {state.status}).",
                f"Next retry: none scheduled; {redrive} asks for one now.",
                "Retries left: unknown under the current policy.",
                "Gives up: when the worker records the next outcome.")
    awaited, due = outlook.awaited_attempt, outlook.give_up_earliest
    if state.status == PENDING:
        first = f"Not yet: the first attempt was queued at {said_time(due)} and has not been recorded."
        next_retry = f"Next retry: only if attempt 1 fails; it is due now (queued {said_relative(due, now)})."
    else:
        first = f"Not yet: {_last_failure(state)}."
        if state.redriven_at and state.next_retry_at == state.redriven_at:
            first += f" It was redriven at {said_time(state.redriven_at)}."
        next_retry = f"Next retry: attempt {awaited} at {said_time(due)} ({said_relative(due, now)})."
    span = (f"attempts {awaited} to {outlook.last_attempt}" if outlook.attempts_left > 1
            else f"attempt {awaited} is the last")
    budget = ("counted from attempt 1" if state.round_start == 1
              else f"counted afresh from attempt {state.round_start}, the redrive's")
    budget_size = outlook.last_attempt - state.round_start  # the policy's max_retries when the round began
    left = f"Retries left: {outlook.retries_left} ({span}; the budget of {budget_size} retries is {budget})."
    gives_up = (f"Gives up: if attempt {outlook.last_attempt} fails too, at the latest by "
                f"{said_time(outlook.give_up_latest)}; the delays are jittered, so it may be as early as "
                f"{said_time(outlook.give_up_earliest)}, and a target that sends Retry-After can stretch it to "
                f"{said_time(outlook.give_up_latest_with_retry_after)}.")
    return first, next_retry, left, gives_up


def _last_failure(state: DeliveryStatus) -> str:
    last = state.last_result
    if last is None or not state.attempts:
        return "a retry is scheduled"
    return (f"attempt {state.attempts} failed at {said_time(last.time)} with "
            f"{_outcome_words(last.status_code, last.category, last.error)}")


def _outcome_words(status_code: int | None, category: str, error: str | None) -> str:
    if category == "REFUSED":
        return f"no request sent ({error})"
    if status_code is not None:
        return f"HTTP {status_code} ({category})"
    return f"{category.lower().replace('_', ' ')}" + (f" ({error})" if error else "")


def _story(history: Sequence[RecordedEvent]) -> list[str]:
    """One sentence per event, in time order."""
    said: list[str] = []
    for event in history:
        data, at = event.data, said_time(event.time)
        if isinstance(data, MessageReceived):
            said.append(f"{at}: message {data.message_id} from {data.sender_id} received for {data.target_url}.")
        elif isinstance(data, DeliveryAttempted):
            took = f" after {data.response_time_ms:g} ms" if data.category != "REFUSED" else ""
            said.append(f"{at}: attempt {data.attempt}: "
                        + ("delivered" if data.success else _outcome_words(data.status_code, data.category, data.error))
                        + (f" (HTTP {data.status_code})" if data.success and data.status_code else "") + f"{took}.")
        elif isinstance(data, RetryScheduled):
            wait, step = (said_duration(timedelta(seconds=seconds)) for seconds in (data.delay_seconds,
                                                                                    data.exponential_delay))
            said.append(f"{at}: retry scheduled for {said_time(data.next_retry_at)} (a wait of {wait}: "
                        f"backoff step {step}, jittered).")
        elif isinstance(data, DeliverySucceeded):
            continue  # said with its attempt
        elif isinstance(data, DeadLettered):
            said.append(f"{at}: dead-lettered after {data.attempts} attempt(s): {data.reason}; the message went to "
                        "the dead-letter queue and a critical alert was raised.")
        elif isinstance(data, RedriveRequested):
            who = f" by {data.requested_by}" if data.requested_by else ""
            why = f" ({data.reason})" if data.reason else ""
            budget = "with a fresh retry budget" if data.kind == "redrive" else "the retry budget unchanged"
            said.append(f"{at}: redriven{who}{why}: attempt {data.attempt} due at once, {budget}.")
    return said


def _policy(policy: RetryPolicy, timeout_seconds: float) -> str:
    return (f"Up to {policy.max_retries} retries after a round's first attempt; the wait before retry n is drawn "
            f"between 0 and {policy.base_seconds:g} s x 2^(n-1), at most {policy.cap_seconds:g} s (full jitter; a "
            f"Retry-After is honoured up to that cap); each request times out after {timeout_seconds:g} s. "
            "2xx delivers; 408, 429, 5xx, timeouts and connection errors are retried; other 4xx and every 3xx "
            "dead-letter at once, and a 410 also disables the target.")


def _facts(state: DeliveryStatus, outlook: RetryOutlook | None, disabled: TargetDisabled | None,
           policy: RetryPolicy, timeout_seconds: float) -> dict[str, object]:
    def moment(value: datetime | None) -> str | None:
        return None if value is None else format_time(value)

    return {
        "delivery_id": state.delivery_id, "status": state.status, "target_url": state.target_url,
        "delivered": state.status == SUCCESS, "delivered_at": state.delivered_at, "attempts": state.attempts,
        "next_retry_at": moment(datetime.fromisoformat(state.next_retry_at)) if outlook and state.next_retry_at
        and state.status == RETRY_SCHEDULED else None,
        "next_attempt": outlook.awaited_attempt if outlook else None,
        "retries_left": outlook.retries_left if outlook else 0,
        "gives_up_earliest": moment(outlook.give_up_earliest) if outlook else None,
        "gives_up_by": moment(outlook.give_up_latest) if outlook else None,
        "gives_up_by_with_retry_after": moment(outlook.give_up_latest_with_retry_after) if outlook else None,
        "gave_up_at": state.updated_at if state.dead_letter_reason is not None else None,
        "dead_letter_reason": state.dead_letter_reason, "round_start": state.round_start,
        "redriven_at": state.redriven_at, "target_disabled": disabled is not None,
        "target_disabled_reason": disabled.reason if disabled else None,
        "policy": {"max_retries": policy.max_retries, "base_seconds": policy.base_seconds,
                   "cap_seconds": policy.cap_seconds, "timeout_seconds": timeout_seconds},
    }
