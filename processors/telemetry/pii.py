"""Masking customer data out of log records (seed 003: never log full emails, phones or names).

Pure: a log record (a JSON-able dict) in, the same shape out. Two nets, because a log line carries
PII in two ways:
- structured fields, recognised by key: email-like keys keep the first character and the domain
  (``j***@example.com``), phone-like keys the last two digits, name-like keys each word's initial,
  address-like keys nothing, and customer ids become a short stable hash (lines still group);
- free text (messages, exception texts, pydantic errors quoting their input), scanned for email
  addresses and international phone numbers (``+`` then 8-15 digits). Other digit runs are left
  alone: timestamps, versions and 20-digit stream sequence numbers must stay readable.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from typing import Any

_EMAIL = re.compile(r"(?<![\w.+-])[\w.+%-]+@([A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+)")
_INTERNATIONAL_PHONE = re.compile(r"(?<![\w+])\+\d(?:[\s().-]*\d){7,14}(?!\d)")
REDACTED = "[redacted]"


def _normal(key: str) -> str:
    return re.sub(r"[^a-z0-9]", "", key.lower())


def mask_email(value: str) -> str:
    local, at, domain = value.strip().rpartition("@")
    if not at or not local or "." not in domain:
        return REDACTED
    return f"{local[0]}***@{domain}"


def mask_phone(value: str) -> str:
    digits = re.sub(r"\D", "", value)
    return f"***{digits[-2:]}" if len(digits) >= 6 else REDACTED


def mask_name(value: str) -> str:
    words = value.split()
    return " ".join(f"{word[0]}***" for word in words) if words else value


def hash_identifier(value: str) -> str:
    return "h:" + hashlib.sha256(value.encode("utf-8")).hexdigest()[:12]


def scrub_text(text: str) -> str:
    """Emails and international phone numbers inside free text."""
    text = _EMAIL.sub(lambda m: mask_email(m.group(0)), text)
    return _INTERNATIONAL_PHONE.sub(lambda m: mask_phone(m.group(0)), text)


_NAME_KEYS = {"name", "firstname", "lastname", "fullname", "givenname", "familyname", "surname", "middlename",
              "customername", "contactname", "billingname", "shippingname", "recipientname", "buyername"}
_ADDRESS_KEYS = {"address", "address1", "address2", "street", "streetaddress", "billingaddress",
                 "shippingaddress", "postalcode", "zip", "zipcode"}
_CUSTOMER_ID_KEYS = {"customerid", "customer", "buyerid", "userid"}


def _by_key(key: str) -> Callable[[str], str] | None:
    normal = _normal(key)
    if "email" in normal:
        return mask_email
    if "phone" in normal or "mobile" in normal or normal in {"tel", "telephone", "fax"}:
        return mask_phone
    if normal in _NAME_KEYS:
        return mask_name
    if normal in _ADDRESS_KEYS:
        return lambda _: REDACTED
    if normal in _CUSTOMER_ID_KEYS:
        return hash_identifier
    return None


def mask_pii(value: Any, key: str | None = None) -> Any:
    """A copy of `value` with customer data masked; `key` is the field it sits under, if any."""
    masker = _by_key(key) if key is not None else None
    if isinstance(value, dict):
        if masker is not None and _normal(key or "") in _ADDRESS_KEYS:
            return REDACTED  # a structured address: every part of it is personal
        return {k: mask_pii(v, str(k)) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [mask_pii(v, key) for v in value]
    if isinstance(value, str):
        return masker(value) if masker is not None else scrub_text(value)
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        return masker(str(value)) if masker is not None else value  # e.g. a phone stored as a number
    # Anything else (an exception object, a datetime) would be written as str(value) anyway.
    return mask_pii(str(value), key)
