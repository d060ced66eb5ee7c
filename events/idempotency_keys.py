"""Idempotency keys with a meaning beyond one append: other code looks them up or derives them."""

from __future__ import annotations


def message_key(sender_id: str, message_id: str) -> str:
    """A submitted message: deduplicated by (sender, message id)."""
    return f"message:{sender_id}:{message_id}"


def broadcast_key(tx_id: str) -> str:
    """A stock broadcast. Its guard lives 30 days (seed 004's transaction TTL), which is how the
    storefront's echo of our own update is recognised and ignored."""
    return f"broadcast:{tx_id}"
