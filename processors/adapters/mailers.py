"""The one email: SES on AWS, an outbox file locally (`dynafold outbox` shows it)."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Protocol

from events.envelope import format_time
from events.orders import NotificationChannel
from processors.adapters.files import append_line, read_json_lines


class Mailer(Protocol):
    channel: NotificationChannel  # as recorded in `errors notified`

    def send(self, subject: str, body: str) -> str:
        """Send to the configured recipients; returns the provider's message id. Raises on failure."""


class OutboxMailer:
    channel: NotificationChannel = "outbox"

    def __init__(self, path: Path, recipients: Sequence[str] = ("orders@localhost",)) -> None:
        self.path = path
        self._recipients = list(recipients)

    def send(self, subject: str, body: str) -> str:
        message_id = str(uuid.uuid4())
        line = {"id": message_id, "time": format_time(datetime.now(timezone.utc)), "to": self._recipients,
                "subject": subject, "body": body}
        append_line(self.path, json.dumps(line, ensure_ascii=False))
        return message_id


def read_outbox(path: Path) -> list[dict[str, Any]]:
    return read_json_lines(path)


class SesMailer:
    channel: NotificationChannel = "email"

    def __init__(self, client: Any, sender: str, recipients: Sequence[str]) -> None:
        self._client = client
        self._sender = sender
        self._recipients = list(recipients)

    def send(self, subject: str, body: str) -> str:
        response = self._client.send_email(
            FromEmailAddress=self._sender,
            Destination={"ToAddresses": self._recipients},
            Content={"Simple": {"Subject": {"Data": subject, "Charset": "UTF-8"},
                                "Body": {"Text": {"Data": body, "Charset": "UTF-8"}}}},
        )
        return str(response["MessageId"])


def mailer_from_env(env: Mapping[str, str] = os.environ) -> Mailer:
    recipients = [r.strip() for r in env.get("DYNAFOLD_NOTIFY_EMAIL", "").split(",") if r.strip()]
    sender = env.get("DYNAFOLD_SENDER_EMAIL")
    if not (recipients and sender):
        raise RuntimeError("set DYNAFOLD_NOTIFY_EMAIL (recipients) and DYNAFOLD_SENDER_EMAIL for the error emails")
    import boto3

    return SesMailer(boto3.client("sesv2"), sender, recipients)
