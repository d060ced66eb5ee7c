"""The reactor's rules, in the order it applies them to each event (pushes before the alerts).

Apart from the view registry so the projector, which folds and never reacts, does not load them.
"""

from __future__ import annotations

from projections import alert_rules, broadcast_rules, shopify_sync
from projections.reaction import Rule

REACTOR_RULES: tuple[Rule, ...] = (*broadcast_rules.RULES, *shopify_sync.RULES, *alert_rules.RULES)
