"""Promo copy quality: law hits, exact numbers, punctuation, short-title retention, diversity and speed.

Prints every figure and writes a Markdown report (default runs/copy_report.md) with the AdvertiseGen
hits listed one by one and ten sample copies per seller type.

    OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/copy_quality.py runs/copy_report.md

Template repeats are counted exactly as the rule says: two copies with the same template id reaching
the same group less than 7 days apart. Copies without a template (the bare fact line, only when every
fitting template was used) are counted separately.

Data: the sample world (features.sample_world.generate) and, when ../shared/data is present, the
7,998 Taobao titles, the community banned-word list and the 1,070 AdvertiseGen ads.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import time
from collections import defaultdict
from datetime import date, timedelta
from pathlib import Path

from features.tagged_titles import normalised, read_tagged_titles

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
CARRIERS = ("这款{}的好物今天到了，需要的私我。", "大家看看，{}，家里用着挺方便。", "{}", "商品详情写着{}，我先收藏了。")
_MONEY = re.compile(r"(\d+(?:\.\d+)?)元")
_RATE = re.compile(r"好评率(\d+(?:\.\d+)?)%")








def numbers_exact(copy, product) -> bool:
    """Every amount and rate in the text equals the product's own numbers (price, coupon price, coupon, rate)."""
    from recsys.promo.render import rating_percent

    allowed = {round(product.price, 2)}
    if 0 < product.coupon < product.price:
        allowed |= {round(product.price - product.coupon, 2), round(product.coupon, 2)}
    amounts = [float(a) for a in _MONEY.findall(copy.text)]
    if not amounts or any(a not in allowed for a in amounts):
        return False
    if "price" in copy.numbers and copy.numbers["price"] != round(product.price, 2):
        return False
    if "final_price" in copy.numbers and copy.numbers["final_price"] != round(product.price - product.coupon, 2):
        return False
    rates = [float(r) for r in _RATE.findall(copy.text)]
    if rates and (product.rating is None or rates != [rating_percent(product.rating)]):
        return False
    return True


def distinct_2(texts: list[str]) -> float:
    """Unique character bigrams over all bigrams, bigrams taken within each text."""
    grams = [t[i : i + 2] for t in texts for i in range(len(t) - 1)]
    return len(set(grams)) / max(1, len(grams))


def audit(copies_and_products) -> dict[str, float]:
    """Law hits, exact numbers, punctuation and length over (copy, product) pairs."""
    from recsys.promo.adlaw import check
    from recsys.promo.render import punctuation_problems

    n = hits = exact = punct = 0
    longest = 0
    for copy, product in copies_and_products:
        n += 1
        hits += bool(check(copy.text))
        exact += numbers_exact(copy, product)
        punct += bool(punctuation_problems(copy.text))
        longest = max(longest, len(copy.text))
    return {"copies": n, "law_hit_copies": hits, "exact_numbers": exact / max(1, n), "punctuation_problems": punct, "max_chars": longest}


def count_repeats(deliveries: list[tuple[str, str, date]], days: int = 7) -> int:
    """The rule as stated: pairs of copies with the same template id reaching the same group less than `days` apart.

    Copies without a template (empty id: the bare fact line when none is left) are not template uses.
    """
    by_group_template: dict[tuple[str, str], list[date]] = defaultdict(list)
    for group, template_id, day in deliveries:
        if template_id:
            by_group_template[(group, template_id)].append(day)
    repeats = 0
    for dates in by_group_template.values():
        dates.sort()
        for i, first in enumerate(dates):
            repeats += sum(1 for later in dates[i + 1 :] if (later - first).days < days)
    return repeats


