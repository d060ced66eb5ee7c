"""Customer data never reaches the logs: the pure masking and the Logger every handler uses."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

from processors.handlers import projector

from processors.handlers import reactor
from processors.telemetry.logs import MaskingFormatter, make_logger
from processors.telemetry.pii import REDACTED, hash_identifier, mask_email, mask_name, mask_phone, mask_pii, scrub_text

PROCESSORS = Path(__file__).resolve().parents[2] / "processors"


@pytest.mark.parametrize("raw,masked", [
    ("jane.doe@example.com", "j***@example.com"),
    ("  Bob+orders@shop.example.co.uk ", "B***@shop.example.co.uk"),
    ("not-an-email", REDACTED),
    ("@example.com", REDACTED),
])
def test_mask_email_keeps_first_character_and_domain(raw, masked):
    assert mask_email(raw) == masked


@pytest.mark.parametrize("raw,masked", [("+1 (555) 123-4567", "***67"), ("020 7946 0958", "***58"), ("12", REDACTED)])
def test_mask_phone_keeps_last_two_digits(raw, masked):
    assert mask_phone(raw) == masked


def test_mask_name_keeps_initials_and_hash_is_stable_and_opaque():
    assert mask_name("Jane  van Doe") == "J*** v*** D***"
    assert hash_identifier("cust-42") == hash_identifier("cust-42") != hash_identifier("cust-43")
    assert "cust-42" not in hash_identifier("cust-42")


def test_scrub_text_masks_emails_and_international_phones_only():
    text = ("order 1001 from jane.doe@example.com (+44 20 7946 0958) at 2025-11-11 10:00:00, "
            "seq 000000000000001234567890, version 12, tel 555-0100")
    assert scrub_text(text) == ("order 1001 from j***@example.com (***58) at 2025-11-11 10:00:00, "
                                "seq 000000000000001234567890, version 12, tel 555-0100")


def test_mask_pii_by_key_through_nesting():
    record = {
        "message": "validated order for jane.doe@example.com",
        "order": {"customer": {"email": "jane.doe@example.com", "first_name": "Jane", "last_name": "Doe",
                               "phone": 4402079460958, "shipping_address": {"street": "1 High St", "city": "Leeds"}},
                  "customer_id": "cust-42", "lines": [{"sku": "PROD-001", "quantity": 2}]},
        "notify_emails": ["ops@example.com", "a@b.io"],
        "sequence_number": "400000000000000123456789",
        "function_name": "dynafold-dev-projector",
        "retryable": True,
    }
    assert mask_pii(record) == {
        "message": "validated order for j***@example.com",
        "order": {"customer": {"email": "j***@example.com", "first_name": "J***", "last_name": "D***",
                               "phone": "***58", "shipping_address": REDACTED},
                  "customer_id": hash_identifier("cust-42"), "lines": [{"sku": "PROD-001", "quantity": 2}]},
        "notify_emails": ["o***@example.com", "a***@b.io"],
        "sequence_number": "400000000000000123456789",
        "function_name": "dynafold-dev-projector",
        "retryable": True,
    }
    assert record["order"]["customer"]["first_name"] == "Jane"  # a copy: the caller's data is untouched


def last_line(capsys) -> dict:
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_logger_masks_extra_keys_message_and_exceptions(capsys):
    logger = make_logger("pii-test-logger")
    logger.info("email sent to jane.doe@example.com", extra={"customer_name": "Jane Doe", "order_id": "1001"})
    line = last_line(capsys)
    assert (line["message"], line["customer_name"], line["order_id"], line["service"]) == \
        ("email sent to j***@example.com", "J*** D***", "1001", "pii-test-logger")

    logger.append_keys(correlation_id="evt-1")
    try:
        raise ValueError("1 validation error: input_value='jane.doe@example.com'")
    except ValueError:
        logger.exception("rejected", extra={"phone": "+1 555 123 4567"})
    line = last_line(capsys)
    assert "jane.doe" not in json.dumps(line) and "4567" not in json.dumps(line)
    assert "j***@example.com" in line["exception"] and line["phone"] == "***67"
    assert line["correlation_id"] == "evt-1"


def test_handlers_log_through_the_masking_formatter():
    for module in (projector, reactor):
        assert isinstance(module.logger.registered_formatter, MaskingFormatter), module.__name__


def test_no_module_builds_its_own_unmasked_logger():
    """Every Powertools Logger comes from processors.telemetry.logs.make_logger, so none logs unmasked."""
    offenders = []
    for path in sorted(PROCESSORS.rglob("*.py")):
        if path.name == "logs.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", None)) == "Logger":
                offenders.append(f"{path.relative_to(PROCESSORS.parent)}:{node.lineno}")
    assert not offenders, f"use processors.telemetry.logs.make_logger instead: {offenders}"
