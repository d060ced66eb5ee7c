""""Why wasn't order SO-000777 sent to the warehouse?": the answer, built purely from the order's
history (its stream) and the grace period.

Each error is followed through its *episode*: detected by a validation, given its grace period,
emailed (which clears it from the pending view), fixed (a later validation no longer reports
it). An error fixed and reported again is a new episode with its own grace period and email, as
the view and the monitor treat it. The notification is said as the monitor lived it: claimed,
failed and retried, sent (how, and the provider's message ref). "Still pending now" is the same
fold the view and the monitor use, over the whole history.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from events.envelope import RecordedEvent, format_time
from events.orders import NotificationClaimed, NotificationFailed, OrderErrorsNotified, OrderValidated
from projections.explanation import Explanation, Section, said_duration, said_relative, said_time
from projections.notification_rules import claim_in_progress, fold_order

QUESTION = "Why wasn't this order sent to the warehouse?"
MONITOR_SOURCE = "urn:dynafold:error-monitor"
CHANNELS = {"email": "by email (SES)", "sns": "by SNS", "outbox": "by email to the local outbox (`dynafold outbox`)",
            "alert": "as a notification_unconfigured alert (no email is configured)"}


@dataclass(frozen=True)
class Episode:
    """One error from its detection until it was fixed (or until now)."""

    error_hash: str
    rule: str
    severity: str
    message: str
    detected: datetime
    fixed: datetime | None = None
    notified: datetime | None = None

    def to_dict(self, grace: timedelta) -> dict[str, Any]:
        return {"error_hash": self.error_hash, "rule": self.rule, "severity": self.severity, "message": self.message,
                "detected_at": format_time(self.detected), "grace_ends_at": format_time(self.detected + grace),
                "notified_at": _time(self.notified), "fixed_at": _time(self.fixed), "status": self.status}

    @property
    def status(self) -> str:
        return "fixed" if self.fixed else "notified" if self.notified else "pending"


@dataclass
class Notice:
    """One notification (an error set's email) as the monitor lived it."""

    notification_id: str
    error_hashes: tuple[str, ...]
    claimed: list[tuple[datetime, int]] = field(default_factory=list)  # (when, attempt)
    failures: list[tuple[datetime, int, str]] = field(default_factory=list)
    sent: datetime | None = None
    channel: str | None = None
    message_ref: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"notification_id": self.notification_id, "error_hashes": list(self.error_hashes),
                "claimed_at": [format_time(at) for at, _ in self.claimed],
                "failures": [{"at": format_time(at), "attempt": n, "error": e} for at, n, e in self.failures],
                "sent_at": _time(self.sent), "channel": self.channel, "message_ref": self.message_ref}


def _time(moment: datetime | None) -> str | None:
    return None if moment is None else format_time(moment)


def episodes_and_notices(history: Sequence[RecordedEvent]) -> tuple[list[Episode], list[Notice]]:
    """Every error episode and every notification of the order, in time order."""
    episodes: list[Episode] = []
    open_: dict[str, int] = {}  # error hash -> index of its open (unfixed) episode
    notices: dict[str, Notice] = {}
    for event in history:
        data, at = event.data, event.time
        if isinstance(data, OrderValidated):
            reported = {error.error_hash: error for error in data.errors}
            for error_hash in [h for h in open_ if h not in reported]:
                index = open_.pop(error_hash)
                episodes[index] = replace(episodes[index], fixed=at)
            for error_hash, error in reported.items():
                if error_hash in open_:  # still reported: its latest wording
                    index = open_[error_hash]
                    episodes[index] = replace(episodes[index], message=error.message, severity=error.severity)
                else:
                    open_[error_hash] = len(episodes)
                    episodes.append(Episode(error_hash, error.rule, error.severity, error.message, at))
        elif isinstance(data, NotificationClaimed):
            notice = notices.setdefault(data.notification_id, Notice(data.notification_id, tuple(data.error_hashes)))
            notice.claimed.append((at, data.attempt))
        elif isinstance(data, NotificationFailed) and data.notification_id in notices:
            notices[data.notification_id].failures.append((at, data.attempt, data.error))
        elif isinstance(data, OrderErrorsNotified):
            nid = data.notification_id or event.id
            notice = notices.setdefault(nid, Notice(nid, tuple(data.error_hashes)))
            notice.sent, notice.channel, notice.message_ref = at, data.channel, data.message_ref
            for error_hash in data.error_hashes:
                if error_hash in open_:
                    index = open_[error_hash]
                    episodes[index] = replace(episodes[index], notified=episodes[index].notified or at)
    return episodes, list(notices.values())


