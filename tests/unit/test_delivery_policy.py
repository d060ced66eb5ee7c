"""The delivery decisions: classification table, backoff bounds, the retry limit, job planning, targets."""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from events import catalogue
from events.deliveries import DeadLettered, DeliveryAttempted, RetryScheduled, TargetDisabled, TargetEnabled
from events.delivery_policy import (
    MAX_RETRIES_EXCEEDED,
    Attempt,
    Defer,
    HttpOutcome,
    RetryPolicy,
    Skip,
    backoff,
    classify,
    decide_attempt,
    decide_refusal,
    disabled_by,
    disables_target,
    exponential_delay,
    parse_retry_after,
    plan_job,
    retry_outlook,
    target_stream,
)
from events.envelope import RecordedEvent

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)
POLICY = RetryPolicy(max_retries=3, base_seconds=1.0, cap_seconds=60.0)


def status(code: int, retry_after: str | None = None) -> HttpOutcome:
    return HttpOutcome(code, 12.5, retry_after=retry_after, error=None if code < 300 else f"HTTP {code}")


# outcome -> category, then what it means (the table: 3xx never followed, 410 disables).
CLASSIFICATION = """
200         SUCCESS           success
204         SUCCESS           success
301         REDIRECT          permanent
302         REDIRECT          permanent
307         REDIRECT          permanent
400         CLIENT_ERROR      permanent
401         CLIENT_ERROR      permanent
404         CLIENT_ERROR      permanent
408         TIMEOUT           retryable
410         CLIENT_ERROR      permanent disables-target
429         RATE_LIMITED      retryable
500         SERVER_ERROR      retryable
503         SERVER_ERROR      retryable
timeout     TIMEOUT           retryable
connection  CONNECTION_ERROR  retryable
"""


@pytest.mark.parametrize("line", CLASSIFICATION.strip().splitlines())
def test_classification_table(line):
    spelled, category, *meaning = line.split()
    outcome = status(int(spelled)) if spelled.isdigit() else HttpOutcome(None, 1.0, failure=spelled)
    verdict = classify(outcome)
    assert verdict.category == category
    assert (verdict.success, verdict.retryable, verdict.disables_target) == (
        "success" in meaning, "retryable" in meaning, "disables-target" in meaning)


def test_an_outcome_is_a_status_or_a_transport_failure_never_both_or_neither():
    with pytest.raises(ValueError):
        HttpOutcome(200, 1.0, failure="timeout")
    with pytest.raises(ValueError):
        HttpOutcome(None, 1.0)


def test_success_appends_the_attempt_and_delivery_succeeded():
    decision = decide_attempt(2, status(200), POLICY, NOW, random.Random(1).random)
    assert [e.type for e in decision.events] == ["dynafold.delivery.attempted.v1", "dynafold.delivery.succeeded.v1"]
    assert decision.result == "succeeded"
    assert all(e.time == NOW for e in decision.events)
    for event in decision.events:  # what the decision returns is appendable as it stands
        catalogue.validate(event.type, event.data)


def test_a_retryable_failure_schedules_a_retry_recording_the_backoff():
    decision = decide_attempt(1, status(503), POLICY, NOW, lambda: 0.25)
    attempted, scheduled = (e.data for e in decision.events)
    assert isinstance(attempted, DeliveryAttempted) and isinstance(scheduled, RetryScheduled)
    assert (attempted.attempt, attempted.category, attempted.retryable, attempted.error) == (
        1, "SERVER_ERROR", True, "HTTP 503")
    assert (scheduled.exponential_delay, scheduled.delay_seconds, scheduled.jitter) == (1.0, 0.25, 0.75)
    assert scheduled.next_retry_at == NOW + timedelta(seconds=0.25)


def test_three_retries_then_max_retries_exceeded():
    results = [decide_attempt(n, status(500), POLICY, NOW, lambda: 0.5) for n in (1, 2, 3, 4)]
    assert [d.result for d in results] == ["retry_scheduled"] * 3 + ["dead_lettered"]
    dead = results[-1].events[-1].data
    assert dead == DeadLettered(attempts=4, reason=MAX_RETRIES_EXCEEDED)
    assert [d.backoff.exponential_delay for d in results[:3]] == [1.0, 2.0, 4.0]


