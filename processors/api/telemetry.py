"""The ingest function's Powertools logger and EMF metrics (one of each per process)."""

from __future__ import annotations

import os

from aws_lambda_powertools import Logger, Metrics

SERVICE = "ingest"
logger = Logger(service=SERVICE)
metrics = Metrics(namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "dynafold"), service=SERVICE)