def explain_order(order_id: str, history: Sequence[RecordedEvent], grace: timedelta, now: datetime) -> Explanation:
    """``history``: the order stream's events (never empty); ``grace``: the monitor's grace period."""
    numbers = [e.data.order_number for e in history if isinstance(e.data, OrderValidated) and e.data.order_number]
    number = numbers[-1] if numbers else ""
    label = f"Order {number}" if number else f"Order {order_id}"
    episodes, notices = episodes_and_notices(history)
    state = fold_order(order_id, history)
    pending = [e for e in episodes if e.status == "pending"]
    notified_open = [e for e in episodes if e.status == "notified"]
    validations = [(e, e.data) for e in history if isinstance(e.data, OrderValidated)]
    sections = [
        Section("Validations", tuple(_validation(event, data) for event, data in validations)),
        Section("Errors", tuple(_episode(e, grace) for e in episodes) or ("No validation ever reported an error.",)),
        Section("Notification", tuple(sentence for notice in notices for sentence in _notice(notice, episodes))
                or (_no_notice(episodes, grace),)),
        Section("Still pending now", _now(pending, notified_open, state, grace, now)),
    ]
    facts = {"order_id": order_id, "order_number": number, "grace_period_minutes": grace.total_seconds() / 60,
             "errors": [e.to_dict(grace) for e in episodes], "notifications": [n.to_dict() for n in notices],
             "pending": [e.error_hash for e in pending],
             "notified_still_reported": [e.error_hash for e in notified_open],
             "validated_at": [format_time(e.time) for e, _ in validations]}
    return Explanation(QUESTION, history[0].stream, _answer(label, episodes, pending, notified_open, notices, grace),
                       tuple(sections), facts, tuple(event.id for event in history))


def _rules(episodes: Sequence[Episode]) -> str:
    return "; ".join(f"{e.rule}: {e.message}" for e in episodes)


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" + ("" if count == 1 else "s")


def _answer(label: str, episodes: Sequence[Episode], pending: Sequence[Episode], notified: Sequence[Episode],
            notices: Sequence[Notice], grace: timedelta) -> str:
    sent = [n for n in notices if n.sent is not None]
    if notified or pending:
        still = [*notified, *pending]
        said = f"{label} still has {_plural(len(still), 'unresolved error')} ({_rules(still)})."
        if notified:
            last = sent[-1] if sent else None
            how = f" {CHANNELS.get(last.channel or '', last.channel)}" if last and last.channel else ""
            said += (f" Its grace period of {said_duration(grace)} ended without a fix, so the team was notified"
                     f"{how} at {said_time(min(e.notified for e in notified if e.notified))}; it is not emailed "
                     "again while the error stays.")
        if pending:
            ends = min(e.detected for e in pending) + grace
            said += f" The grace period of the newest error(s) ends at {said_time(ends)}; then, if unfixed, one email."
        return said + " Fix it in InFlow: the next validation clears it."
    if not episodes:
        return f"{label} was validated with no errors: nothing in dynafold held it back."
    fixed = episodes[-1].fixed
    emailed = " after the team was emailed" if sent else " inside its grace period, so no email was sent"
    return (f"{label} has no errors now: {_plural(len(episodes), 'error')} ({_rules(episodes)}) "
            f"{'was' if len(episodes) == 1 else 'were'} fixed, the last at {said_time(fixed) if fixed else '?'}"
            f"{emailed}. Nothing in dynafold holds it back.")


def _validation(event: RecordedEvent, data: OrderValidated) -> str:
    by = "re-validated by the error monitor" if event.source == MONITOR_SOURCE else "received and validated"
    errors = ", ".join(error.rule for error in data.errors) or "no errors"
    return f"{said_time(event.time)}: {by}: {errors}."


def _episode(episode: Episode, grace: timedelta) -> str:
    said = (f"{episode.rule} ({episode.severity}): {episode.message}. Detected {said_time(episode.detected)}; "
            f"grace period {said_duration(grace)}, until {said_time(episode.detected + grace)}.")
    if episode.notified:
        said += f" Emailed {said_time(episode.notified)}, which cleared it from the pending errors."
    if episode.fixed:
        inside = episode.fixed < episode.detected + grace and not episode.notified
        said += f" Fixed {said_time(episode.fixed)}" + (" (inside its grace period)." if inside else ".")
    else:
        said += " Still reported."
    return said


def _notice(notice: Notice, episodes: Sequence[Episode]) -> list[str]:
    rules = {e.error_hash: e.rule for e in episodes}
    about = ", ".join(rules.get(h, h) for h in notice.error_hashes)
    said = [f"{said_time(at)}: the error monitor claimed the notification for {about} (attempt {n})."
            for at, n in notice.claimed]
    said += [f"{said_time(at)}: sending failed (attempt {n}): {error}; the next monitor run retries it."
             for at, n, error in notice.failures]
    if notice.sent is not None:
        ref = f", message ref {notice.message_ref}" if notice.message_ref else ""
        said.append(f"{said_time(notice.sent)}: sent {CHANNELS.get(notice.channel or '', notice.channel)}{ref}.")
    return said


def _no_notice(episodes: Sequence[Episode], grace: timedelta) -> str:
    if not episodes:
        return "None: there was nothing to notify."
    return (f"None: no error outlived its grace period of {said_duration(grace)} unfixed "
            "(the monitor emails only errors still reported after it).")


def _now(pending: Sequence[Episode], notified: Sequence[Episode], state: Any, grace: timedelta,
         now: datetime) -> tuple[str, ...]:
    said = []
    claim = claim_in_progress(state, now)
    for episode in pending:
        ends = episode.detected + grace
        if ends > now:
            when = f"its grace period ends at {said_time(ends)} ({said_relative(ends, now)})"
        else:
            when = f"its grace period ended at {said_time(ends)}: the monitor's next run (every 5 min) emails it"
        said.append(f"{episode.rule}: pending since {said_time(episode.detected)}; {when}.")
    if claim is not None:
        said.append(f"A monitor is sending its notification now (claimed at {said_time(claim.claimed_at)}).")
    said += [f"{e.rule}: emailed at {said_time(e.notified)} and still reported; no second email." for e in notified
             if e.notified]
    return tuple(said) or ("Nothing: no error is pending or unresolved.",)