def _world(seed: int, groups: int, products: int):
    from features.sample_world import generate
    from recsys.promo import ProductInfo

    world = generate(seed=seed, groups=groups, products=products, days=30)
    catalogue = [
        ProductInfo(r.product_id, r.title, r.category, r.brand, float(r.price), float(r.coupon),
                    None if r.rating != r.rating else float(r.rating), int(r.review_count), bool(r.presale))
        for r in world.products.itertuples()
    ]
    seller_type = dict(zip(world.sellers.seller_id, world.sellers.seller_type))
    groups_of: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for r in world.groups.itertuples():
        groups_of[r.seller_id].append((r.group_id, r.theme if isinstance(r.theme, str) else ""))
    return catalogue, seller_type, groups_of


REASON_CODES = ["group_buys_category", "repurchase_due", "similar_to_past", "trending", "segment_popular",
                "high_rating", "coupon", "presale", "new_product"]


def sample_world_run(seed: int, groups: int, products: int, days: int = 7):
    """Render `days` days of 10–20 picks per seller over her groups on the sample world; return copies and figures."""
    from recsys.promo import CopyContext, render_copy

    catalogue, seller_type, groups_of = _world(seed, groups, products)
    rng = random.Random(seed)
    start = date(2025, 6, 9)
    history: dict[str, list[tuple[str, str, date]]] = defaultdict(list)
    deliveries: list[tuple[str, str, date]] = []
    pairs, per_seller_day, exhausted = [], [], 0
    samples: dict[str, list[str]] = defaultdict(list)
    for d in range(days):
        day = start + timedelta(days=d)
        for seller, glist in groups_of.items():
            picks = rng.randint(10, 20)
            texts = []
            for k in range(picks):
                gid, theme = glist[k % len(glist)]
                product = rng.choice(catalogue)
                ctx = CopyContext(gid, seller_type[seller], theme, day, rng.sample(REASON_CODES, 2))
                # The seller's copies to all her groups: the rule is per group, variety per seller.
                copy = render_copy(product, ctx, history[seller])
                exhausted += bool(copy.exhausted)
                history[seller].append((gid, copy.template_id, day))
                deliveries.append((gid, copy.template_id, day))
                pairs.append((copy, product))
                texts.append(copy.text)
                if len(samples[seller_type[seller]]) < 10 and d == 0:
                    samples[seller_type[seller]].append(f"[{theme or '无主题'}/{copy.template_id}] {copy.text}")
            per_seller_day.append(distinct_2(texts))
    figures = audit(pairs)
    figures["template_repeats_within_7_days"] = count_repeats(deliveries)
    figures["copies_without_template"] = exhausted
    figures["distinct_template_ids"] = len({t for _, t, _ in deliveries if t})
    figures["distinct2_mean"] = sum(per_seller_day) / len(per_seller_day)
    figures["distinct2_min"] = min(per_seller_day)
    return figures, samples, catalogue


def per_group_run(seed: int, groups: int, products: int, days: int, per_day: int) -> dict[str, float]:
    """Every group gets exactly `per_day` picks a day for `days` days: repeats, bare copies and Distinct-2 per group-day."""
    from recsys.promo import CopyContext, render_copy

    catalogue, seller_type, groups_of = _world(seed, groups, products)
    rng = random.Random(seed + 1)
    start = date(2025, 6, 9)
    history: dict[str, list[tuple[str, str, date]]] = defaultdict(list)
    deliveries: list[tuple[str, str, date]] = []
    per_group_day, exhausted = [], 0
    for d in range(days):
        day = start + timedelta(days=d)
        for seller, glist in groups_of.items():
            for gid, theme in glist:
                texts = []
                for product in rng.sample(catalogue, per_day):
                    ctx = CopyContext(gid, seller_type[seller], theme, day, rng.sample(REASON_CODES, 2))
                    copy = render_copy(product, ctx, history[seller])
                    exhausted += bool(copy.exhausted)
                    history[seller].append((gid, copy.template_id, day))
                    deliveries.append((gid, copy.template_id, day))
                    texts.append(copy.text)
                per_group_day.append(distinct_2(texts))
    return {"copies": len(deliveries), "template_repeats_within_7_days": count_repeats(deliveries),
            "copies_without_template": exhausted, "distinct2_min_group_day": min(per_group_day),
            "distinct2_mean_group_day": sum(per_group_day) / len(per_group_day)}


