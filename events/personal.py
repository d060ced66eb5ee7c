"""Personal data in events: which fields hold it, whose it is, and its sealed and erased forms. Pure.

A field of an event model that holds personal data is declared so in the catalogue, with the data
subject it belongs to::

    payload: Annotated[PersonalDict, Personal("sender:{sender_id}:{data_subject}", "sender:{sender_id}")]

``Personal`` names the subject with templates over the event's other (non-personal) fields; the
first whose fields are all present wins. A subject is a pseudonymous id (``<kind>:<id>``), never
a name or an email: it is what ``dynafold forget`` takes, and erasure events keep it.

What the log stores for such a field is never the value but a *sealed* token (``Sealed``):
AES-256-GCM under the subject's own data key (``events.sealing``). A value whose key was
destroyed reads as ``ERASED`` ("[erased]"). A personal field's type is therefore
``Sealed | Erased | T``: the log's reader (the shell) reveals sealed values before any fold sees
them, so folds meet ``T`` or ``ERASED``; ``revealed`` refuses a value still sealed, loudly.
"""

from __future__ import annotations

import base64
import re
import string
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, Field, GetCoreSchemaHandler, GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import core_schema

from events.errors import DynafoldError

ERASED: Literal["[erased]"] = "[erased]"
Erased = Literal["[erased]"]
SEALED_PREFIX = "sealed:1:"
# sealed:1:<key id>:<base64url nonce || ciphertext || tag>:<subject>; the subject last, as it may hold ':'.
_TOKEN = re.compile(r"^sealed:1:(?P<kid>[0-9a-f]{1,64}):(?P<blob>[A-Za-z0-9_-]+=*):(?P<subject>[^\x00-\x1f]{1,512})$")
_SUBJECT = re.compile(r"^[a-z][a-z0-9-]*:[^\x00-\x1f]{1,400}$")
T = TypeVar("T")


class StillSealed(DynafoldError):
    """A fold met a sealed value: the shell must reveal events before folding them."""


class UnreadableSealedValue(DynafoldError):
    """A sealed value whose key exists but which does not open: altered, or moved elsewhere."""


def check_subject(subject: str) -> str:
    """A data subject id: ``<kind>:<id>`` (kind lower-case, e.g. ``inflow-customer:C-1``)."""
    if not _SUBJECT.match(subject):
        raise ValueError(f"invalid data subject {subject!r}: expected '<kind>:<id>' (kind a-z, 0-9, '-'), "
                         "at most 400 characters after the kind")
    return subject


@dataclass(frozen=True, slots=True)
class Sealed:
    """A personal value as the log stores it: which subject, which of its keys, and the ciphertext."""

    kid: str
    blob: bytes  # nonce || ciphertext || tag
    subject: str

    @property
    def token(self) -> str:
        return f"{SEALED_PREFIX}{self.kid}:{base64.urlsafe_b64encode(self.blob).decode('ascii')}:{self.subject}"

    @classmethod
    def parse(cls, token: str) -> "Sealed":
        match = _TOKEN.match(token)
        if match is None:
            raise ValueError("not a sealed value (sealed:1:<key id>:<ciphertext>:<subject>)")
        return cls(match["kid"], base64.urlsafe_b64decode(match["blob"]), match["subject"])

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        from_token = core_schema.no_info_after_validator_function(
            cls.parse, core_schema.str_schema(pattern=_TOKEN.pattern))
        return core_schema.json_or_python_schema(
            json_schema=from_token,
            python_schema=core_schema.union_schema([core_schema.is_instance_schema(cls), from_token]),
            serialization=core_schema.plain_serializer_function_ser_schema(lambda value: value.token),
        )

    @classmethod
    def __get_pydantic_json_schema__(cls, schema: core_schema.CoreSchema,
                                     handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        return {"type": "string", "pattern": _TOKEN.pattern,
                "description": "the value sealed with its data subject's key (AES-256-GCM)"}


# A JSON object that is personal data: as stored (sealed), after its key was destroyed, or revealed.
# Left to right: a sealed token or "[erased]" is never mistaken for the plain value.
PersonalDict = Annotated[Sealed | Erased | dict[str, Any], Field(union_mode="left_to_right")]


@dataclass(frozen=True, slots=True)
class Personal:
    """Marks a field as personal data of one data subject, named by the first of ``subjects``
    (templates over the event's other fields, e.g. ``"inflow-customer:{customer_id}"``) whose
    fields are all present and non-empty."""

    subjects: tuple[str, ...]

    def __init__(self, *subjects: str) -> None:
        if not subjects:
            raise ValueError("Personal needs at least one subject template")
        object.__setattr__(self, "subjects", subjects)

    def fields(self) -> set[str]:
        return {name for template in self.subjects for _, name, _, _ in string.Formatter().parse(template) if name}

    def subject_of(self, values: Mapping[str, Any]) -> str:
        for template in self.subjects:
            names = [name for _, name, _, _ in string.Formatter().parse(template) if name]
            if all(values.get(name) not in (None, "") for name in names):
                return check_subject(template.format(**{name: values[name] for name in names}))
        raise ValueError(f"no data subject: none of {', '.join(self.subjects)} has all its fields")

    def __get_pydantic_json_schema__(self, schema: core_schema.CoreSchema,
                                     handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        json_schema = handler(schema)
        return {**json_schema, "x-personal": {"subject": list(self.subjects)}}


@cache
def personal_fields(model: type[BaseModel]) -> Mapping[str, Personal]:
    """field name -> its ``Personal`` marker, for every personal field of an event model."""
    found = {}
    for name, info in model.model_fields.items():
        for marker in info.metadata:
            if isinstance(marker, Personal):
                found[name] = marker
    return found


def subject_of(data: BaseModel, field: str) -> str:
    """The data subject the personal ``field`` of ``data`` belongs to."""
    return personal_fields(type(data))[field].subject_of(dict(data))


def revealed(value: Sealed | Erased | T) -> T | Erased:
    """A personal value as a fold may use it: the value, or ERASED. A sealed one means the shell
    skipped revealing the event: refused, so no fold ever works on ciphertext."""
    if isinstance(value, Sealed):
        raise StillSealed(f"a sealed value of {value.subject} reached a fold; reveal events before folding")
    return value


def associated_data(stream: str, field: str, subject: str, kid: str) -> bytes:
    """What a sealed value is bound to (AES-GCM's additional authenticated data): its stream, its
    field, its subject and key. Copied into another stream, field or subject's place it no longer
    opens. Not the event id: a retried append must seal to the same bytes (its idempotency guard
    compares the data), and ids are generated per attempt."""
    return "\x1f".join(("dynafold-personal-v1", stream, field, subject, kid)).encode("utf-8")
