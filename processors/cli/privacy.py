"""`dynafold forget` and `dynafold personal-data`: erasure and a data subject's export.

Both answer through the composition root's ``PersonalData`` service, the one the admin route and
Shopify's privacy webhooks use: the local stack's (the running one, or the engine given) or the
deployed stack's (``--table-prefix <stack>-`` with AWS credentials allowed to use its keys).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from processors.cli.context import EXIT_OK, AddCommand

if TYPE_CHECKING:
    from processors.cli.context import Context


def cmd_forget(ctx: "Context", args: argparse.Namespace) -> int:
    from processors.cli.output import emit
    from processors.services.personal_data import valid_subject

    valid_subject(args.subject)  # bad input before any table is asked (exit 2)
    forgotten = ctx.root().personal_data.forget(
        args.subject, args.reason, "cli", dry_run=args.dry_run)  # NotFound: exit 4
    verb = "would destroy" if forgotten.dry_run else "destroyed"
    key = f"{verb} key {forgotten.key_id}" if forgotten.key_id else "no key left to destroy (already forgotten)"
    lines = [f"{forgotten.subject}: {key}; {len(forgotten.streams)} stream(s) hold its values, now [erased]"
             if not forgotten.dry_run else
             f"{forgotten.subject}: {key}; {len(forgotten.streams)} stream(s) hold its values"]
    if forgotten.refolded:
        lines.append(f"  rows refolded from the log: {', '.join(forgotten.refolded)}")
    if forgotten.dry_run:
        lines.append("  dry run: nothing changed")
    emit(forgotten.to_json(), as_json=ctx.as_json, human="\n".join(lines))
    return EXIT_OK


def cmd_personal_data(ctx: "Context", args: argparse.Namespace) -> int:
    from processors.cli.output import emit
    from processors.services.personal_data import valid_subject

    valid_subject(args.subject)
    export: dict[str, Any] = ctx.root().personal_data.export(args.subject).to_json()
    if args.output:
        Path(args.output).write_text(json.dumps(export, indent=1, sort_keys=True, ensure_ascii=False) + "\n")
        emit({"output": args.output, "values": len(export["values"])}, as_json=ctx.as_json,
             human=f"wrote {len(export['values'])} value(s) of {args.subject} to {args.output}")
        return EXIT_OK
    human = [f"{args.subject}: {len(export['values'])} value(s), {export['erased']} erased"
             + ("" if export["has_key"] else " (no key: forgotten, or never held)")]
    human += [f"  {v['time']}  {v['stream']} v{v['version']} {v['field']}: "
              f"{json.dumps(v['value'], ensure_ascii=False)}" for v in export["values"]]
    emit(export, as_json=ctx.as_json, human="\n".join(human))
    return EXIT_OK


def register(sub: Any, command: AddCommand, common: argparse.ArgumentParser) -> None:
    forget = command("forget", cmd_forget, "erase a data subject: destroy its key, so every value sealed "
                                           "with it reads [erased] (log, views, exports, backups)")
    forget.add_argument("subject", help="the data subject, e.g. inflow-customer:C-42 (see `dynafold types`)")
    forget.add_argument("--reason", required=True, help="the request this answers (kept in the log: no personal data)")
    forget.add_argument("--dry-run", action="store_true", help="say what would be destroyed and refolded")
    export = command("personal-data", cmd_personal_data, "every personal value held for a data subject "
                                                         "(a data request's export)")
    export.add_argument("subject")
    export.add_argument("--output", default=None, help="write the export (JSON) to this file")
