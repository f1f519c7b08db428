"""The bridge from a pick (artifact rows) to the promo copy renderer in `recsys.promo.render`."""

from __future__ import annotations

from datetime import date
from typing import Any

from recsys.config import CopyConfig


def render_pick_copy(product: dict[str, Any], pick: dict[str, Any], group: dict[str, Any], day: date,
                     history: list[tuple[str, date]], cfg: CopyConfig) -> Any:
    """Render one pick's copy for a group; `history` is the group's recent (template_id, day) pairs."""
    from recsys.promo.render import render_copy  # noqa: F401 - wired up once the renderer lands

    raise NotImplementedError("recsys.promo.render is not available yet")
