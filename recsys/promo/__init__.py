"""Promo copy (转发语) for a pick, its short title and selling points, and the advertising-law check."""

from __future__ import annotations

from recsys.promo.adlaw import Hit, check
from recsys.promo.render import CopyContext, ProductInfo, RenderedCopy, render_copy, render_for_group
from recsys.promo.shorten import short_title

__all__ = ["CopyContext", "Hit", "ProductInfo", "RenderedCopy", "check", "render_copy", "render_for_group", "short_title"]
