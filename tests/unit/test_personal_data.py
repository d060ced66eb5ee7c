"""Personal data sealed on append, revealed on read, erased by destroying its subject's key (issue 22).

In memory: the event log, the keys and the view rows; the same PersonalDataLog, Revealer, PersonalData
service and BatchProjector that the composition root wires for AWS and the local stack.
"""

from __future__ import annotations

import json

import pytest

from events import catalogue
from events.envelope import NewEvent
from events.errors import IdempotencyKeyReused, NotFound
from events.keyring import InMemorySubjectKeys, KeyRing
from events.memory import InMemoryEventLog
from events.order_rules import Order, validate_order
from events.personal import ERASED, Sealed, StillSealed, UnreadableSealedValue, personal_fields, revealed
from events.sealing import Revealer, PersonalDataLog
from processors.local.tables import view_keys
from processors.services.personal_data import InvalidSubject, PersonalData
from projections.batch import BatchProjector, Entry
from projections.memory import InMemoryViewRows
from projections.pending_errors.fold import PendingErrorsProjection
from projections.registry import VIEWS

MESSAGE = "dynafold.delivery.message_received.v1"
VALIDATED = "dynafold.orders.validated.v1"
ORDER = {"salesOrderId": "o-1", "orderNumber": "SO-1", "customerId": "C-42",
         "remarks": "approved by Maria Lopez, +31 6 1234 5678",
         "lines": [{"sku": "TUK-1", "discount": 10, "productName": "TUK chair"}]}


class World:
    def __init__(self) -> None:
        self.keys = InMemorySubjectKeys()
        self.ring = KeyRing(self.keys)
        self.log = InMemoryEventLog()
        self.store = PersonalDataLog(self.log, Revealer(self.ring))
        self.rows = InMemoryViewRows(view_keys())
        self.projector = BatchProjector(self.rows, self.store.read_stream, VIEWS, reveal=self.store.revealer.reveal)
        self.privacy = PersonalData(self.store, self.ring, VIEWS)

    def message(self, message_id: str = "m-1", payload: dict | None = None, **extra: object) -> None:
        data = {"sender_id": "acme", "message_id": message_id, "target_url": "https://hooks.example.com/x",
                "payload": payload if payload is not None else {"customer": "Ann Example", "email": "ann@example.com"},
                **extra}
        self.store.append(f"delivery:acme:{message_id}", [NewEvent(MESSAGE, data)], idempotency_key=f"msg:{message_id}")

    def order(self) -> None:
        order = Order.model_validate(ORDER)
        data = {"order_id": order.order_id, "order_number": order.order_number, "customer_id": order.customer_id,
                "errors": [e.model_dump(mode="json") for e in validate_order(order)],
                "order": order.model_dump(mode="json")}
        self.store.append("order:o-1", [NewEvent(VALIDATED, data)])

    def project_all(self) -> None:
        for stream in sorted({item["stream"]["S"] for item in self.log.scan_items()}):
            events = [e for e in self.log.read_stream(stream)]  # as the stream delivers them: sealed
            outcome = self.projector.project([Entry(str(e.version), stream, e) for e in events])
            assert not outcome.failed_sequence_numbers, outcome

    def stored_text(self) -> str:
        return "\n".join(item["data"]["S"] for item in self.log.scan_items())


@pytest.fixture
def world() -> World:
    return World()


def test_the_catalogue_declares_which_fields_are_personal_and_whose():
    personal = {spec["type"]: spec["personal"] for spec in catalogue.json_schemas() if spec["personal"]}
    assert personal == {
        MESSAGE: {"payload": ["sender:{sender_id}:{data_subject}", "sender:{sender_id}"]},
        VALIDATED: {"order": ["inflow-customer:{customer_id}", "inflow-order:{order_id}"]},
    }
    schema = catalogue.BY_TYPE[MESSAGE].model.model_json_schema()
    assert schema["properties"]["payload"]["x-personal"] == {"subject": personal[MESSAGE]["payload"]}


def test_every_personal_field_names_its_subject_from_non_personal_fields():
    for spec in catalogue.BY_TYPE.values():
        fields = personal_fields(spec.model)
        for name, marker in fields.items():
            assert marker.fields() <= set(spec.model.model_fields) - set(fields), (spec.type, name)