def taobao_run(folder: Path, seed: int):
    """Short-title retention (brand given / blind) and copy audit over the real Taobao titles."""
    from recsys.promo import CopyContext, ProductInfo, render_copy, short_title
    from features.schema import GROUP_THEMES, SELLER_TYPES

    titles = [(t.title, list(t.brands), list(t.products)) for t in read_tagged_titles(folder)]
    rng = random.Random(seed)
    retention = {}
    for mode in ("given", "blind"):
        kb = kp = kj = nb = np_ = nj = 0
        for title, brands, products in titles:
            short = normalised(short_title(title, brands[0] if (mode == "given" and brands) else None))
            has_b = any(normalised(b) in short for b in brands)
            has_p = any(normalised(p) in short for p in products)
            if brands:
                nb += 1
                kb += has_b
            if products:
                np_ += 1
                kp += has_p
            if brands and products:
                nj += 1
                kj += has_b and has_p
        retention[mode] = {"brand": kb / nb, "product": kp / np_, "both": kj / nj, "titles_with_both": nj}
    pairs = []
    day = date(2025, 11, 5)
    for i, (title, brands, _) in enumerate(titles):
        price = round(rng.uniform(5, 800), rng.choice([0, 1, 2]))
        coupon = float(rng.choice([0, 0, 3, 5, 10, 20]))
        product = ProductInfo(f"t{i}", title, "", brands[0] if brands else "", price, coupon if coupon < price else 0.0,
                              round(rng.uniform(0.85, 1.0), 3), rng.randint(0, 50000), rng.random() < 0.05)
        ctx = CopyContext(f"g{i % 97}", rng.choice(SELLER_TYPES), rng.choice(GROUP_THEMES), day, ["trending"])
        pairs.append((render_copy(product, ctx), product))
    return retention, audit(pairs), len(titles)


def coverage_run(path: Path):
    """Share of community-list entries caught in every carrier sentence, and of (entry, carrier) pairs."""
    from recsys.promo.adlaw import check

    words = list(dict.fromkeys(w.strip() for w in path.read_text("utf-8").splitlines() if w.strip()))
    all_caught = pair_caught = 0
    missed = []
    for word in words:
        caught = 0
        for carrier in CARRIERS:
            text = carrier.format(word)
            a = carrier.index("{}")
            b = a + len(word)
            caught += any(h.start < b and a < h.end for h in check(text))
        pair_caught += caught
        all_caught += caught == len(CARRIERS)
        if caught < len(CARRIERS):
            missed.append(f"{word} ({caught}/{len(CARRIERS)})")
    return {"entries": len(words), "caught_everywhere": all_caught / len(words),
            "pairs_caught": pair_caught / (len(words) * len(CARRIERS))}, missed


def advertisegen_run(path: Path):
    """Every hit on the real ads, with its context, for a reader to judge."""
    from recsys.promo.adlaw import check

    ads = [json.loads(line)["summary"] for line in path.read_text("utf-8").splitlines() if line.strip()]
    rows = []
    flagged = 0
    for i, ad in enumerate(ads):
        hits = check(ad)
        flagged += bool(hits)
        for h in hits:
            rows.append((i, h.term, h.category, ad[max(0, h.start - 12) : h.end + 12].replace("|", "｜")))
    return len(ads), flagged, rows


def speed_run(catalogue, n: int = 20000) -> tuple[float, float]:
    """Copies per second on one core: cold (first sight of each product) and warm (cached titles)."""
    from recsys.promo import CopyContext, render_copy
    from recsys.promo.render import _title_parts

    _title_parts.cache_clear()
    ctxs = [CopyContext(f"g{i}", "宝妈", "母婴", date(2025, 7, 9) + timedelta(days=i % 30), ["trending"]) for i in range(n)]
    t0 = time.perf_counter()
    for product in catalogue:
        render_copy(product, ctxs[0])
    cold = len(catalogue) / (time.perf_counter() - t0)
    t0 = time.perf_counter()
    for i, ctx in enumerate(ctxs):
        render_copy(catalogue[i % len(catalogue)], ctx)
    warm = n / (time.perf_counter() - t0)
    return cold, warm


