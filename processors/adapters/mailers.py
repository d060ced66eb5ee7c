"""The one email: SES on AWS (locally an outbox file, ``processors.local.outbox``)."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from events.orders import NotificationChannel


class Mailer(Protocol):
    channel: NotificationChannel  # as recorded in `errors notified`: "email" or "outbox" ("alert": MailUnconfigured)

    def send(self, subject: str, body: str) -> str:
        """Send to the configured recipients; returns the provider's message id. Raises on failure."""


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


@dataclass(frozen=True)
class MailUnconfigured:
    """No email settings: the monitor gives its notice as a `notification_unconfigured` alert instead.

    The shipped samconfig.toml deploys without NotificationEmail / SenderEmail (the template's Rules
    allow both or neither), so this is a supported configuration, not an error: the monitor must
    still claim, record and tell someone (issue 13 §3)."""

    reason: str
    channel = "alert"


def mailer_from_env(env: Mapping[str, str] = os.environ) -> Mailer | MailUnconfigured:
    recipients = [r.strip() for r in env.get("DYNAFOLD_NOTIFY_EMAIL", "").split(",") if r.strip()]
    sender = env.get("DYNAFOLD_SENDER_EMAIL", "").strip()
    missing = [f"{parameter} ({variable})" for parameter, variable, value in
               (("NotificationEmail", "DYNAFOLD_NOTIFY_EMAIL", recipients),
                ("SenderEmail", "DYNAFOLD_SENDER_EMAIL", sender)) if not value]
    if missing:
        return MailUnconfigured(f"{' and '.join(missing)} not set, so no email can be sent")
    import boto3

    return SesMailer(boto3.client("sesv2"), sender, recipients)
