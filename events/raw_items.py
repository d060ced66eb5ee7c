"""DynamoDB reads whose items skip botocore's response parser: the body is decoded by json.loads.

botocore turns every response into Python by walking the service model shape by shape, so each
attribute of each item costs a structure, a map and a string handler. For a Query of a 1,000-event
stream (one 636 KB page) that walk takes most of the call (~160 ms, where ``json.loads`` of the
same body takes ~18 ms), and it produces nothing the body does not already say: in DynamoDB's JSON
protocol an item *is* the nested ``{"S": ...}``/``{"N": ...}`` shape the parser would build, for
every attribute type but the binary ones (``B``, ``BS``, which botocore base64-decodes into bytes).

So a read made through ``call`` hands botocore an empty body to parse and returns the decoded
body itself. Only for tables whose items carry no binary attributes: the event table (S and N,
``events.items``) and the view tables (``projections.view_store`` writes S, N, BOOL, NULL, M, L).
Everything else stays botocore's: the request (serialising, signing, retries), responses of other
calls on the same shared client (the switch is a context variable, per thread, per call), and
every error (a status of 300 or more is parsed as usual, so exceptions stay as they are).
"""

from __future__ import annotations

import json
from contextvars import ContextVar
from typing import Any

_RAW: ContextVar[bool] = ContextVar("dynafold_raw_items", default=False)
_HANDLER_ID = "dynafold-raw-items"


def _keep_body(response_dict: dict[str, Any], customized_response_dict: dict[str, Any], **_: Any) -> None:
    """botocore's ``before-parse`` event: take the body as decoded JSON, leave the parser ``{}``."""
    if not _RAW.get() or response_dict.get("status_code", 500) >= 300:
        return
    customized_response_dict.update(json.loads(response_dict["body"]))
    response_dict["body"] = b"{}"


def call(client: Any, operation: str, **request: Any) -> dict[str, Any]:
    """``client.<operation>(**request)`` (``query``, ``get_item``, ``batch_get_item``, ...) with the
    response's body as ``json.loads`` gives it. A client without botocore's event system (a test's
    stand-in) answers as it would anyway: parsed or raw, the items are the same."""
    events = getattr(getattr(client, "meta", None), "events", None)
    if events is not None:  # registered once per client: botocore keeps one handler per unique id
        events.register("before-parse.dynamodb", _keep_body, unique_id=_HANDLER_ID)
    token = _RAW.set(True)
    try:
        response: dict[str, Any] = getattr(client, operation)(**request)
        return response
    finally:
        _RAW.reset(token)
