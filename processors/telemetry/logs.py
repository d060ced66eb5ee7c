"""The one way handlers get a Powertools Logger: structured JSON with customer data masked.

Masking sits in the formatter, after every key (extra=, append_keys, exception text) has been
merged into the record, so a call site that forgets about PII still cannot leak it. Powertools'
own data masking utility works on JSONPaths of a document shape known in advance (and needs
jsonpath-ng in the runtime); a log line has no fixed shape, so it is not used here.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter

from processors.telemetry.pii import mask_pii


class MaskingFormatter(LambdaPowertoolsFormatter):
    def serialize(self, log: dict[str, Any]) -> str:  # type: ignore[override]
        return super().serialize(mask_pii(log))


def make_logger(service: str, *, child: bool = False) -> Logger:
    """A Powertools Logger for `service` (the same name as its Metrics `service` dimension).

    ``child=True`` logs through the service's logger (its handler and masking formatter), for a
    module that runs inside another function (the delivery rule inside the reactor)."""
    if child:
        return Logger(service=service, child=True)
    return Logger(service=service, logger_formatter=MaskingFormatter())
