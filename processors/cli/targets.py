"""`dynafold targets ...`: see and re-enable webhook targets that answered 410 Gone.

A target is disabled by a ``target disabled`` event in its stream (``target:<hash of the URL>``),
appended by the reactor; ``enable`` appends ``target enabled`` there, conditionally on the
version it read. Nothing is ever changed in place.
"""

from __future__ import annotations

import argparse
from typing import Any
from urllib.parse import urlsplit

from events.delivery_policy import TARGET_ENABLED, disabled_by, target_stream
from events.deliveries import TargetEnabled
from events.envelope import NewEvent
from events.errors import DynafoldError
from events.store import NO_STREAM
from processors.cli.context import AddCommand, Context


SOURCE = "urn:dynafold:cli"


def _checked_url(url: str) -> str:
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise DynafoldError(f"not a webhook target URL: {url!r} (expected http(s)://host/path)")
    return url.strip()


def _status(ctx: "Context", url: str) -> dict[str, Any]:
    stream = target_stream(url)
    events = ctx.store().read_stream(stream)
    disabled = disabled_by(events)
    return {"target_url": url, "stream": stream, "version": events[-1].version if events else 0,
            "disabled": disabled is not None, "reason": disabled.reason if disabled else None}


def cmd_status(ctx: "Context", args: argparse.Namespace) -> int:
    from processors.cli.output import emit

    status = _status(ctx, _checked_url(args.url))
    human = f"{status['target_url']}: " + (f"DISABLED ({status['reason']})" if status["disabled"] else "enabled")
    emit(status, as_json=ctx.as_json, human=human)
    return 0


def cmd_enable(ctx: "Context", args: argparse.Namespace) -> int:
    from processors.cli.output import emit

    url = _checked_url(args.url)
    status = _status(ctx, url)
    if not status["disabled"]:
        emit({**status, "appended": False}, as_json=ctx.as_json, human=f"{url}: not disabled; nothing to do")
        return 0
    event = NewEvent(TARGET_ENABLED, TargetEnabled(target_url=url, reason=args.reason, enabled_by=args.by),
                     source=SOURCE)
    result = ctx.store().append(status["stream"], [event], status["version"] or NO_STREAM)
    emit({**status, "disabled": False, "reason": None, "appended": True, "version": result.last_version},
         as_json=ctx.as_json, human=f"{url}: enabled again ({status['stream']} v{result.last_version})")
    return 0


def register(sub: Any, command: AddCommand, common: argparse.ArgumentParser) -> None:
    """Add `dynafold targets status|enable URL` to the CLI (``command`` is build_parser's helper)."""
    targets = sub.add_parser("targets", help="webhook targets disabled after 410 Gone", parents=[common])
    actions = targets.add_subparsers(dest="targets_command", required=True, parser_class=type(targets))
    p = command("status", cmd_status, "whether deliveries to a target URL are disabled", actions)
    p.add_argument("url")
    p = command("enable", cmd_enable, "re-enable a disabled target URL (appends target_enabled)", actions)
    p.add_argument("url")
    p.add_argument("--reason", default=None, help="why it may receive deliveries again")
    p.add_argument("--by", default=None, help="who re-enabled it")
