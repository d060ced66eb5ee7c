"""Event: its data and envelope, its hash and whether the chain verifies to it, and its trace: the
events that caused it, up to the request it came from (whatever their correlation), what it caused,
and the rest of its request, listed and drawn as a graph (the event trace service, as `dynafold
audit trace` and `GET /trace/{id}` answer)."""

from __future__ import annotations

import json

from events import catalogue
from events.chain import verify_items
from events.checkpoints import Checkpoint
from events.errors import NotFound
from events.items import from_item
from events.personal import personal_fields
from events.sealing import reveal_of
from processors.console.context import Context
from processors.console.graph import layout
from processors.console.web import Page, PageError
from projections.causation import ASKED, CAUSE, EFFECT, SAME_REQUEST


def page(ctx: Context) -> Page:
    stream = f"{ctx.params['category']}:{ctx.params['key']}"
    catalogue.stream_category(stream)
    text = ctx.params["version"]
    if not text.isascii() or not text.isdigit() or not 0 < int(text) < 10**12:
        raise PageError(400, f"version {text[:20]!r} is not a positive whole number")
    version = int(text)
    store = ctx.deps.store
    items = list(store.read_items(stream, 1, version))
    if len(items) < version or int(items[-1]["version"]["N"]) != version:
        raise NotFound(f"event {stream} v{version}")
    item = items[-1]
    event = from_item(item)
    # People see what the CLI's `read` shows: personal values revealed, or [erased] after a forget
    # (the chain below is verified over the stored, sealed bytes).
    reveal = reveal_of(store)
    sealed = reveal is not None and bool(personal_fields(type(event.data)))
    # The witnesses kept apart from the log (its sealed checkpoint, a head an earlier release
    # recorded) that reach no further than this event: the chain up to it must pass through them.
    witnesses = [w.witness() if isinstance(w, Checkpoint) else w
                 for w in (store.sealed_checkpoint(stream), store.recorded_head(stream)) if w is not None]
    chain = verify_items(stream, items, [w for w in witnesses if w.version <= version])
    replaced = any(w.version == version and w.hash not in (None, event.hash) for w in witnesses)
    trace = ctx.deps.services.event_trace()(event.id)
    nodes = trace.facts["events"]
    related = {relation: [n for n in nodes if n["relation"] == relation]
               for relation in (CAUSE, ASKED, EFFECT, SAME_REQUEST)}
    return ctx.page("event.html", section="streams", title=f"{stream} v{version}", event=event,
                    stream=stream, category=ctx.params["category"], key=ctx.params["key"],
                    data=reveal(event).data.model_dump(mode="json") if reveal is not None and sealed
                    else json.loads(item["data"]["S"]), sealed=sealed,
                    stored_type=item["type"]["S"],
                    verified=chain.ok and chain.events == version and not replaced,
                    chain=chain, replaced=replaced, trace=trace, related=related,
                    cause_missing=bool(event.causation_id) and not related[CAUSE],
                    graph=layout(nodes), trace_cut=trace.facts["truncated"])
