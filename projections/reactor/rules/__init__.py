"""The reactor's rules, in the order it applies them to each event (pushes before the alerts).

A package of its own so that the projector, which folds and never reacts, does not load them.
"""

from __future__ import annotations

from projections.reactor.reaction import Rule
from projections.reactor.rules import alerts, broadcast, shopify_sync

REACTOR_RULES: tuple[Rule, ...] = (*broadcast.RULES, *shopify_sync.RULES, *alerts.RULES)
