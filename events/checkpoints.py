"""Sealed checkpoints: how far each stream's appends reached, recorded off the append path. Pure.

A hash chain proves every link but not that the last links are still there: a stream cut short
is an intact, shorter chain. Earlier releases wrote the stream's head in every append's
transaction (four write units for a one-event append instead of one). Checkpoints record the
same fact after the append, from what DynamoDB itself recorded, where no role of the stack can
lower it. Why that is sound:

1. **The change stream records every append.** DynamoDB writes each item-level change of the
   event table to its stream exactly once, in order per item; a later removal is a record of its
   own and takes nothing back. No stack role can switch the stream off or replace the table
   (``EventLogGuardPolicy`` denies ``UpdateTable``, ``DeleteTable``, restores and imports).
2. **The projector seals what the stream delivered.** For each stream in a batch it seals the
   highest version *inserted* (``INSERT`` records only): stream, version, hash and event id as
   the record's new image carries them, not as the table holds them now. So an event deleted or
   overwritten before its seal is still sealed with what was appended. Records are retried and,
   after the bounded retries, sent to the on-failure queue that raises an alert; a later seal of
   the stream covers the versions below it too (the chain must reach it).
3. **A checkpoint is never changed or removed.** The checkpoint table is keyed (stream, version)
   and takes only PartiQL ``INSERT``, which fails on an existing key; every role is denied
   ``PutItem``, ``UpdateItem``, ``DeleteItem``, ``BatchWriteItem``, PartiQL ``UPDATE``/``DELETE`` and
   the table's settings. So the highest sealed version of a stream only grows.
4. **What an auditor compares** (``audit verify``): the chain from version 1 must reach the
   highest sealed checkpoint of its stream and carry its hash there; the same for a head an
   earlier release recorded; and it must reach the version every view row records as applied
   (``stream_version``, the projection's own witness, which also covers streams older than both).

Caught: a tail cut off (or a whole stream removed) after it was sealed, and a sealed last event
rewritten with a recomputed hash. An event removed before the projector reached it is sealed
all the same from its stream record, so the next audit after the projector catches up (its
``IteratorAge`` alarm bounds that) sees the cut. Not caught: a principal outside the stack's roles
who removes events *and* checkpoints (an administrator can); point-in-time recovery keeps both,
and an SCP can extend the Deny to such principals (README, "What IAM guarantees").
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from events.chain import Witness
from events.envelope import RecordedEvent
from events.items import Item

SEALED = "sealed checkpoint"
LEGACY_HEAD = "head an earlier release recorded"


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A stream reached ``version``, whose event (``event_id``) has ``hash``, as its stream record said."""

    stream: str
    version: int
    hash: str
    event_id: str

    def witness(self) -> Witness:
        return Witness(self.version, self.hash, SEALED)


def checkpoint_item(checkpoint: Checkpoint) -> Item:
    return {"stream": {"S": checkpoint.stream}, "version": {"N": str(checkpoint.version)},
            "hash": {"S": checkpoint.hash}, "event_id": {"S": checkpoint.event_id}}


def from_checkpoint_item(item: Item) -> Checkpoint:
    return Checkpoint(item["stream"]["S"], int(item["version"]["N"]), item["hash"]["S"], item["event_id"]["S"])


def to_seal(events: Iterable[RecordedEvent]) -> list[Checkpoint]:
    """The checkpoint each stream gets from a batch of inserted events: its highest version."""
    highest: dict[str, RecordedEvent] = {}
    for event in events:
        if event.stream not in highest or event.version > highest[event.stream].version:
            highest[event.stream] = event
    return [Checkpoint(e.stream, e.version, e.hash, e.id) for e in highest.values()]


def highest(checkpoints: Iterable[Checkpoint]) -> dict[str, Checkpoint]:
    """Each stream's highest checkpoint (the one that says most)."""
    found: dict[str, Checkpoint] = {}
    for checkpoint in checkpoints:
        if checkpoint.stream not in found or checkpoint.version > found[checkpoint.stream].version:
            found[checkpoint.stream] = checkpoint
    return found


def legacy_head(item: Item) -> Witness:
    """A stream's head as releases before checkpoints recorded it in the idempotency table."""
    return Witness(int(item["head_version"]["N"]), item["head_hash"]["S"], LEGACY_HEAD)
