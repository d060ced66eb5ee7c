"""The ingest function's Powertools logger (customer data masked) and EMF metrics, one of each per process."""

from __future__ import annotations

import os

from aws_lambda_powertools import Metrics

from processors.telemetry.logs import make_logger

SERVICE = "ingest"
logger = make_logger(SERVICE)
metrics = Metrics(namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "dynafold"), service=SERVICE)
