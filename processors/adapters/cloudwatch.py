"""CloudWatch on AWS: metric series (GetMetricData) and the stack's alarms in ALARM (DescribeAlarms),
the AWS side of `dynafold status` (processors/services/status.py).

GetMetricData answers each query's statistic per period, newest first unless asked otherwise, in
pages (NextToken) that may split one query's datapoints:
https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_GetMetricData.html
DescribeAlarms filters by name prefix and state, metric and composite alarms alike:
https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_DescribeAlarms.html
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from typing import Any

from projections.health.alarms import AlarmState
from projections.health.metrics import MetricQuery, Point, Series
from projections.health.status import AlarmsReading, Position

MAX_QUERIES = 500  # GetMetricData's limit per request


class CloudWatchMetrics:
    def __init__(self, client: Callable[[], Any]) -> None:
        self._client = client

    def series(self, queries: Sequence[MetricQuery], start: datetime, end: datetime,
               period: int) -> dict[str, Series]:
        found: dict[str, list[Point]] = {query.id: [] for query in queries}
        for first in range(0, len(queries), MAX_QUERIES):
            request: dict[str, Any] = {
                "MetricDataQueries": [_query(q, period) for q in queries[first:first + MAX_QUERIES]],
                "StartTime": start, "EndTime": end, "ScanBy": "TimestampAscending"}
            while True:
                page = self._client().get_metric_data(**request)
                for result in page.get("MetricDataResults", []):
                    pairs = zip(result["Timestamps"], result["Values"], strict=True)
                    found[result["Id"]].extend(Point(_utc(at), float(value)) for at, value in pairs)
                if not page.get("NextToken"):
                    break
                request["NextToken"] = page["NextToken"]
        return {key: Series(tuple(sorted(points, key=lambda p: p.time)), period) for key, points in found.items()}


def _query(query: MetricQuery, period: int) -> dict[str, Any]:
    return {"Id": query.id, "ReturnData": True, "MetricStat": {
        "Metric": {"Namespace": query.namespace, "MetricName": query.name,
                   "Dimensions": [{"Name": name, "Value": value} for name, value in query.dimensions]},
        "Period": period, "Stat": query.stat}}


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


class CloudWatchAlarms:
    """The stack's alarms (their names start with ``<stack>-``) that are in ALARM now."""

    def __init__(self, client: Callable[[], Any], prefix: str) -> None:
        self._client = client
        self.prefix = prefix

    def in_alarm(self, now: datetime) -> AlarmsReading:
        found: list[AlarmState] = []
        request: dict[str, Any] = {"AlarmNamePrefix": self.prefix, "StateValue": "ALARM",
                                   "AlarmTypes": ["MetricAlarm", "CompositeAlarm"]}
        while True:
            page = self._client().describe_alarms(**request)
            for alarm in [*page.get("MetricAlarms", []), *page.get("CompositeAlarms", [])]:
                # Both filters checked again: moto (the tests' CloudWatch) applies only the first one given.
                if alarm.get("StateValue") != "ALARM" or not alarm["AlarmName"].startswith(self.prefix):
                    continue
                updated = alarm.get("StateUpdatedTimestamp")
                found.append(AlarmState(alarm["AlarmName"], alarm["StateValue"], alarm.get("StateReason", ""),
                                        _utc(updated) if updated else None, alarm.get("AlarmDescription", "")))
            if not page.get("NextToken"):
                break
            request["NextToken"] = page["NextToken"]
        found.sort(key=lambda state: state.name)
        return AlarmsReading(tuple(found), f"CloudWatch alarms {self.prefix}*")


class MappingPositions:
    """``ReaderPositions`` on AWS: none. Lambda keeps a stream mapping's position to itself; the
    reader's lag is what Lambda reports of it, IteratorAge (read as a metric)."""

    where = "Lambda's own state (it keeps an event source mapping's position to itself)"

    def read(self, now: datetime) -> dict[str, Position]:
        return {}