def main() -> None:
    """Run every measurement, print the figures and write the report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("report", nargs="?", default="runs/copy_report.md")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--groups", type=int, default=300)
    parser.add_argument("--products", type=int, default=2000)
    parser.add_argument("--days", type=int, default=14, help="Days rendered (the no-repeat window is 7).")
    args = parser.parse_args()
    from recsys.promo.adlaw import lexicon_version

    lines = [f"# Promo copy quality (lexicon {lexicon_version()})", ""]

    def emit(text: str = "") -> None:
        print(text)
        lines.append(text)

    figures, samples, catalogue = sample_world_run(args.seed, args.groups, args.products, args.days)
    emit(f"## Sample world (seed {args.seed}, {args.groups} groups, {args.products} products, {args.days} days, "
         "10–20 picks per seller per day; Distinct-2 per seller-day)")
    for key, value in figures.items():
        emit(f"- {key}: {value:.4f}" if isinstance(value, float) else f"- {key}: {value}")
    group_figures = per_group_run(args.seed, args.groups, args.products, args.days, per_day=10)
    emit(f"\n## Every group, 10 picks a day for {args.days} days")
    for key, value in group_figures.items():
        emit(f"- {key}: {value:.4f}" if isinstance(value, float) else f"- {key}: {value}")
    cold, warm = speed_run(catalogue)
    emit(f"- speed, one core: {cold:,.0f} copies/s on first sight of a product, {warm:,.0f} copies/s with cached titles")

    if (SHARED / "taobao_title_ner").exists():
        retention, taobao_audit, n_titles = taobao_run(SHARED / "taobao_title_ner", args.seed)
        emit(f"\n## Taobao titles ({n_titles})")
        for mode, r in retention.items():
            emit(f"- short title, brand {mode}: brand kept {r['brand']:.3f}, product word kept {r['product']:.3f}, "
                 f"both kept {r['both']:.3f} (of {r['titles_with_both']} titles with both)")
        for key, value in taobao_audit.items():
            emit(f"- copy {key}: {value:.4f}" if isinstance(value, float) else f"- copy {key}: {value}")
    if (SHARED / "ad_law_banned_words").exists():
        cov, missed = coverage_run(SHARED / "ad_law_banned_words" / "es3344520_Dete.txt")
        emit("\n## Community banned-word list in ordinary sentences")
        emit(f"- entries: {cov['entries']}; caught in all {len(CARRIERS)} carrier sentences: {cov['caught_everywhere']:.3f}; "
             f"(entry, sentence) pairs caught: {cov['pairs_caught']:.3f}")
        emit(f"- not caught everywhere: {', '.join(missed)}")
    if (SHARED / "advertisegen_dev").exists():
        n_ads, flagged, rows = advertisegen_run(SHARED / "advertisegen_dev" / "dev.json")
        emit(f"\n## AdvertiseGen dev ({n_ads} real ads)")
        emit(f"- ads with any hit: {flagged} ({flagged / n_ads:.3%}); every hit is listed below to judge claim or not")
        lines.append("\n| ad | term | category | context |\n|---|---|---|---|")
        lines.extend(f"| {i} | {term} | {cat} | {ctx} |" for i, term, cat, ctx in rows)

    lines.append("\n## Ten sample copies per seller type (sample world, day 1)")
    for seller, texts in samples.items():
        lines.append(f"\n### {seller}")
        lines.extend(f"- {t}" for t in texts)
    out = Path(args.report)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines) + "\n", "utf-8")
    print(f"\nreport written to {out}")


if __name__ == "__main__":
    main()