def test_personal_values_are_stored_sealed_and_read_back_revealed(world):
    world.message()
    world.order()
    stored = world.stored_text()
    for plain in ("Ann Example", "ann@example.com", "Maria Lopez", "1234 5678"):
        assert plain not in stored
    [message] = world.store.read_stream("delivery:acme:m-1")
    assert message.data.payload == {"customer": "Ann Example", "email": "ann@example.com"}
    [order] = world.store.read_stream("order:o-1")
    assert order.data.order["remarks"] == ORDER["remarks"] and order.data.customer_id == "C-42"
    sealed = world.log.read_stream("order:o-1")[0].data.order
    assert isinstance(sealed, Sealed) and sealed.subject == "inflow-customer:C-42"


def test_a_message_names_its_data_subject_or_belongs_to_its_sender(world):
    world.message("m-1")
    world.message("m-2", data_subject="cust-7")
    subjects = [world.log.read_stream(f"delivery:acme:{m}")[0].data.payload.subject for m in ("m-1", "m-2")]
    assert subjects == ["sender:acme", "sender:acme:cust-7"]


def test_a_retried_append_seals_to_the_same_bytes_and_gets_the_original_answer(world):
    world.message()
    world.message()  # the same message again: deduplicated by its key, not refused as another body
    assert world.log.stream_version("delivery:acme:m-1") == 1
    with pytest.raises(IdempotencyKeyReused):
        world.message(payload={"customer": "someone else"})


def test_a_sealed_value_copied_into_another_stream_does_not_open(world):
    world.message("m-1")
    world.message("m-2")
    stolen = world.log.read_stream("delivery:acme:m-1")[0].data
    with pytest.raises(UnreadableSealedValue):
        world.store.revealer.reveal_data("delivery:acme:m-2", stolen)


def test_forgetting_destroys_the_key_keeps_the_chain_and_reads_erased(world):
    world.message()
    before = [item["hash"]["S"] for item in world.log.scan_items()]
    forgotten = world.privacy.forget("sender:acme", "GDPR request 17", "cli")
    assert forgotten.key_id is not None and forgotten.streams == ("delivery:acme:m-1",)
    assert forgotten.refolded == ()  # the delivery-status view keeps no personal values
    [message] = world.store.read_stream("delivery:acme:m-1")
    assert message.data.payload == ERASED
    assert all(report.ok for report in world.store.verify_log())
    assert [item["hash"]["S"] for item in world.log.scan_items()][:len(before)] == before  # nothing rewritten
    [event] = world.store.read_stream("subject:sender:acme")
    assert event.data.model_dump(mode="json") == {
        "subject": "sender:acme", "reason": "GDPR request 17", "requested_by": "cli",
        "key_id": forgotten.key_id, "streams": ["delivery:acme:m-1"], "request_ref": None}


def test_a_new_value_after_an_erasure_gets_a_new_key_and_the_old_values_stay_erased(world):
    world.message("m-1")
    world.privacy.forget("sender:acme", "offboarded", "cli")
    world.message("m-2", payload={"customer": "Bo"})
    assert world.store.read_stream("delivery:acme:m-1")[0].data.payload == ERASED
    assert world.store.read_stream("delivery:acme:m-2")[0].data.payload == {"customer": "Bo"}


def test_forgetting_refolds_the_rows_that_kept_the_values(world):
    world.order()
    world.project_all()
    [row] = [r for r in world.rows.rows("pending-errors") if r["error_hash"] == "@order"]
    assert row["remarks"] == ORDER["remarks"]
    forgotten = world.privacy.forget("inflow-customer:C-42", "erasure request", "cli")
    assert forgotten.refolded == ("order:o-1",)
    world.project_all()  # the stream delivers `values erased`: the projector refolds the rows
    rows = [r for r in world.rows.rows("pending-errors") if r["error_hash"] == "@order"]
    assert [r["remarks"] for r in rows] == [ERASED]
    assert ORDER["remarks"] not in json.dumps(world.rows.rows("pending-errors"), default=str)
    # A rebuild folds the same log, revealed the same way: the same state.
    rebuilt = PendingErrorsProjection.fold("o-1", world.store.read_stream("order:o-1"))
    assert world.rows.load(PendingErrorsProjection, "o-1").state == rebuilt


def test_forget_dry_run_changes_nothing(world):
    world.order()
    plan = world.privacy.forget("inflow-customer:C-42", "request", "cli", dry_run=True)
    assert plan.dry_run and plan.refolded == ("order:o-1",) and plan.event is None
    assert world.store.read_stream("order:o-1")[0].data.order != ERASED
    assert world.store.stream_version("subject:inflow-customer:C-42") == 0


