"""``AlarmsReader`` locally: template.yaml's alarms, evaluated over the local metrics.

Locally there is no CloudWatch to hold alarm states. An always-empty list would say nothing and
would hide an alarm that watches a metric nobody emits, so each single-metric alarm of the template
is evaluated as CloudWatch would (projections.health.alarms.AlarmRule) over the metrics the local
stack reports: everything the functions emit as EMF, and of AWS's own metrics what the stand-ins
report (IteratorAge, the failure queue's oldest message age; processors/local/platform_metrics.py).
What cannot be evaluated here is listed with the reason: alarms on metrics only AWS produces
(Lambda Errors/Throttles/Invocations, queue depths, DynamoDB capacity) and metric-math alarms.
Names and dimensions resolve as CloudFormation would for a stack named ``stack``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from processors.local.emf_metrics import EmfMetrics
from processors.operations.template import Tag, load_template
from projections.health.alarms import ALARM, AlarmRule
from projections.health.metrics import MetricQuery, series_of
from projections.health.status import AlarmsReading


class Unresolvable(ValueError):
    """A template value this stack cannot name locally."""


class TemplateAlarms:
    def __init__(self, metrics: EmfMetrics, *, stack: str, namespace: str, queues: Mapping[str, str],
                 template: Mapping[str, Any] | None = None) -> None:
        self.metrics = metrics
        self.stack = stack
        self.namespace = namespace
        self.queues = dict(queues)  # the template's queue logical id -> its local stand-in's name
        self._template = template

    @property
    def template(self) -> Mapping[str, Any]:
        return self._template if self._template is not None else load_template()

    def rules(self) -> tuple[list[AlarmRule], list[str]]:
        """(the alarms evaluated here, "<name>: why not" for the others)."""
        rules: list[AlarmRule] = []
        skipped: list[str] = []
        for index, (logical_id, resource) in enumerate(sorted(self.template.get("Resources", {}).items())):
            if resource.get("Type") != "AWS::CloudWatch::Alarm":
                continue
            props = resource.get("Properties") or {}
            name = self._value(props.get("AlarmName", logical_id))
            try:
                rules.append(self._rule(f"a{index}", name, props))
            except Unresolvable as why:
                skipped.append(f"{name}: {why}")
        return rules, skipped

    def _rule(self, query_id: str, name: str, props: Mapping[str, Any]) -> AlarmRule:
        if "Metrics" in props:
            raise Unresolvable("a metric-math alarm (evaluated on AWS only)")
        if "Statistic" not in props:
            raise Unresolvable("an extended statistic (evaluated on AWS only)")
        namespace, metric = self._value(props["Namespace"]), props["MetricName"]
        if not self.metrics.provides(namespace, metric):
            raise Unresolvable(f"{namespace} {metric} is reported on AWS only")
        dimensions = {d["Name"]: self._value(d["Value"]) for d in props.get("Dimensions", [])}
        query = MetricQuery.of(query_id, namespace, metric, dimensions, props["Statistic"])
        periods = int(props["EvaluationPeriods"])
        return AlarmRule(name, " ".join(str(props.get("AlarmDescription", "")).split()), query, int(props["Period"]),
                         periods, int(props.get("DatapointsToAlarm", periods)), float(props["Threshold"]),
                         props["ComparisonOperator"], props.get("TreatMissingData", "missing"))

    def _value(self, value: Any) -> str:
        """A literal, or the intrinsic as this stack resolves it."""
        if not isinstance(value, Tag):
            return str(value)
        if value.name == "Sub" and isinstance(value.value, str):
            return value.value.replace("${AWS::StackName}", self.stack)
        if value.name == "Ref" and value.value == "MetricsNamespace":
            return self.namespace
        if value.name == "Ref":  # a function's Ref is its name
            resource = self.template.get("Resources", {}).get(value.value, {})
            if resource.get("Type") == "AWS::Serverless::Function":
                return self._value(resource["Properties"]["FunctionName"])
        if value.name == "GetAtt":
            logical_id, _, attribute = str(value.value).partition(".")
            if attribute == "QueueName" and logical_id in self.queues:
                return self.queues[logical_id]
        raise Unresolvable(f"!{value.name} {value.value} has no local counterpart")

    def in_alarm(self, now: datetime) -> AlarmsReading:
        rules, skipped = self.rules()
        longest = max((rule.period * rule.evaluation_periods for rule in rules), default=0)
        samples = list(self.metrics.samples(now - timedelta(seconds=longest), now))  # the logs read once
        found = []
        for rule in rules:
            start = now - timedelta(seconds=rule.period * rule.evaluation_periods)
            series = series_of(samples, rule.query, start, now, rule.period)
            values: list[float | None] = [None] * rule.evaluation_periods
            for point in series.points:
                values[int((point.time - start).total_seconds() // rule.period)] = point.value
            state = rule.evaluate(values, now)
            if state.state == ALARM:
                found.append(state)
        return AlarmsReading(tuple(found), f"template.yaml's {len(rules)} single-metric alarms on local metrics, "
                                           f"evaluated over {self.metrics}", tuple(skipped))