def test_a_redriven_round_gets_the_whole_retry_budget_and_backoff_again():
    # Redriven at attempt 5 (after 4 failed): attempts 5..8 are the new round, as 1..4 were the first.
    results = [decide_attempt(n, status(500), POLICY, NOW, lambda: 0.5, round_start=5) for n in (5, 6, 7, 8)]
    assert [d.result for d in results] == ["retry_scheduled"] * 3 + ["dead_lettered"]
    assert [d.backoff.exponential_delay for d in results[:3]] == [1.0, 2.0, 4.0]
    assert results[-1].events[-1].data == DeadLettered(attempts=8, reason=MAX_RETRIES_EXCEEDED)
    assert decide_attempt(5, status(500), POLICY, NOW, lambda: 0.5).result == "dead_lettered"  # no redrive: spent
    with pytest.raises(ValueError, match="round"):
        decide_attempt(4, status(500), POLICY, NOW, lambda: 0.5, round_start=5)


def test_the_retry_outlook_counts_what_is_left_and_bounds_the_give_up_time():
    # Attempt 1 failed, attempt 2 (retry 1 of 3) is due at NOW: the waits left before attempts 3 and 4
    # are at most 2 s and 4 s, and each of the three requests may run its 10 s timeout.
    outlook = retry_outlook(POLICY, 10.0, awaited_attempt=2, due_at=NOW)
    assert (outlook.attempts_left, outlook.retries_left, outlook.last_attempt) == (3, 3, 4)
    assert outlook.give_up_earliest == NOW
    assert outlook.give_up_latest == NOW + timedelta(seconds=2 + 4 + 3 * 10)
    assert outlook.give_up_latest_with_retry_after == NOW + timedelta(seconds=2 * 60 + 3 * 10)  # waits at the cap
    first = retry_outlook(POLICY, 10.0, awaited_attempt=1, due_at=NOW)  # the first attempt is not a retry
    assert (first.attempts_left, first.retries_left, first.give_up_latest) == (
        4, 3, NOW + timedelta(seconds=1 + 2 + 4 + 40))
    last = retry_outlook(POLICY, 10.0, awaited_attempt=8, due_at=NOW, round_start=5)  # a redrive's last retry
    assert (last.attempts_left, last.retries_left, last.give_up_latest) == (1, 1, NOW + timedelta(seconds=10))
    with pytest.raises(ValueError, match="past the round"):
        retry_outlook(POLICY, 10.0, awaited_attempt=5, due_at=NOW)


def test_max_retries_is_configurable_down_to_none():
    assert decide_attempt(1, status(500), RetryPolicy(max_retries=0), NOW, lambda: 0.5).result == "dead_lettered"


@pytest.mark.parametrize("outcome, reason", [
    (status(404), "PERMANENT_FAILURE: HTTP 404 (CLIENT_ERROR)"),
    (status(302), "REDIRECT: HTTP 302 (redirects are not followed)"),
    (status(410), "TARGET_GONE: HTTP 410, target disabled"),
])
def test_a_permanent_failure_dead_letters_at_once_naming_it(outcome, reason):
    decision = decide_attempt(1, outcome, POLICY, NOW, lambda: 0.5)
    assert decision.result == "dead_lettered"
    assert decision.dead_letter_reason == reason
    assert decision.events[-1].data == DeadLettered(attempts=1, reason=reason)


def test_a_refused_target_is_recorded_as_a_refused_attempt_and_dead_lettered():
    decision = decide_refusal(1, "TARGET_REFUSED: resolves to 10.0.0.1", NOW)
    attempted, dead = (e.data for e in decision.events)
    assert (attempted.category, attempted.status_code, attempted.response_time_ms) == ("REFUSED", None, 0.0)
    assert dead.reason == "TARGET_REFUSED: resolves to 10.0.0.1"


def test_only_410_disables_a_target():
    def attempt(code):
        return DeliveryAttempted(attempt=1, success=False, category="CLIENT_ERROR", status_code=code,
                                 response_time_ms=1.0)

    assert disables_target(attempt(410)) and not disables_target(attempt(404))


# ----------------------------------------------------------------------------- Retry-After

