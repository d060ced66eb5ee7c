"""Idempotency keys with a meaning beyond one append: other code looks them up or derives them."""

from __future__ import annotations


def message_key(sender_id: str, message_id: str) -> str:
    """A submitted message: deduplicated by (sender, message id)."""
    return f"message:{sender_id}:{message_id}"


def broadcast_key(tx_id: str) -> str:
    """A stock broadcast. Its guard lives 30 days (seed 004's transaction TTL), which is how the
    storefront's echo of our own update is recognised and ignored."""
    return f"broadcast:{tx_id}"


def shopify_delivery_key(topic: str, event_id: str) -> str:
    """One Shopify webhook event: its X-Shopify-Event-Id (the X-Shopify-Webhook-Id without one)."""
    return f"shopify:{topic}:{event_id}"


def shopify_effect_key(topic: str, subject: str, subject_id: str) -> str:
    """What a Shopify webhook caused, keyed by its subject (an order, a refund) whatever delivery
    brought it. A '#' follows the topic where a delivery key has ':', so no event id, however it
    is spelt, makes a delivery key equal to an effect key."""
    return f"shopify:{topic}#{subject}:{subject_id}"
