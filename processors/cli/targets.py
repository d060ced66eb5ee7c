"""`dynafold targets ...`: see and re-enable webhook targets that answered 410 Gone.

A target is disabled by a ``target disabled`` event in its stream (``target:<hash of the URL>``),
appended by the reactor; ``enable`` appends ``target enabled`` there, conditionally on the
version it read. Nothing is ever changed in place.
"""

from __future__ import annotations

import argparse
from typing import Any

from processors.cli.context import AddCommand, Context

SOURCE = "urn:dynafold:cli"


def cmd_status(ctx: "Context", args: argparse.Namespace) -> int:
    from processors.cli.output import emit
    from processors.services.targets import Targets

    status = Targets(ctx.store()).state(args.url)
    human = f"{status.target_url}: " + (f"DISABLED ({status.reason})" if status.disabled else "enabled")
    emit(status.to_dict(), as_json=ctx.as_json, human=human)
    return 0


def cmd_enable(ctx: "Context", args: argparse.Namespace) -> int:
    from processors.cli.output import emit
    from processors.services.targets import Targets

    done = Targets(ctx.store()).enable(args.url, reason=args.reason, enabled_by=args.by, source=SOURCE)
    human = (f"{done.target_url}: enabled again ({done.stream} v{done.version})" if done.appended
             else f"{done.target_url}: not disabled; nothing to do")
    emit(done.to_dict(), as_json=ctx.as_json, human=human)
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
