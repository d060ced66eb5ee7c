"""An alarm's state: what CloudWatch's DescribeAlarms answers on AWS, and what a template alarm
evaluates to over the local metrics.

``AlarmRule`` is one single-metric alarm of template.yaml (its metric, statistic, period,
evaluation periods, datapoints to alarm, threshold, comparison, missing-data treatment), evaluated
as CloudWatch documents it ("Configuring how CloudWatch alarms treat missing data",
https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/alarms-and-missing-data.html): of the last
``evaluation_periods`` periods, ALARM when at least ``datapoints_to_alarm`` breach; a period without
data counts as breaching or not as ``TreatMissingData`` says, and with ``missing`` (or ``ignore``)
and no data at all the state is INSUFFICIENT_DATA. Locally the periods end now (a sliding window),
where CloudWatch's are its own evaluation times: the same answer to within a period.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from events.envelope import format_time
from projections.health.metrics import MetricQuery

ALARM, OK, INSUFFICIENT_DATA = "ALARM", "OK", "INSUFFICIENT_DATA"
COMPARISONS: dict[str, tuple[Callable[[float, float], bool], str]] = {
    "GreaterThanThreshold": (operator.gt, "greater than"),
    "GreaterThanOrEqualToThreshold": (operator.ge, "greater than or equal to"),
    "LessThanThreshold": (operator.lt, "less than"),
    "LessThanOrEqualToThreshold": (operator.le, "less than or equal to"),
}
MISSING_DATA = ("breaching", "notBreaching", "ignore", "missing")


@dataclass(frozen=True)
class AlarmState:
    name: str
    state: str  # ALARM | OK | INSUFFICIENT_DATA
    reason: str
    since: datetime | None = None  # when it entered the state (AWS: StateUpdatedTimestamp)
    description: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "state": self.state, "reason": self.reason,
                "since": format_time(self.since) if self.since else None, "description": self.description}


@dataclass(frozen=True)
class AlarmRule:
    name: str
    description: str
    query: MetricQuery
    period: int  # seconds
    evaluation_periods: int
    datapoints_to_alarm: int
    threshold: float
    comparison: str
    treat_missing: str = "missing"

    def __post_init__(self) -> None:
        if self.comparison not in COMPARISONS:
            raise ValueError(f"{self.name}: unsupported comparison {self.comparison!r}")
        if self.treat_missing not in MISSING_DATA:
            raise ValueError(f"{self.name}: unknown TreatMissingData {self.treat_missing!r}")
        if not 1 <= self.datapoints_to_alarm <= self.evaluation_periods:
            raise ValueError(f"{self.name}: DatapointsToAlarm must be 1..EvaluationPeriods")

    def evaluate(self, values: Sequence[float | None], now: datetime) -> AlarmState:
        """The state over the last ``evaluation_periods`` periods' values, oldest first (None: no data)."""
        if len(values) != self.evaluation_periods:
            raise ValueError(f"{self.name}: expected {self.evaluation_periods} periods, got {len(values)}")
        compare, words = COMPARISONS[self.comparison]
        present = [value for value in values if value is not None]
        missing = len(values) - len(present)
        breaching = sum(1 for value in present if compare(value, self.threshold))
        if self.treat_missing == "breaching":
            breaching += missing
        shown = ", ".join(f"{value:g}" if value is not None else "no data" for value in values)
        counted = "; a period without data counts as breaching" if missing and self.treat_missing == "breaching" else ""
        over = (f"{breaching} of the last {self.evaluation_periods} {self.period // 60}-minute period(s) "
                f"[{shown}] breached ({words} the threshold {self.threshold:g}{counted})")
        if breaching >= self.datapoints_to_alarm:
            return AlarmState(self.name, ALARM, f"{over}; it alarms at {self.datapoints_to_alarm}",
                              now, self.description)
        if not present and self.treat_missing in ("missing", "ignore"):
            return AlarmState(self.name, INSUFFICIENT_DATA, f"no data in the last {self.evaluation_periods} "
                              f"period(s) of {self.period // 60} minute(s)", now, self.description)
        return AlarmState(self.name, OK, over, now, self.description)