def test_retry_after_seconds_and_http_dates():
    assert parse_retry_after("120", NOW) == 120.0
    assert parse_retry_after("Sun, 01 Mar 2026 12:00:30 GMT", NOW) == 30.0
    assert parse_retry_after("Sun, 01 Mar 2026 11:00:00 GMT", NOW) == 0.0  # already past
    assert parse_retry_after("soon", NOW) is None
    assert parse_retry_after("-5", NOW) is None
    assert parse_retry_after(None, NOW) is None


@pytest.mark.parametrize("value", [
    "\u00b2",  # SUPERSCRIPT TWO: str.isdigit() says yes, float() raises (issue 12 defect 3)
    "\u0661\u0662",  # ARABIC-INDIC digits: int() would read them, RFC 9110 does not
    "\uff11\uff12",  # FULLWIDTH digits
    "1\u00b9", "+5", "5.0", "1e3", "0x10", "5 s", "", "   ",
    "Sun, 01 Mar 2026 12:00:30 +0100",  # not GMT
    "Sun, 01 Mar 2026 12:00:30",  # no zone
    "Sun, 1 Mar 2026 12:00:30 GMT",  # IMF-fixdate has two-digit days
    "Sun, 31 Feb 2026 12:00:30 GMT",
    "Sun, 01 Mar 2026 25:00:30 GMT",
    "2026-03-01T12:00:30Z",
])
def test_retry_after_is_parsed_strictly_per_rfc_9110(value):
    assert parse_retry_after(value, NOW) is None


def test_retry_after_accepts_the_three_http_date_forms_and_huge_delays():
    assert parse_retry_after(" 120 ", NOW) == 120.0  # optional whitespace around the field value
    assert parse_retry_after("0", NOW) == 0.0
    assert parse_retry_after("Sunday, 01-Mar-26 12:00:30 GMT", NOW) == 30.0  # obsolete RFC 850 form
    assert parse_retry_after("Sun Mar  1 12:00:30 2026", NOW) == 30.0  # obsolete asctime form
    huge = parse_retry_after("9" * 5000, NOW)  # int() would refuse 5000 digits; float() would overflow
    assert huge is not None and huge > 1e9
    policy = RetryPolicy(max_retries=3, base_seconds=1.0, cap_seconds=60.0)
    assert decide_attempt(1, status(503, "9" * 5000), policy, NOW, lambda: 0.5).backoff.delay_seconds == 60.0


def test_retry_after_is_honoured_up_to_the_cap():
    longer = decide_attempt(1, status(429, "30"), POLICY, NOW, lambda: 0.5)
    assert longer.backoff.delay_seconds == 30.0
    assert longer.events[-1].data.next_retry_at == NOW + timedelta(seconds=30)
    capped = decide_attempt(1, status(429, "86400"), POLICY, NOW, lambda: 0.5)
    assert capped.backoff.delay_seconds == POLICY.cap_seconds
    shorter = decide_attempt(3, status(503, "0"), POLICY, NOW, lambda: 0.5)  # backoff's own pick is longer
    assert shorter.backoff.delay_seconds == 2.0


# ----------------------------------------------------------------------------- properties

policies = st.builds(
    lambda retries, base, extra: RetryPolicy(retries, base, base + extra),
    st.integers(0, 10), st.floats(0.001, 100), st.floats(0, 10_000),
)
fractions = st.floats(0, 1, exclude_max=True)
retry_afters = st.none() | st.floats(0, 1e6)


@given(policies, st.integers(1, 200), fractions, retry_afters)
def test_backoff_stays_within_full_jitter_bounds_and_the_cap(policy, attempt, fraction, retry_after):
    wait = backoff(attempt, policy, lambda: fraction, retry_after)
    ceiling = min(policy.cap_seconds, policy.base_seconds * 2 ** (attempt - 1))
    assert wait.exponential_delay == pytest.approx(ceiling, abs=1e-3)
    assert 0 <= wait.jitter <= wait.exponential_delay
    assert 0 <= wait.delay_seconds <= round(policy.cap_seconds, 3)
    jittered = wait.exponential_delay - wait.jitter
    if retry_after is None:
        assert wait.delay_seconds == pytest.approx(jittered, abs=2e-3)
    else:
        assert wait.delay_seconds == pytest.approx(max(jittered, min(retry_after, policy.cap_seconds)), abs=2e-3)


