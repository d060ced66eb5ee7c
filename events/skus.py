"""The one rule for a SKU, checked wherever a SKU enters (issue 18 §4). Pure.

A SKU becomes the stream key ``sku:<SKU>``; as it is, the partition key of the inventory and
returns views and of the alerts' by-sku index; a path parameter of the count, buffer and read
routes; and the middle of those routes' idempotency keys (``admin:count:<SKU>:<Idempotency-Key>``).
A SKU that does not fit all of them would be taken once and then refused by every later append,
row or request for it, so it is refused where it enters: webhook payloads (order lines, refund
lines, variants, inventory items), the admin routes (count, buffer, items, import) and the CLI's
``shopify map|import``.

A usable SKU is not blank, holds no control character (C0, DEL, C1: they cannot be stream keys, and
are invisible in every listing), is valid UTF-8 (no lone surrogate), has at most ``MAX_SKU_CHARS``
characters (the catalogue's stream-key rule) and at most ``MAX_SKU_BYTES`` bytes in UTF-8.
DynamoDB counts key sizes in bytes (a partition key 2,048, a sort key 1,024): a SKU gets the
sort-key budget, as every path parameter does (``processors.api.app.MAX_PATH_PARAM_BYTES``), which
leaves room for the prefix of its stream key and for a 200-character Idempotency-Key beside it.

The stored event models keep their older, looser ``sku`` fields: history written under them must
still decode (``events.catalogue.decode`` validates on read). The rule applies to new input only.
"""

from __future__ import annotations

import unicodedata
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, WithJsonSchema
from pydantic_core import PydanticCustomError

from events.catalogue import MAX_STREAM_KEY_CHARS

_PREFIX = "sku:"  # a SKU's stream
MAX_SKU_CHARS = MAX_STREAM_KEY_CHARS
MAX_SKU_BYTES = 1024  # tests/unit/test_sku_rule.py derives that it fits every key a SKU becomes part of


def is_blank(value: Any) -> bool:
    """No SKU at all: absent (None), empty or only whitespace."""
    return value is None or (isinstance(value, str) and not value.strip())


def sku_problem(sku: str) -> str | None:
    """Why ``sku`` cannot be a SKU, or None when it can."""
    if is_blank(sku):
        return "must not be blank"
    control = next((char for char in sku if unicodedata.category(char) == "Cc"), None)
    if control is not None:
        return f"must not contain a control character (U+{ord(control):04X})"
    try:
        size = len(sku.encode("utf-8"))
    except UnicodeEncodeError:
        return "must be valid UTF-8 (it holds a lone surrogate)"
    if len(sku) > MAX_SKU_CHARS:
        return f"is {len(sku)} characters; a SKU has at most {MAX_SKU_CHARS}"
    if size > MAX_SKU_BYTES:
        return (f"is {size} bytes in UTF-8; a SKU has at most {MAX_SKU_BYTES} "
                f"(it becomes part of DynamoDB keys, such as its stream {_PREFIX}<SKU>)")
    return None


def checked_sku(sku: str) -> str:
    """``sku`` unchanged if usable; a validation error saying why not (pydantic reports it on the field)."""
    problem = sku_problem(sku)
    if problem is not None:
        raise PydanticCustomError("sku", "SKU {problem}", {"problem": problem})
    return sku


def _blank_is_none(value: Any) -> Any:
    return None if is_blank(value) else value


_NO_CONTROLS = "^[^\\u0000-\\u001f\\u007f-\\u009f]*$"
_RULE = f"no control characters, at most {MAX_SKU_CHARS} characters and {MAX_SKU_BYTES} bytes in UTF-8"
_SCHEMA = {"type": "string", "minLength": 1, "maxLength": MAX_SKU_CHARS, "pattern": _NO_CONTROLS,
           "description": f"a SKU: not blank, {_RULE}"}
_OPTIONAL_SCHEMA = {"anyOf": [{"type": "string", "maxLength": MAX_SKU_CHARS, "pattern": _NO_CONTROLS},
                              {"type": "null"}],
                    "description": f"blank or absent: no SKU; else a SKU: {_RULE}"}
# A SKU an operator gives (admin routes, imports, the CLI): required and usable.
Sku = Annotated[str, AfterValidator(checked_sku), WithJsonSchema(_SCHEMA)]
# A SKU a Shopify payload may carry: blank or absent is "no SKU" (the line is skipped, the item
# unmapped); present, it must be usable, or the whole webhook is refused before anything is appended.
OptionalSku = Annotated[Sku | None, BeforeValidator(_blank_is_none), WithJsonSchema(_OPTIONAL_SCHEMA)]
