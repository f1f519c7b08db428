"""Promo copy for a whole catalogue, for ops to preview: `quanxuan copy render --products FILE.csv --out copies.jsonl`.

One JSON line per product × seller type × date: the text, template id, short title, selling points,
the numbers shown and the product facts that chose the wording. The products file follows the
contract's products table (CSV or Parquet; title, brand, category, price, commission_rate, rating,
review_count, coupon, presale, launched_at), and is checked like any other input.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from datetime import date
from pathlib import Path
from typing import Any


def configure(parser: argparse.ArgumentParser) -> None:
    """The `render` action and its options."""
    actions = parser.add_subparsers(dest="action", required=True, metavar="{render}")
    render = actions.add_parser("render", help="render copy for every product of a products file")
    render.add_argument("--products", required=True, metavar="FILE", help="products table (CSV or Parquet, as in the contract)")
    render.add_argument("--seller-type", action="append", default=None, metavar="T",
                        help="seller type to write for (repeatable; default: every seller type)")
    render.add_argument("--theme", default="", metavar="T", help="group theme, such as 母婴 or 邻里 (default: none)")
    render.add_argument("--date", action="append", default=None, metavar="D",
                        help="day of the copy, YYYY-MM-DD (repeatable; default: today)")
    render.add_argument("--out", required=True, metavar="FILE", help="JSON Lines file to write ('-' for standard output)")


def _value(value: Any, default: Any) -> Any:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return default
    try:
        import pandas as pd

        if value is pd.NaT or pd.isna(value):
            return default
    except (TypeError, ValueError):
        pass
    return value


def _launch(value: Any) -> date | None:
    value = _value(value, None)
    if value is None:
        return None
    return value.date() if hasattr(value, "date") else date.fromisoformat(str(value)[:10])


def run(args: argparse.Namespace) -> int:
    """Write the copies; exit 2 on an unreadable products file or an unknown seller type."""
    from features.loading import load_table
    from contracts.schema import SELLER_TYPES
    from features.validation import ValidationError
    from recsys.promo import CopyContext, ProductInfo, render_copy
    from recsys.promo.render import facts_of

    seller_types = args.seller_type or list(SELLER_TYPES)
    unknown = [t for t in seller_types if t not in SELLER_TYPES]
    if unknown:
        print(f"copy render: unknown seller type {', '.join(unknown)} (one of {'/'.join(SELLER_TYPES)})", file=sys.stderr)
        return 2
    try:
        days = [date.fromisoformat(d) for d in (args.date or [date.today().isoformat()])]
    except ValueError as exc:
        print(f"copy render: --date: {exc}", file=sys.stderr)
        return 2
    try:
        products = load_table(args.products, "products")
    except (ValidationError, OSError) as exc:
        print(f"copy render: {args.products}: {exc}", file=sys.stderr)
        return 2
    out = sys.stdout if args.out == "-" else Path(args.out).open("w", encoding="utf-8")
    written = 0
    try:
        for row in products.to_dict("records"):
            rating = _value(row.get("rating"), None)
            product = ProductInfo(
                product_id=str(row["product_id"]), title=str(row["title"]), category=str(_value(row.get("category"), "")),
                brand=str(_value(row.get("brand"), "")), price=float(row["price"]),
                coupon=float(_value(row.get("coupon"), 0.0)), rating=None if rating is None else float(rating),
                review_count=int(_value(row.get("review_count"), 0)), presale=bool(_value(row.get("presale"), False)),
                launched_at=_launch(row.get("launched_at")),
            )
            history: list[tuple[str, str, date]] = []
            for seller_type in seller_types:
                for day in days:
                    # One preview group per seller type and theme: the no-repeat rule then spreads the templates.
                    ctx = CopyContext(f"preview-{seller_type}-{args.theme}", seller_type, args.theme, day, [])
                    copy = render_copy(product, ctx, history)
                    history.append((ctx.group_id, copy.template_id, day))
                    facts = facts_of(product, day)
                    line = {
                        "product_id": product.product_id, "seller_type": seller_type, "theme": args.theme,
                        "date": day.isoformat(), "text": copy.text, "template_id": copy.template_id,
                        "short_title": copy.short_title, "selling_points": list(copy.selling_points),
                        "numbers": copy.numbers, "exhausted": copy.exhausted,
                        "facts": {"main": facts.main, "kind": facts.kind, "audience": facts.audience,
                                  "tags": sorted(facts.tags)},
                    }
                    out.write(json.dumps(line, ensure_ascii=False) + "\n")
                    written += 1
    finally:
        if out is not sys.stdout:
            out.close()
    print(f"copy render: {written} copies of {len(products)} products written to {args.out}", file=sys.stderr)
    return 0