def test_a_rerun_with_other_words_completes_the_recorded_erasure(world):
    world.message()
    key = world.keys.find("sender:acme")
    world.privacy.forget("sender:acme", "request 1", "cli", dry_run=True)
    world.store.append("subject:sender:acme", [NewEvent("dynafold.privacy.subject_forgotten.v1", {
        "subject": "sender:acme", "reason": "request 1", "requested_by": "cli", "key_id": key.kid,
        "streams": ["delivery:acme:m-1"]})], idempotency_key=f"privacy:forget:sender:acme:{key.kid}")  # then a crash
    again = world.privacy.forget("sender:acme", "request 1, completed", "cli")
    assert again.event.deduplicated and world.keys.find("sender:acme") is None
    assert world.store.stream_version("subject:sender:acme") == 1


def test_forgetting_twice_records_once_and_an_unknown_subject_is_not_found(world):
    world.message()
    first = world.privacy.forget("sender:acme", "request", "cli")
    again = world.privacy.forget("sender:acme", "request", "cli")  # key gone: completes, appends once more
    assert first.key_id and again.key_id is None
    with pytest.raises(NotFound):
        world.privacy.forget("sender:nobody", "request", "cli")
    with pytest.raises(InvalidSubject):
        world.privacy.forget("Ann Example", "request", "cli")
    with pytest.raises(InvalidSubject):
        world.privacy.forget("sender:acme", "  ", "cli")


def test_the_export_holds_every_value_of_the_subject_and_none_of_others(world):
    world.message("m-1")
    world.message("m-2", data_subject="cust-7", payload={"note": "other person"})
    export = world.privacy.export("sender:acme").to_json()
    assert export["has_key"] and [v["value"] for v in export["values"]] == [
        {"customer": "Ann Example", "email": "ann@example.com"}]
    world.privacy.forget("sender:acme", "request", "cli")
    assert [v["value"] for v in world.privacy.export("sender:acme").to_json()["values"]] == [ERASED]


def test_a_fold_refuses_a_value_still_sealed():
    with pytest.raises(StillSealed):
        revealed(Sealed("ab", b"x" * 20, "sender:acme"))


def test_keys_are_cached_for_one_invocation_only(world):
    world.message("m-1")
    world.ring.begin_invocation()
    calls = world.keys.calls
    for _ in range(3):
        world.store.read_stream("delivery:acme:m-1")
    assert world.keys.calls == calls + 1  # one key load for three reads
    world.keys.destroy("sender:acme")  # destroyed by another function meanwhile
    assert world.store.read_stream("delivery:acme:m-1")[0].data.payload != ERASED  # this invocation's cache
    world.ring.begin_invocation()
    assert world.store.read_stream("delivery:acme:m-1")[0].data.payload == ERASED


def _redact(world: World, shop: str, topic: str = "shop/redact", event_key: str = "ev-1") -> dict:
    from events import shopify
    from processors.adapters.secrets import Secrets
    from processors.api.deps import ApiDeps, ApiSettings
    from processors.api.http import HttpRequest
    from processors.api.privacy import shopify_privacy
    from tests.shopify_fixtures import payload

    deps = ApiDeps(world.store, world.rows, None, Secrets.of(),  # type: ignore[arg-type]
                   ApiSettings(shopify_shop=shop), personal_data=lambda: world.privacy)
    body = shopify.PAYLOADS[topic].model_validate(payload(topic))
    request = HttpRequest("POST", "/webhooks/shopify", {}, {}, b"", request_id="req-1")
    return shopify_privacy(topic, body, event_key, request, deps).body


def test_shop_redact_forgets_the_shops_customers_and_nothing_of_another_shop(world):
    world.keys.create("shopify-customer:191167")  # as if a field held a Shopify customer's data
    world.keys.note_stream("shopify-customer:191167", "subject:shopify-customer:191167")
    assert _redact(world, "another-shop.myshopify.com")["forgotten"] == []
    assert world.keys.find("shopify-customer:191167") is not None
    answer = _redact(world, "johns-apparel.myshopify.com")
    assert answer["forgotten"] == [{"subject": "shopify-customer:191167", "key_destroyed": True, "streams": 1}]
    assert world.keys.find("shopify-customer:191167") is None
    again = _redact(world, "johns-apparel.myshopify.com")  # Shopify's redelivery: recorded once
    assert again["forgotten"][0]["key_destroyed"] is False
    assert world.store.stream_version("subject:shopify-customer:191167") == 1


def test_customers_redact_reads_only_the_customer_id(world):
    answer = _redact(world, "", topic="customers/redact")
    assert answer["forgotten"] == [{"subject": "shopify-customer:191167", "key_destroyed": False, "streams": 0}]
    stored = json.dumps([item for item in world.log.scan_items()])
    assert "john@example.com" not in stored and "555-625-1199" not in stored
