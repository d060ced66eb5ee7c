"""Data subjects' keys as a port, the per-invocation cache in front of it, and an in-memory keeper. Pure.

Every data subject has at most one data key at a time (``DataKey``: an id and 32 secret bytes).
Where keys are kept is the ``SubjectKeys`` port: on AWS the keys table holds each key wrapped by
KMS (``processors.adapters.subject_keys``); locally the same table, wrapped by a local stand-in
for KMS; in unit tests ``InMemorySubjectKeys``. Destroying a subject's key is the erasure: every
value sealed with it is unreadable from then on, wherever a copy of the log went.

The keeper also remembers which streams hold values of each subject (``note_stream``), so an
erasure finds the rows to refold and a data request the values to export, without a scan.

``KeyRing`` caches keys for one invocation (``begin_invocation`` empties it; bounded): a function
that fetched a key before an erasure may use it until its invocation ends, and no longer.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

KEY_BYTES = 32  # AES-256
DEFAULT_CACHE_SIZE = 1024


@dataclass(frozen=True, slots=True)
class DataKey:
    """One subject's data key. ``kid`` names it (a new key after an erasure has a new id)."""

    kid: str
    secret: bytes = field(repr=False)

    def derived(self, purpose: bytes) -> bytes:
        """A key for one purpose (encryption, synthetic nonces), so no key serves two."""
        return hmac.new(self.secret, b"dynafold-personal-v1:" + purpose, hashlib.sha256).digest()


def new_key_id() -> str:
    return secrets.token_hex(8)


class SubjectKeys(Protocol):
    """Where the subjects' data keys are kept."""

    def find(self, subject: str) -> DataKey | None:
        """The subject's current key; None when it has none (never had, or it was destroyed)."""
        ...

    def create(self, subject: str) -> DataKey:
        """A new key for the subject, kept before it is returned; if another writer created one
        first, that one."""
        ...

    def destroy(self, subject: str) -> str | None:
        """Destroy the subject's key; its id, or None when it had none."""
        ...

    def note_stream(self, subject: str, stream: str) -> None:
        """``stream`` holds (or is about to hold) a value sealed for ``subject``."""
        ...

    def streams(self, subject: str) -> list[str]:
        """Every stream noted for the subject, sorted."""
        ...

    def subjects(self, kind: str) -> list[str]:
        """Every subject of one kind (``shopify-customer``) that has or had a key, sorted."""
        ...


class InMemorySubjectKeys:
    """Keys in a dict (unit tests): the same answers as the keys table, without KMS."""

    def __init__(self) -> None:
        self.keys: dict[str, DataKey] = {}
        self.known: set[str] = set()
        self.noted: dict[str, set[str]] = {}
        self.calls = 0  # what a KMS round trip would have been (find with a key, create)
        self._lock = threading.Lock()

    def find(self, subject: str) -> DataKey | None:
        with self._lock:
            key = self.keys.get(subject)
            self.calls += key is not None
            return key

    def create(self, subject: str) -> DataKey:
        with self._lock:
            self.calls += 1
            self.known.add(subject)
            return self.keys.setdefault(subject, DataKey(new_key_id(), secrets.token_bytes(KEY_BYTES)))

    def destroy(self, subject: str) -> str | None:
        with self._lock:
            key = self.keys.pop(subject, None)
            return None if key is None else key.kid

    def note_stream(self, subject: str, stream: str) -> None:
        with self._lock:
            self.noted.setdefault(subject, set()).add(stream)

    def streams(self, subject: str) -> list[str]:
        return sorted(self.noted.get(subject, ()))

    def subjects(self, kind: str) -> list[str]:
        return sorted(s for s in self.known | set(self.noted) if s.split(":", 1)[0] == kind)


_ABSENT = DataKey("", b"")


class KeyRing:
    """The keys one invocation uses, cached (at most ``size``; absence is cached too, so revealing
    many erased values asks once), over a ``SubjectKeys``."""

    def __init__(self, keys: SubjectKeys, size: int = DEFAULT_CACHE_SIZE) -> None:
        self.keys = keys
        self._size = size
        self._cache: OrderedDict[str, DataKey] = OrderedDict()
        self._noted: set[tuple[str, str]] = set()
        self._lock = threading.Lock()

    def begin_invocation(self) -> None:
        """Forget every cached key: a key destroyed meanwhile is not used by this invocation."""
        with self._lock:
            self._cache.clear()
            self._noted.clear()

    def _cached(self, subject: str, load: Callable[[], DataKey | None]) -> DataKey | None:
        with self._lock:
            if subject in self._cache:
                self._cache.move_to_end(subject)
                found = self._cache[subject]
                return None if found is _ABSENT else found
        key = load()
        with self._lock:
            self._cache[subject] = key or _ABSENT
            while len(self._cache) > self._size:
                self._cache.popitem(last=False)
        return key

    def for_opening(self, subject: str) -> DataKey | None:
        return self._cached(subject, lambda: self.keys.find(subject))

    def for_sealing(self, subject: str, stream: str) -> DataKey:
        """The subject's key, created on its first value; ``stream`` is noted as holding one."""
        if (subject, stream) not in self._noted:  # noted first: a value never exists unrecorded
            self.keys.note_stream(subject, stream)
            with self._lock:
                if len(self._noted) >= self._size:
                    self._noted.clear()
                self._noted.add((subject, stream))
        key = self.for_opening(subject)
        if key is None:
            key = self.keys.create(subject)
            with self._lock:
                self._cache[subject] = key
        return key

    def forget(self, subject: str) -> None:
        """Drop the subject's cached key (after destroying it)."""
        with self._lock:
            self._cache.pop(subject, None)
