"""What a webhook delivery does next: pure decisions, no I/O, no clock reads, no randomness of its own.

The delivery worker (``processors/delivery_worker.py``) reads the log, makes the request and
appends what these functions return; everything that decides lives here so it can be tested
exhaustively:

- ``classify``: an HTTP outcome -> category, success, retryable, whether it disables the target.
  2xx succeed; 408, 429, 5xx, timeouts and connection errors are retryable; every other 4xx is
  permanent; a 3xx is never followed and is a permanent REDIRECT failure; 410 also disables.
- ``backoff``: exponential with full jitter, ``min(cap, base * 2**(attempt-1))`` scaled by a random
  fraction in [0, 1); a ``Retry-After`` the target sent is honoured up to the cap.
- ``decide_attempt`` / ``decide_refusal``: the events to append for one attempt. Attempt 1 is the
  first delivery, attempts 2.. are retries; the attempt after ``max_retries`` retries that still
  fails is dead-lettered with reason ``MAX_RETRIES_EXCEEDED``; a permanent failure at once, with a
  reason naming it. A redrive starts a new round at its attempt: retries (and the backoff's
  doublings) count from there.
- ``retry_outlook``: from where a delivery stands, how many retries are left and the window in
  which it gives up if every one of them fails (jitter makes it a range: from "at once" to the
  sum of the capped delays and request timeouts).
- ``plan_job``: whether a queued job should attempt now, wait, or is stale.
- ``target_stream`` / ``disabled_by``: the stream that records whether a target URL is disabled.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel

from events.deliveries import (
    DeadLettered,
    DeliveryAttempted,
    DeliverySucceeded,
    OutcomeCategory,
    RetryScheduled,
    TargetDisabled,
    TargetEnabled,
)
from events.envelope import NewEvent, RecordedEvent

MAX_RETRIES_EXCEEDED = "MAX_RETRIES_EXCEEDED"
GONE = 410
ATTEMPTED = "dynafold.delivery.attempted.v1"
RETRY_SCHEDULED = "dynafold.delivery.retry_scheduled.v1"
SUCCEEDED = "dynafold.delivery.succeeded.v1"
DEAD_LETTERED = "dynafold.delivery.dead_lettered.v1"
TARGET_DISABLED = "dynafold.delivery.target_disabled.v1"
TARGET_ENABLED = "dynafold.delivery.target_enabled.v1"
REDRIVE_REQUESTED = "dynafold.delivery.redrive_requested.v1"

RandomFraction = Callable[[], float]  # a draw in [0, 1), e.g. random.Random(seed).random
TransportFailure = Literal["timeout", "connection"]


# ----------------------------------------------------------------------------- settings

@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently a delivery is retried (seed 001: max 3 retries, backoff with jitter)."""

    max_retries: int = 3
    base_seconds: float = 1.0
    cap_seconds: float = 300.0

    def __post_init__(self) -> None:
        if self.max_retries < 0:
            raise ValueError(f"max_retries must be >= 0, not {self.max_retries}")
        if not (self.base_seconds > 0 and math.isfinite(self.base_seconds)):
            raise ValueError(f"retry base must be a positive number of seconds, not {self.base_seconds}")
        if not (self.cap_seconds >= self.base_seconds and math.isfinite(self.cap_seconds)):
            raise ValueError(f"retry cap ({self.cap_seconds}s) must be at least the base ({self.base_seconds}s)")

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> "RetryPolicy":
        """DYNAFOLD_MAX_RETRIES, DYNAFOLD_RETRY_BASE_SECONDS, DYNAFOLD_RETRY_CAP_SECONDS (defaults 3, 1, 300)."""
        return cls(
            max_retries=int(_number(env, "DYNAFOLD_MAX_RETRIES", cls.max_retries, integral=True)),
            base_seconds=_number(env, "DYNAFOLD_RETRY_BASE_SECONDS", cls.base_seconds),
            cap_seconds=_number(env, "DYNAFOLD_RETRY_CAP_SECONDS", cls.cap_seconds),
        )


def _number(env: Mapping[str, str], name: str, default: float, *, integral: bool = False) -> float:
    text = env.get(name, "").strip()
    if not text:
        return default
    try:
        return int(text) if integral else float(text)
    except ValueError:
        kind = "a whole number" if integral else "a number of seconds"
        raise ValueError(f"{name} must be {kind}, not {text!r}") from None


# ----------------------------------------------------------------------------- classification

@dataclass(frozen=True)
class HttpOutcome:
    """What one request produced: a status (and its Retry-After), or a transport failure."""

    status_code: int | None
    response_time_ms: float
    retry_after: str | None = None  # the header exactly as received
    error: str | None = None  # bounded text: reason phrase, body excerpt, or the transport error
    failure: TransportFailure | None = None

    def __post_init__(self) -> None:
        if (self.status_code is None) == (self.failure is None):
            raise ValueError("an HTTP outcome has either a status code or a transport failure")


