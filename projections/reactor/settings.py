"""The reactor's settings, apart from its rules so that a rule, the ``Reaction`` it reads and the
composition root that builds them all import these without importing each other."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta


@dataclass(frozen=True)
class AlertSettings:
    low_stock_threshold: int = 5
    per_sku_thresholds: Mapping[str, int] = field(default_factory=dict)

    def threshold(self, sku: str) -> int:
        return self.per_sku_thresholds.get(sku, self.low_stock_threshold)



@dataclass(frozen=True)
class ShopifySyncSettings:
    """``push_location``: the Shopify location id whose ``available`` our pushes set (it must be a
    counted location). ``echo_window``: how long after a push a level of the pushed value is taken
    for its echo."""

    push_location: str
    echo_window: timedelta = timedelta(minutes=30)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> "ShopifySyncSettings | None":
        """DYNAFOLD_SHOPIFY_PUSH_LOCATION (a Shopify location id; unset: no pushes), which must be one
        of DYNAFOLD_SHOPIFY_LOCATIONS when those are set; DYNAFOLD_SHOPIFY_ECHO_WINDOW_SECONDS."""
        location = env.get("DYNAFOLD_SHOPIFY_PUSH_LOCATION", "").strip()
        if not location:
            return None
        if not location.isdigit():
            raise ValueError(f"DYNAFOLD_SHOPIFY_PUSH_LOCATION must be a Shopify location id (digits), not {location!r}")
        counted = {part.strip() for part in env.get("DYNAFOLD_SHOPIFY_LOCATIONS", "").split(",") if part.strip()}
        if counted and location not in counted:
            raise ValueError(f"DYNAFOLD_SHOPIFY_PUSH_LOCATION {location} is not one of DYNAFOLD_SHOPIFY_LOCATIONS: "
                             "a push there would not change what Shopify shows over the counted locations")
        window = int(env.get("DYNAFOLD_SHOPIFY_ECHO_WINDOW_SECONDS", "1800"))
        if window <= 0:
            raise ValueError("DYNAFOLD_SHOPIFY_ECHO_WINDOW_SECONDS must be positive")
        return cls(location, timedelta(seconds=window))
