"""AES-256-GCM sealing of one value under a subject's data key (``cryptography``). No I/O.

The nonce is synthetic: an HMAC of the associated data and the plaintext under a key derived for
that purpose. The same value sealed twice in the same place under the same key gives the same
bytes (a retried append must: its idempotency guard compares the stored data), and two different
values never share a nonce under one key. The price: equal values in one stream's field are seen
to be equal. ``cryptography`` is imported on first use, so functions that never seal or open a
value do not pay for it at cold start.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import TYPE_CHECKING

from events.keyring import DataKey
from events.personal import UnreadableSealedValue

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

NONCE_BYTES = 12


def _aead(key: DataKey) -> tuple[AESGCM, bytes]:
    # Derived per call, not cached here: no key material outlives the KeyRing that holds the key.
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    return AESGCM(key.derived(b"aes-256-gcm")), key.derived(b"synthetic-nonce")


def seal(key: DataKey, plaintext: bytes, associated: bytes) -> bytes:
    """nonce || ciphertext || tag."""
    aead, nonce_key = _aead(key)
    nonce = hmac.new(nonce_key, len(associated).to_bytes(4, "big") + associated + plaintext,
                     hashlib.sha256).digest()[:NONCE_BYTES]
    return nonce + aead.encrypt(nonce, plaintext, associated)


def open_sealed(key: DataKey, blob: bytes, associated: bytes) -> bytes:
    from cryptography.exceptions import InvalidTag

    aead, _ = _aead(key)
    try:
        return aead.decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], associated)
    except InvalidTag:
        raise UnreadableSealedValue("a sealed value does not open with its subject's key: altered, or copied "
                                    "from another stream, field or subject") from None
