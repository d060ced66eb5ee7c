"""`dynafold shopify map|import|item|adopt`: onboarding an existing Shopify catalogue.

New items are learned from products/* and inventory_items/* webhooks; ``map`` and ``import`` set
what a shop had before dynafold was installed (e.g. from an export of its variants). ``adopt``
takes Shopify's level as the first physical count of SKUs never counted here, which are never
pushed until counted (issue 18 §1): dry run first.
"""

from __future__ import annotations

import argparse
import getpass
from pathlib import Path
from typing import Any

from events.errors import DynafoldError, NotFound
from events.shopify_items import current_sku, current_variant, item_stream
from processors.services.shopify_items import checked_row, parse_import, set_items
from processors.cli.context import EXIT_FAILED, EXIT_OK, AddCommand, Context


def cmd_map(ctx: "Context", args: argparse.Namespace) -> int:
    from processors.cli.output import emit

    row = checked_row({"inventory_item_id": args.inventory_item_id, "sku": args.sku, "variant_id": args.variant_id},
                      "arguments")
    [answer] = set_items(ctx.store(), [row], "admin", "cli")
    emit(answer, as_json=ctx.as_json,
         human=f"{row[0]} -> {row[1]}" + ("" if answer["changed"] else " (already so)"))
    return 0


def cmd_import(ctx: "Context", args: argparse.Namespace) -> int:
    from processors.cli.output import emit

    path = Path(args.file)
    fmt = args.format or path.suffix.lstrip(".").lower()
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise DynafoldError(f"cannot read {path}: {error.strerror}") from None
    rows = parse_import(text, fmt)  # every row is checked before anything is appended
    answers = set_items(ctx.store(), rows, "import", f"import:{path.name}")
    changed = sum(1 for a in answers if a["changed"])
    emit({"rows": len(rows), "changed": changed, "items": answers}, as_json=ctx.as_json,
         human=f"{len(rows)} item(s) read, {changed} mapping(s) changed")
    return 0


def cmd_item(ctx: "Context", args: argparse.Namespace) -> int:
    from processors.cli.output import emit

    row = checked_row({"inventory_item_id": args.inventory_item_id, "sku": "-"}, "arguments")
    events = ctx.store().read_stream(item_stream(row[0]))
    if not events:
        raise NotFound(f"inventory item {row[0]} (no webhook or mapping named it)")
    answer = {"inventory_item_id": row[0], "sku": current_sku(events), "variant_id": current_variant(events),
              "events": len(events)}
    emit(answer, as_json=ctx.as_json, human=f"{row[0]} -> {answer['sku'] or '(no SKU)'}")
    return 0


def cmd_adopt(ctx: "Context", args: argparse.Namespace) -> int:
    from processors.cli.output import emit, table

    from_items = [checked_row({"inventory_item_id": item, "sku": "-"}, "--from-item")[0] for item in args.from_item]
    report = ctx.root().shopify_adoption.adopt(None if args.all else args.sku, _operator(), from_items,
                                               dry_run=args.dry_run)
    rows = [{**row, "status": "refused (below)" if row["refused"] else "would adopt" if report.dry_run
             else f"adopted (v{row.get('version')})"} for row in report.rows]
    would = sum(1 for row in report.rows if not row["refused"])
    human = "\n".join([table(rows, ("sku", "physical", "from_item", "levels", "then", "status"), max_width=80),
                       *(f"{row['sku']}: refused: {row['refused']}" for row in report.rows if row["refused"]),
                       (f"would adopt {would} SKU(s) (dry run: nothing recorded)" if report.dry_run
                        else f"adopted {report.adopted} SKU(s)") + f", refused {report.refused}"])
    emit(report.to_dict(), as_json=ctx.as_json, human=human)
    return EXIT_FAILED if report.refused else EXIT_OK


def _operator() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):  # no user name in this environment
        return "cli"


def register(sub: Any, command: AddCommand, common: argparse.ArgumentParser) -> None:
    shopify = sub.add_parser("shopify", help="onboarding a Shopify catalogue: the item -> SKU map, adopting levels",
                             parents=[common])
    actions = shopify.add_subparsers(dest="shopify_command", required=True, parser_class=type(shopify))
    p = command("map", cmd_map, "say which SKU a Shopify inventory item is", actions)
    p.add_argument("inventory_item_id")
    p.add_argument("sku")
    p.add_argument("--variant-id", default=None)
    p = command("import", cmd_import, "bulk-map items from a CSV (inventory_item_id,sku[,variant_id]) or JSON file",
                actions)
    p.add_argument("file")
    p.add_argument("--format", choices=("csv", "json"), default=None, help="default: the file's extension")
    p = command("item", cmd_item, "which SKU an inventory item is", actions)
    p.add_argument("inventory_item_id")
    p = command("adopt", cmd_adopt, "take Shopify's level as the first physical count of SKUs never counted here "
                "(they are never pushed until counted); dry run first", actions)
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--sku", nargs="+", metavar="SKU", help="these SKUs, all or none")
    which.add_argument("--all", action="store_true", help="every uncounted SKU Shopify lists; refusals are reported")
    p.add_argument("--from-item", action="append", default=[], metavar="ITEM",
                   help="for a SKU whose items disagree: the inventory item whose level to take (repeatable)")
    p.add_argument("--dry-run", action="store_true", help="print what would be recorded; record nothing")
