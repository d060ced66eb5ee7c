"""The rest of the local stack beside the stream consumers: the HTTP API, the error monitor, secrets.

Each calls the very handler Lambda runs (the API through a loopback server shaped like API
Gateway, the monitor with a scheduled event as EventBridge would), with its output routed to its
log file like the consumers'. Locally the monitor's email goes to an outbox file and orders are
re-read from the log unless InFlow is configured.
"""

from __future__ import annotations

import json
import logging
import os
import secrets as random_secrets
import threading
import uuid
from collections.abc import Callable
from datetime import datetime, timezone
from dataclasses import replace
from pathlib import Path
from typing import Any

from processors.api.app import make_handler as make_api_handler
from processors.api.deps import ApiSettings
from processors.services.error_monitor import MonitorSettings
from processors.handlers.error_monitor import make_handler as make_monitor_handler
from processors.local.lambda_logs import LambdaLogRouter
from processors.local.http_server import LocalApiServer
from processors.local.outbox import OutboxMailer
from processors.adapters.secrets import ROLES, Secrets
from processors.local.stream_runner import LambdaContext
from processors.adapters.webhook_signing import new_secret

LOGGER_NAMES = ("ingest", "error-monitor", "console")
logger = logging.getLogger(__name__)
_GENERATED = ("shopify", "inflow", "signing", "admin_api_key")


def local_secrets(state_dir: Path, env: dict[str, str] | None = None) -> tuple[Secrets, Path]:
    """Secrets from the environment, the missing ones generated once into <state_dir>/secrets.json (0600).

    The file is how a developer signs test webhooks and calls admin routes; nothing prints values.
    """
    env = dict(os.environ if env is None else env)
    path = state_dir / "secrets.json"
    stored: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}
    missing = [role for role in _GENERATED if not env.get(ROLES[role]) and role not in stored]
    if missing:
        for role in missing:
            token = random_secrets.token_urlsafe(32)
            stored[role] = new_secret(random_secrets.token_bytes(32)) if role == "signing" else token
        state_dir.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as out:
            json.dump(stored, out, indent=1, sort_keys=True)
    values = {role: env.get(ROLES[role]) or stored.get(role) for role in ROLES}
    return Secrets.of(**values), path


class LocalApi:
    function_name = "dynafold-ingest"

    def __init__(self, stack: Any, secrets: Secrets, settings: ApiSettings | None = None,
                 logs: LambdaLogRouter | None = None, **deps: Any) -> None:
        # The root's own dependencies (the stack's store and clock); only secrets and settings are the caller's.
        base = stack.root.api_deps
        self.deps = replace(base, secrets=secrets, settings=settings or base.settings, **deps)
        handler = stack.root.per_invocation(make_api_handler(self.deps))  # as the root's "ingest" handler
        self.handler = logs.route(self.function_name, handler) if logs else handler

    def serve(self, port: int = 0) -> LocalApiServer:
        return LocalApiServer(self.handler, port, self.function_name)


class LocalConsole:
    """The console function on its own loopback port, as ConsoleFunction is its own function on AWS."""

    function_name = "dynafold-console"

    def __init__(self, stack: Any, secrets: Secrets, logs: LambdaLogRouter | None = None) -> None:
        from processors.console.app import make_handler as make_console_handler

        self.deps = replace(stack.root.console_deps, secrets=secrets)
        handler = make_console_handler(self.deps)
        self.handler = logs.route(self.function_name, handler) if logs else handler

    def serve(self, port: int = 0) -> LocalApiServer:
        return LocalApiServer(self.handler, port, self.function_name)


class LocalMonitor:
    """The scheduled error monitor; ``clock`` lets the demo and tests move time on."""

    function_name = "dynafold-error-monitor"

    def __init__(self, stack: Any, outbox: Path, logs: LambdaLogRouter | None = None,
                 clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
                 settings: MonitorSettings | None = None) -> None:
        self.outbox = outbox
        self.monitor = stack.root.build_error_monitor(OutboxMailer(outbox), clock, settings)
        handler = stack.root.per_invocation(make_monitor_handler(self.monitor))  # as the root's own
        self._handler = logs.route(self.function_name, handler) if logs else handler
        self._clock = clock

    def run(self) -> dict[str, int]:
        """One scheduled invocation, with the event EventBridge would send."""
        event = {"id": str(uuid.uuid4()), "detail-type": "Scheduled Event", "source": "aws.events",
                 "time": self._clock().strftime("%Y-%m-%dT%H:%M:%SZ"), "detail": {}}
        return self._handler(event, LambdaContext.local(self.function_name, 300))["outcomes"]

    def run_every(self, interval: float, stop: threading.Event) -> threading.Thread:
        def loop() -> None:
            while not stop.wait(interval):
                try:
                    self.run()
                except Exception:  # like a failed scheduled invocation: the next tick retries
                    logger.exception("error monitor run failed")

        thread = threading.Thread(target=loop, name="error-monitor", daemon=True)
        thread.start()
        return thread