@dataclass(frozen=True)
class Classification:
    category: OutcomeCategory
    success: bool
    retryable: bool
    disables_target: bool = False


def classify(outcome: HttpOutcome) -> Classification:
    if outcome.failure == "timeout":
        return Classification("TIMEOUT", success=False, retryable=True)
    if outcome.failure == "connection" or outcome.status_code is None:
        return Classification("CONNECTION_ERROR", success=False, retryable=True)
    status = outcome.status_code
    if 200 <= status < 300:
        return Classification("SUCCESS", success=True, retryable=False)
    if 300 <= status < 400:  # never followed: a redirect could lead anywhere, including inside
        return Classification("REDIRECT", success=False, retryable=False)
    if status == 429:
        return Classification("RATE_LIMITED", success=False, retryable=True)
    if status == 408:  # the target timed out waiting for our request
        return Classification("TIMEOUT", success=False, retryable=True)
    if status >= 500:
        return Classification("SERVER_ERROR", success=False, retryable=True)
    return Classification("CLIENT_ERROR", success=False, retryable=False, disables_target=status == GONE)


def disables_target(attempted: DeliveryAttempted) -> bool:
    """Whether a recorded attempt disables its target (the reactor acts on it)."""
    return attempted.status_code == GONE


# ----------------------------------------------------------------------------- backoff

@dataclass(frozen=True)
class Backoff:
    """``exponential_delay`` is the capped exponential step, ``jitter`` what full jitter took off it;
    ``delay_seconds`` is what applies: the jittered delay, or a longer Retry-After (up to the cap)."""

    delay_seconds: float
    exponential_delay: float
    jitter: float


def exponential_delay(failed_attempt: int, policy: RetryPolicy) -> float:
    # min() before the power would overflow: 2**1100 is not a float.
    doublings = min(failed_attempt - 1, 64)
    return min(policy.cap_seconds, policy.base_seconds * 2.0 ** doublings)


def backoff(failed_attempt: int, policy: RetryPolicy, random_fraction: RandomFraction,
            retry_after_seconds: float | None = None) -> Backoff:
    if failed_attempt < 1:
        raise ValueError(f"attempts count from 1, not {failed_attempt}")
    fraction = random_fraction()
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"a random fraction must be in [0, 1), not {fraction}")
    ceiling = exponential_delay(failed_attempt, policy)
    jittered = ceiling * fraction
    delay = jittered
    if retry_after_seconds is not None:
        delay = max(jittered, min(retry_after_seconds, policy.cap_seconds))
    return Backoff(delay_seconds=round(delay, 3), exponential_delay=round(ceiling, 3),
                   jitter=round(ceiling - jittered, 3))


_DELAY_SECONDS = re.compile(r"[0-9]+")  # RFC 9110 10.2.3: delay-seconds = 1*DIGIT, and DIGIT is ASCII 0-9 only
_MAX_RETRY_AFTER_SECONDS = 10.0 ** 12  # longer than any cap; more digits than this mean "very long"
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_DAY, _WEEKDAY = "(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)", "(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday)"
_MONTH, _TIME = "(?P<month>" + "|".join(_MONTHS) + ")", "(?P<h>[0-9]{2}):(?P<m>[0-9]{2}):(?P<s>[0-9]{2})"
# RFC 9110 5.6.7: HTTP-date = IMF-fixdate / obs-date (rfc850-date / asctime-date), always GMT, case-sensitive.
_HTTP_DATES = (
    re.compile(rf"{_DAY}, (?P<day>[0-9]{{2}}) {_MONTH} (?P<year>[0-9]{{4}}) {_TIME} GMT"),  # IMF-fixdate
    re.compile(rf"{_WEEKDAY}, (?P<day>[0-9]{{2}})-{_MONTH}-(?P<yy>[0-9]{{2}}) {_TIME} GMT"),  # rfc850-date
    re.compile(rf"{_DAY} {_MONTH} (?P<day>[0-9]{{2}}| [0-9]) {_TIME} (?P<year>[0-9]{{4}})"),  # asctime-date
)


