"""The one way handlers get a Powertools Logger: structured JSON with customer data masked.

Masking sits in the formatter, after every key (extra=, append_keys, exception text) has been
merged into the record, so a call site that forgets about PII still cannot leak it. Powertools'
own data masking utility works on JSONPaths of a document shape known in advance (and needs
jsonpath-ng in the runtime); a log line has no fixed shape, so it is not used here.
"""

from __future__ import annotations

import io
import logging
import sys
from typing import Any, TextIO

from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter

from processors.telemetry.pii import mask_pii


class MaskingFormatter(LambdaPowertoolsFormatter):
    def serialize(self, log: dict[str, Any]) -> str:  # type: ignore[override]
        return super().serialize(mask_pii(log))


class LogOutput(io.TextIOBase):
    """Where the loggers write: the process's stdout at the moment of writing (on Lambda, the log
    group), unless ``target`` says otherwise: the CLI sends them to stderr, so that what a command
    prints on stdout is its answer alone (one JSON document with --json)."""

    def __init__(self) -> None:
        super().__init__()
        self.target: TextIO | None = None

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        return (self.target or sys.stdout).write(text)

    def flush(self) -> None:
        (self.target or sys.stdout).flush()


LOG_OUTPUT = LogOutput()


def make_logger(service: str, *, child: bool = False) -> Logger:
    """A Powertools Logger for `service` (the same name as its Metrics `service` dimension).

    ``child=True`` logs through the service's logger (its handler and masking formatter), for a
    module that runs inside another function (the delivery rule inside the reactor)."""
    if child:
        return Logger(service=service, child=True)
    return Logger(service=service, logger_formatter=MaskingFormatter(),
                  logger_handler=logging.StreamHandler(LOG_OUTPUT))
