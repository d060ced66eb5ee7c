"""Does the stored history still decode through today's models and upcasters? Pure.

Run before deploying a schema change (`dynafold check-history`): a stored event that no longer
parses would stop every consumer that reads it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from events.errors import DynafoldError
from events.items import Item, from_item


@dataclass(frozen=True, slots=True)
class UndecodableEvent:
    stream: str
    version: int
    stored_type: str
    problem: str

    def __str__(self) -> str:
        return f"{self.stream} v{self.version} ({self.stored_type}): {self.problem}"


def undecodable(items: Iterable[Item]) -> Iterator[UndecodableEvent]:
    """Every stored item that today's catalogue cannot decode, with the reason."""
    for item in items:
        try:
            from_item(item)
        except (DynafoldError, ValueError, KeyError) as error:
            yield UndecodableEvent(item["stream"]["S"], int(item["version"]["N"]), item["type"]["S"],
                                   f"{type(error).__name__}: {error}")