def _http_date(text: str, now: datetime) -> datetime | None:
    for form in _HTTP_DATES:
        match = form.fullmatch(text)
        if match is None:
            continue
        parts = match.groupdict()
        if parts.get("yy") is not None:
            # RFC 9110 5.6.7: a two-digit year more than 50 years in the future is in the past century.
            year = now.year - now.year % 100 + int(parts["yy"])
            if year > now.year + 50:
                year -= 100
        else:
            year = int(parts["year"])
        try:
            return datetime(year, _MONTHS.index(parts["month"]) + 1, int(parts["day"]), int(parts["h"]),
                            int(parts["m"]), int(parts["s"]), tzinfo=timezone.utc)
        except ValueError:  # 31 Feb, 25:00:00, second 60 ...
            return None
    return None


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Retry-After in seconds from now (RFC 9110 10.2.3): delay-seconds (ASCII digits only) or an
    HTTP-date; None when absent or not one of those. Never raises: the request has gone out by the
    time this is read, so whatever the target sent, the attempt is still recorded (issue 12 defect 3)."""
    if value is None:
        return None
    text = value.strip(" \t")  # optional whitespace around a field value
    if _DELAY_SECONDS.fullmatch(text):
        digits = text.lstrip("0") or "0"
        return _MAX_RETRY_AFTER_SECONDS if len(digits) > 12 else float(int(digits))
    when = _http_date(text, now)
    return None if when is None else max(0.0, (when - now).total_seconds())


# ----------------------------------------------------------------------------- decisions

@dataclass(frozen=True)
class Decision:
    """The events to append to the delivery stream, in order, and what they amount to."""

    events: tuple[NewEvent, ...]
    result: Literal["succeeded", "retry_scheduled", "dead_lettered"]
    classification: Classification
    backoff: Backoff | None = None

    @property
    def dead_letter_reason(self) -> str | None:
        for event in self.events:
            if isinstance(event.data, DeadLettered):
                return event.data.reason
        return None


def _event(event_type: str, data: BaseModel, now: datetime) -> NewEvent:
    return NewEvent(event_type, data, time=now)


def permanent_reason(classification: Classification, outcome: HttpOutcome) -> str:
    status = outcome.status_code
    if classification.disables_target:
        return f"TARGET_GONE: HTTP {status}, target disabled"
    if classification.category == "REDIRECT":
        return f"REDIRECT: HTTP {status} (redirects are not followed)"
    return f"PERMANENT_FAILURE: HTTP {status} ({classification.category})"


def decide_attempt(attempt: int, outcome: HttpOutcome, policy: RetryPolicy, now: datetime,
                   random_fraction: RandomFraction, round_start: int = 1) -> Decision:
    """The events recording attempt ``attempt`` (made at ``now``) and what follows from it.

    ``round_start`` is the attempt the current round began with: 1, or the attempt a redrive made
    due (a redriven delivery gets ``max_retries`` retries again, with the backoff starting over)."""
    if not 1 <= round_start <= attempt:
        raise ValueError(f"attempt {attempt} is not in a round that started at attempt {round_start}")
    in_round = attempt - round_start + 1  # 1 = the round's first attempt
    verdict = classify(outcome)
    attempted = DeliveryAttempted(
        attempt=attempt, success=verdict.success, category=verdict.category, retryable=verdict.retryable,
        status_code=outcome.status_code, response_time_ms=round(max(0.0, outcome.response_time_ms), 3),
        error=None if verdict.success else outcome.error,
    )
    first = _event(ATTEMPTED, attempted, now)
    if verdict.success and outcome.status_code is not None:  # success is only ever a 2xx status
        succeeded = DeliverySucceeded(attempt=attempt, status_code=outcome.status_code,
                                      response_time_ms=attempted.response_time_ms)
        return Decision((first, _event(SUCCEEDED, succeeded, now)), "succeeded", verdict)
    if not verdict.retryable:
        dead = DeadLettered(attempts=attempt, reason=permanent_reason(verdict, outcome))
        return Decision((first, _event(DEAD_LETTERED, dead, now)), "dead_lettered", verdict)
    if in_round > policy.max_retries:  # the round's first attempt plus max_retries retries all failed
        dead = DeadLettered(attempts=attempt, reason=MAX_RETRIES_EXCEEDED)
        return Decision((first, _event(DEAD_LETTERED, dead, now)), "dead_lettered", verdict)
    wait = backoff(in_round, policy, random_fraction, parse_retry_after(outcome.retry_after, now))
    scheduled = RetryScheduled(attempt=attempt, next_retry_at=now + timedelta(seconds=wait.delay_seconds),
                               delay_seconds=wait.delay_seconds, exponential_delay=wait.exponential_delay,
                               jitter=wait.jitter)
    return Decision((first, _event(RETRY_SCHEDULED, scheduled, now)), "retry_scheduled", verdict, wait)


def decide_refusal(attempt: int, reason: str, now: datetime) -> Decision:
    """Attempt ``attempt`` was not made (target refused by the SSRF guard, or disabled): dead-letter now.

    Recorded as an attempt of category REFUSED so the view shows why nothing was sent."""
    verdict = Classification("REFUSED", success=False, retryable=False)
    attempted = DeliveryAttempted(attempt=attempt, success=False, category="REFUSED", retryable=False,
                                  status_code=None, response_time_ms=0.0, error=reason)
    dead = DeadLettered(attempts=attempt, reason=reason)
    return Decision((_event(ATTEMPTED, attempted, now), _event(DEAD_LETTERED, dead, now)), "dead_lettered", verdict)


# ----------------------------------------------------------------------------- outlook

@dataclass(frozen=True)
class RetryOutlook:
    """What is left of a delivery's retries, from the attempt it waits for.

    ``attempts_left`` counts the awaited attempt and every one after it; ``retries_left`` those of
    them that are retries (all but a round's first attempt). The delivery gives up when the
    round's last attempt fails, which is between ``give_up_earliest`` (every jittered delay zero,
    every request failing at once) and ``give_up_latest`` (every delay at its capped exponential
    step, every request running to its timeout). A target that sends ``Retry-After`` can stretch
    each wait to the cap: ``give_up_latest_with_retry_after``. Queue latency comes on top."""

    awaited_attempt: int
    attempts_left: int
    retries_left: int
    last_attempt: int
    give_up_earliest: datetime
    give_up_latest: datetime
    give_up_latest_with_retry_after: datetime


def retry_outlook(policy: RetryPolicy, timeout_seconds: float, *, awaited_attempt: int, due_at: datetime,
                  round_start: int = 1) -> RetryOutlook:
    """The outlook of a delivery waiting to make ``awaited_attempt`` at ``due_at``."""
    if not 1 <= round_start <= awaited_attempt:
        raise ValueError(f"attempt {awaited_attempt} is not in a round that started at attempt {round_start}")
    last = round_start + policy.max_retries
    if awaited_attempt > last:
        raise ValueError(f"attempt {awaited_attempt} is past the round's last attempt ({last})")
    # Each remaining failure waits at most its capped exponential step (full jitter: at least 0).
    waits = sum(exponential_delay(attempt - round_start + 1, policy) for attempt in range(awaited_attempt, last))
    requests = last - awaited_attempt + 1
    retries = requests - (1 if awaited_attempt == round_start else 0)
    requesting = requests * timeout_seconds
    return RetryOutlook(
        awaited_attempt=awaited_attempt, attempts_left=requests, retries_left=retries, last_attempt=last,
        give_up_earliest=due_at, give_up_latest=due_at + timedelta(seconds=waits + requesting),
        give_up_latest_with_retry_after=due_at + timedelta(seconds=(requests - 1) * policy.cap_seconds + requesting))


# ----------------------------------------------------------------------------- jobs

@dataclass(frozen=True)
class Attempt:
    pass


@dataclass(frozen=True)
class Defer:
    seconds: float


@dataclass(frozen=True)
class Skip:
    reason: str


JobStep = Attempt | Defer | Skip


def plan_job(*, attempt: int, attempts_made: int, finished: bool, retry_due_at: datetime | None,
             now: datetime) -> JobStep:
    """Whether a job for ``attempt`` should run now. The log is the authority: a job that is a
    duplicate, stale or early changes nothing (queues deliver at least once and may be early)."""
    if finished:
        return Skip("delivery already finished")
    if attempt <= attempts_made:
        return Skip(f"attempt {attempt} already made")
    if attempt > attempts_made + 1:
        return Skip(f"attempt {attempt} is not the next one ({attempts_made} made)")
    if attempt == 1:
        return Attempt()
    if retry_due_at is None:
        return Skip(f"no retry scheduled after attempt {attempts_made}")
    if now < retry_due_at:
        return Defer((retry_due_at - now).total_seconds())
    return Attempt()


# ----------------------------------------------------------------------------- targets

def target_stream(url: str) -> str:
    """``target:<hash>``: one stream per target URL; scheme and host case and a default port do not count."""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    default = {"https": 443, "http": 80}.get(scheme)
    try:
        port = parts.port
    except ValueError:
        port = None
    netloc = f"[{host}]" if ":" in host else host
    if port is not None and port != default:
        netloc += f":{port}"
    normalised = f"{scheme}://{netloc}{parts.path or '/'}" + (f"?{parts.query}" if parts.query else "")
    return "target:" + hashlib.sha256(normalised.encode("utf-8")).hexdigest()[:32]


def disabled_by(events: Sequence[RecordedEvent]) -> TargetDisabled | None:
    """The TargetDisabled in force after a target stream's events, or None when the target is enabled."""
    current: TargetDisabled | None = None
    for event in events:
        if isinstance(event.data, TargetDisabled):
            current = event.data
        elif isinstance(event.data, TargetEnabled):
            current = None
    return current