@given(st.integers(1, 60))
def test_the_exponential_step_doubles_until_the_cap(attempt):
    assert exponential_delay(attempt + 1, POLICY) == min(POLICY.cap_seconds, 2 * exponential_delay(attempt, POLICY))


codes = st.integers(100, 599)
transport = st.sampled_from(["timeout", "connection"])
outcomes = (st.builds(lambda code: HttpOutcome(code, 1.0), codes)
            | st.builds(lambda kind: HttpOutcome(None, 1.0, failure=kind), transport))


@given(policies, st.integers(1, 20), outcomes, fractions)
def test_decision_table(policy, attempt, outcome, fraction):
    decision = decide_attempt(attempt, outcome, policy, NOW, lambda: fraction)
    first = decision.events[0].data
    assert isinstance(first, DeliveryAttempted) and first.attempt == attempt
    code = outcome.status_code
    if code is not None and 200 <= code < 300:
        assert decision.result == "succeeded"
    elif code is not None and code < 500 and code not in (408, 429):
        assert decision.result == "dead_lettered" and decision.dead_letter_reason != MAX_RETRIES_EXCEEDED
    elif attempt > policy.max_retries:
        assert decision.result == "dead_lettered" and decision.dead_letter_reason == MAX_RETRIES_EXCEEDED
    else:
        assert decision.result == "retry_scheduled"
        scheduled = decision.events[1].data
        assert NOW <= scheduled.next_retry_at <= NOW + timedelta(seconds=policy.cap_seconds + 0.001)
    for event in decision.events:
        catalogue.validate(event.type, event.data)


def test_policy_from_env_and_its_errors():
    assert RetryPolicy.from_env({}) == RetryPolicy(3, 1.0, 300.0)
    assert RetryPolicy.from_env({"DYNAFOLD_MAX_RETRIES": "5", "DYNAFOLD_RETRY_BASE_SECONDS": "0.5",
                                 "DYNAFOLD_RETRY_CAP_SECONDS": "10"}) == RetryPolicy(5, 0.5, 10.0)
    with pytest.raises(ValueError, match="DYNAFOLD_MAX_RETRIES must be a whole number"):
        RetryPolicy.from_env({"DYNAFOLD_MAX_RETRIES": "three"})
    with pytest.raises(ValueError, match="at least the base"):
        RetryPolicy.from_env({"DYNAFOLD_RETRY_BASE_SECONDS": "10", "DYNAFOLD_RETRY_CAP_SECONDS": "5"})


# ----------------------------------------------------------------------------- jobs

def plan(attempt, made=0, finished=False, due=None):
    return plan_job(attempt=attempt, attempts_made=made, finished=finished, retry_due_at=due, now=NOW)


def test_job_planning():
    assert plan(1) == Attempt()
    assert plan(2, made=1, due=NOW) == Attempt()
    assert plan(2, made=1, due=NOW + timedelta(seconds=90)) == Defer(90.0)
    assert plan(1, made=1) == Skip("attempt 1 already made")
    assert plan(3, made=1, due=NOW) == Skip("attempt 3 is not the next one (1 made)")
    assert plan(2, made=1, finished=True) == Skip("delivery already finished")
    assert plan(2, made=1, due=None) == Skip("no retry scheduled after attempt 1")


# ----------------------------------------------------------------------------- targets

def test_target_streams_ignore_scheme_and_host_case_and_default_ports_only():
    same = {target_stream(u) for u in ("https://Hooks.Example.com/x", "https://hooks.example.com:443/x",
                                       "HTTPS://hooks.example.com/x")}
    assert len(same) == 1
    assert target_stream("https://hooks.example.com/y") not in same
    assert target_stream("https://hooks.example.com:8443/x") not in same
    assert catalogue.stream_category(same.pop()) == "target"


def _recorded(data, version):
    return RecordedEvent("target:t", version, f"e{version}", "t", "s", NOW, data, "c", None, "", "")


def test_a_target_is_disabled_until_it_is_enabled_again():
    disabled = TargetDisabled(target_url="https://h/x", reason="HTTP 410 on attempt 1", status_code=410)
    enabled = TargetEnabled(target_url="https://h/x")
    assert disabled_by([]) is None
    assert disabled_by([_recorded(disabled, 1)]) == disabled
    assert disabled_by([_recorded(disabled, 1), _recorded(enabled, 2)]) is None
