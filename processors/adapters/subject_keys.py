"""The data subjects' keys table (template.yaml ``KeysTable``), each key wrapped by KMS or its local stand-in.

One item per subject's current key (``entry = "key"``: key id, the key wrapped, the subject's kind)
and one per stream holding its values (``entry = "stream#<stream>"``). A key is created with a
conditional put (of two writers racing, both use the first key), read consistently, and destroyed
with a delete: that delete is the erasure. The stream items stay (they hold no personal data: an
erasure later refolds them again, a data request reads them).

Keys are wrapped, never stored in the clear:
- ``KmsKeyWrapper``: ``GenerateDataKey`` (AES_256) and ``Decrypt`` under the stack's KMS key, with the
  subject and key id as encryption context, so a wrapped key unwraps only as that subject's key;
- ``LocalKeyWrapper``: the local stack's stand-in for KMS, AES-GCM under a master key kept in the
  stack's state directory (mode 0600), with the same context as associated data.
Each wrapper counts its calls (the benchmark prints KMS calls per 1,000 events).
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from events.keyring import KEY_BYTES, DataKey, new_key_id

if TYPE_CHECKING:
    from events.sealing import Revealer

KEY_ID_ENV = "PERSONAL_DATA_KEY_ID"  # the stack's KMS key (template.yaml PersonalDataKey)
KMS_STAND_IN = "kms-stand-in.key"  # the local stand-in's master key, in the stack's state directory
KEY_ENTRY = "key"
STREAM_ENTRY = "stream#"
KIND_INDEX = "by-kind"


class KeyWrapper(Protocol):
    calls: int

    def generate(self, subject: str, kid: str) -> tuple[bytes, bytes]:
        """A new data key: (its 32 bytes, the same wrapped)."""
        ...

    def unwrap(self, subject: str, kid: str, wrapped: bytes) -> bytes: ...


def _context(subject: str, kid: str) -> dict[str, str]:
    return {"dynafold:subject": subject, "dynafold:key": kid}


class KmsKeyWrapper:
    """AWS KMS: data keys generated and unwrapped by the stack's key (``PERSONAL_DATA_KEY_ID``).

    ``kms`` builds the client on the first call: every function wires a key ring, and one that seals
    or reveals nothing in an invocation (the reactor's keyless reads, a batch without personal
    values) never pays for a KMS client (~50 ms of CPU on a cold start)."""

    def __init__(self, kms: Callable[[], Any], key_id: str) -> None:
        self._kms_factory = kms
        self._key_id = key_id
        self.calls = 0

    @cached_property
    def _kms(self) -> Any:
        return self._kms_factory()

    def generate(self, subject: str, kid: str) -> tuple[bytes, bytes]:
        self.calls += 1
        answer = self._kms.generate_data_key(KeyId=self._key_id, KeySpec="AES_256",
                                             EncryptionContext=_context(subject, kid))
        return answer["Plaintext"], answer["CiphertextBlob"]

    def unwrap(self, subject: str, kid: str, wrapped: bytes) -> bytes:
        self.calls += 1
        answer = self._kms.decrypt(KeyId=self._key_id, CiphertextBlob=wrapped, EncryptionContext=_context(subject, kid))
        plaintext: bytes = answer["Plaintext"]
        return plaintext


class LocalKeyWrapper:
    """The local stack's stand-in for KMS: a master key in a file only its owner may read."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._master: bytes | None = None
        self.calls = 0

    def _key(self) -> bytes:
        if self._master is None:
            if not self._path.exists():
                self._path.parent.mkdir(parents=True, exist_ok=True)
                try:
                    descriptor = os.open(self._path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                except FileExistsError:
                    pass  # another process of the stack made it first: use theirs
                else:
                    with os.fdopen(descriptor, "wb") as out:
                        out.write(secrets.token_bytes(KEY_BYTES))
            self._master = self._path.read_bytes()
        return self._master

    def generate(self, subject: str, kid: str) -> tuple[bytes, bytes]:
        from events.cipher import seal

        self.calls += 1
        plaintext = secrets.token_bytes(KEY_BYTES)
        # A fresh key: the synthetic nonce never repeats (its plaintext is random).
        return plaintext, seal(DataKey("local-master", self._key()), plaintext, _associated(subject, kid))

    def unwrap(self, subject: str, kid: str, wrapped: bytes) -> bytes:
        from events.cipher import open_sealed
        from events.personal import UnreadableSealedValue

        self.calls += 1
        try:
            return open_sealed(DataKey("local-master", self._key()), wrapped, _associated(subject, kid))
        except UnreadableSealedValue:
            # Almost always a command run beside another stack: say which key was tried and how to
            # reach the right one, not that the data was altered.
            raise UnreadableSealedValue(
                f"the data key of {subject} was not wrapped by the local stand-in for KMS's key "
                f"{self._path}: run with the --state-dir of the local stack that sealed it") from None


def _associated(subject: str, kid: str) -> bytes:
    return f"dynafold-key-wrap-v1\x1f{subject}\x1f{kid}".encode()


class DynamoDbSubjectKeys:
    """The ``SubjectKeys`` port over the keys table."""

    def __init__(self, client: Any, table: str, wrapper: KeyWrapper) -> None:
        self._client = client
        self._table = table
        self.wrapper = wrapper

    def find(self, subject: str) -> DataKey | None:
        item = self._client.get_item(TableName=self._table, Key=_key(subject, KEY_ENTRY),
                                     ConsistentRead=True).get("Item")
        if item is None:
            return None
        kid = item["kid"]["S"]
        return DataKey(kid, self.wrapper.unwrap(subject, kid, bytes(item["wrapped"]["B"])))

    def create(self, subject: str) -> DataKey:
        kid = new_key_id()
        plaintext, wrapped = self.wrapper.generate(subject, kid)
        item = {**_key(subject, KEY_ENTRY), "kid": {"S": kid}, "wrapped": {"B": wrapped},
                "kind": {"S": _kind(subject)}}
        try:
            self._client.put_item(TableName=self._table, Item=item, ConditionExpression="attribute_not_exists(#s)",
                                  ExpressionAttributeNames={"#s": "subject"})
        except self._client.exceptions.ConditionalCheckFailedException:
            found = self.find(subject)  # another writer's key came first: everyone uses that one
            if found is None:
                return self.create(subject)  # ... and was destroyed meanwhile
            return found
        return DataKey(kid, plaintext)

    def destroy(self, subject: str) -> str | None:
        old = self._client.delete_item(TableName=self._table, Key=_key(subject, KEY_ENTRY),
                                       ReturnValues="ALL_OLD").get("Attributes")
        return None if old is None else str(old["kid"]["S"])

    def note_stream(self, subject: str, stream: str) -> None:
        self._client.put_item(TableName=self._table, Item={**_key(subject, STREAM_ENTRY + stream),
                                                           "kind": {"S": _kind(subject)}})

    def streams(self, subject: str) -> list[str]:
        found = []
        request: dict[str, Any] = {
            "TableName": self._table, "ConsistentRead": True,
            "KeyConditionExpression": "#s = :s AND begins_with(#e, :p)",
            "ExpressionAttributeNames": {"#s": "subject", "#e": "entry"},
            "ExpressionAttributeValues": {":s": {"S": subject}, ":p": {"S": STREAM_ENTRY}}}
        while True:
            page = self._client.query(**request)
            found += [item["entry"]["S"][len(STREAM_ENTRY):] for item in page.get("Items", [])]
            if "LastEvaluatedKey" not in page:
                return sorted(found)
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def subjects(self, kind: str) -> list[str]:
        found: set[str] = set()
        request: dict[str, Any] = {
            "TableName": self._table, "IndexName": KIND_INDEX, "KeyConditionExpression": "#k = :k",
            "ExpressionAttributeNames": {"#k": "kind"}, "ExpressionAttributeValues": {":k": {"S": kind}}}
        while True:
            page = self._client.query(**request)
            found.update(item["subject"]["S"] for item in page.get("Items", []))
            if "LastEvaluatedKey" not in page:
                return sorted(found)
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def _key(subject: str, entry: str) -> dict[str, dict[str, str]]:
    return {"subject": {"S": subject}, "entry": {"S": entry}}


def _kind(subject: str) -> str:
    return subject.split(":", 1)[0]


@dataclass(frozen=True)
class RevealerFactory:
    """Builds a ``Revealer`` over the keys table where it is used: picklable, so a rebuild's worker
    processes each build their own (with the local stand-in for KMS at ``stand_in``, else KMS)."""

    client_factory: Callable[[], Any]
    keys_table: str
    stand_in: Path | None = None

    def __call__(self) -> Revealer:
        from events.keyring import KeyRing
        from events.sealing import Revealer

        wrapper: KeyWrapper
        if self.stand_in is not None:
            wrapper = LocalKeyWrapper(self.stand_in)
        else:
            from processors.adapters.aws import kms_client

            wrapper = KmsKeyWrapper(kms_client, os.environ.get(KEY_ID_ENV, ""))
        return Revealer(KeyRing(DynamoDbSubjectKeys(self.client_factory(), self.keys_table, wrapper)))
