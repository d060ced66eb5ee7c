"""Metrics with a dimension of their own (event type, view, severity), beside a function's Metrics.

Powertools' ``Metrics`` shares one dimension set per flush; a count that is split by a dimension
goes out as its own EMF line through ``single_metric``, with the function's service dimension
so dashboards and alarms find it next to the others.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from aws_lambda_powertools import single_metric
from aws_lambda_powertools.metrics import MetricUnit

NAMESPACE = os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "dynafold")


def count_by(name: str, service: str, dimensions: Mapping[str, str], value: float = 1) -> None:
    with single_metric(name=name, unit=MetricUnit.Count, value=value, namespace=NAMESPACE,
                       default_dimensions={"service": service}) as metric:
        for key, dimension in dimensions.items():
            metric.add_dimension(key, dimension)
