"""POST /messages (seeds 001/002): a sender submits a message for webhook delivery.

Deduplicated by (sender id, message id): the delivery's stream is ``delivery:<sender>:<message>``
and is created exactly once, guarded by that pair, so a resubmission gets the original answer.
The target must pass the SSRF guard before anything is appended.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from events.deliveries import MessageReceived
from events.envelope import NewEvent, PlannedAppend
from events.errors import VersionConflict
from events.idempotency_keys import message_key
from events.store import NO_STREAM
from processors.api.appends import append_planned
from processors.api.deps import ApiDeps
from processors.api.http import ApiError, HttpRequest, HttpResponse
from processors.adapters.outbound import TargetRefused, check_target

SOURCE = "urn:dynafold:messages"
_ID = r"^[A-Za-z0-9._~@+-]+$"  # no ':' (it separates sender and message in the delivery id)


class MessageSubmission(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    sender_id: str = Field(min_length=1, max_length=128, pattern=_ID)
    message_id: str = Field(min_length=1, max_length=256, pattern=_ID)
    target_url: str = Field(min_length=1, max_length=2048)
    payload: dict[str, Any]
    # Whom the payload is about, in the sender's own pseudonymous ids (never a name or an email):
    # its values are sealed for the data subject sender:<sender_id>:<data_subject>, which
    # `dynafold forget` erases; without it, for sender:<sender_id>.
    data_subject: str | None = Field(default=None, min_length=1, max_length=200, pattern=_ID)


def submit_message(request: HttpRequest, deps: ApiDeps) -> HttpResponse:
    message = request.parse(MessageSubmission)
    try:
        check_target(message.target_url, deps.settings.targets, deps.resolve)
    except TargetRefused as refused:
        raise ApiError(400, str(refused), field="target_url") from None
    received = MessageReceived(**message.model_dump())
    plan = PlannedAppend(f"delivery:{message.sender_id}:{message.message_id}",
                         (NewEvent("dynafold.delivery.message_received.v1", received, source=SOURCE,
                                   correlation_id=request.request_id or None),),
                         message_key(message.sender_id, message.message_id))
    try:
        answer = append_planned(deps.store, plan, NO_STREAM)
    except VersionConflict:  # submitted more than 30 days ago: its guard expired, the stream did not
        raise ApiError(409, f"message {message.message_id!r} of sender {message.sender_id!r} was already "
                            "submitted") from None
    return HttpResponse(200 if answer["deduplicated"] else 202, {**answer, "delivery_id": plan.stream.split(":", 1)[1]})
