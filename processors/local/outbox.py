"""The one email, locally: an outbox file (`dynafold outbox` shows it) in place of SES."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from events.envelope import format_time
from events.orders import NotificationChannel
from processors.local.files import append_line, read_json_lines


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
