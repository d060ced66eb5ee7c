"""The console function's Powertools logger (customer data masked), one per process."""

from __future__ import annotations

from processors.telemetry.logs import make_logger

SERVICE = "console"
logger = make_logger(SERVICE)
