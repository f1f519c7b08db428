"""Advertising-law check quality: recall on the community list and on disguised variants, false hits on real ads, speed.

    .venv/bin/python benchmarks/adlaw_quality.py [--data ../shared/data]

1. Recall on the community banned-word list (ad_law_banned_words), each entry embedded in four carrier
   sentences: a pair counts as caught when a hit overlaps the embedded entry. Printed for every entry and
   for the claim entries, i.e. without the seven ordinary words the check deliberately leaves alone when
   bare (推荐, 安全, 选用, 试用, 指定, 排序, 热销; see recsys/promo/adlaw.py); those are then checked inside the
   claim phrases that make them unlawful.
2. Recall on variants generated from the claim entries and from the terms issue 16 listed as missed:
   spaces, middle dots, hyphens and one-character fragments between characters, full-width letters and
   digits, digit forms of 一 (第1, NO1, TOP１ …), upper/lower case, and hand-written traditional forms.
3. False hits on the 1,070 AdvertiseGen human ads (advertisegen_dev): every hit was read and judged; a hit is
   false when the span is not an instance of a banned claim (a design-detail pointer, a title, part of
   another word). Hits without a verdict (after a lexicon change) count as false and are printed.
4. Speed: microseconds per check() on the ads, on clean short copy and on short copy with a hit, one core.

Skips with a message when the data folder is absent.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from recsys.promo.adlaw import check, lexicon_version  # noqa: E402

CARRIERS = ("这款{}的好物今天到了，需要的私我。", "大家看看，{}，家里用着挺方便。", "{}", "商品详情写着{}，我先收藏了。")

# Ordinary words of the community list, not flagged when bare, and a claim phrase for each that is.
CONTEXT_WORDS = {"推荐": "专家推荐", "安全": "绝对安全", "选用": "机关选用", "试用": "试用无效退款",
                 "指定": "官方指定", "排序": "排序第一", "热销": "热销全国第一"}

# The terms issue 16 listed as missed, as written there.
ISSUE_TERMS = ("第1名", "排名第1", "NO1", "No.1", "TOP1", "ＴＯＰ１", "１００％有效", "最 好 用", "最·好", "驰名商标", "祛痘",
               "生发", "防脱发", "抗过敏", "调节免疫力", "7天见效", "无任何副作用", "医用级", "限时秒杀")

# Traditional forms, written by hand (not produced by the check's own table).
TRADITIONAL = ("最佳", "國家級", "頂級", "獨一無二", "絕對", "極品", "極致", "無副作用", "根治", "馳名商標", "祛痘", "抗過敏",
               "調節免疫力", "醫用級", "限時秒殺", "特供", "開光", "招財進寶", "點擊領獎", "全網第一", "銷量冠軍", "無效退款",
               "防脫髮", "7天見效", "包過", "穩賺", "出廠價", "專家推薦", "第一品牌", "世界領先")

# Verdicts on every hit of lexicon 2025.3 on AdvertiseGen: ad line -> terms judged true claims.
# 绝对/极佳/极致/独一无二/一流/王牌/首选 are list entries used as claims; 最 + adjective about the garment
# (最显气质, 最适合, 最轻松的方式) is a superlative claim; 提臀瘦身 claims a slimming function.
TRUE_HITS = {
    3: "独一无二", 34: "最美", 66: "绝佳", 67: "绝对 首选", 71: "最为", 108: "极佳", 120: "绝对", 140: "绝对",
    178: "极致", 195: "绝对", 250: "最", 254: "最", 265: "最佳", 276: "最", 354: "最", 367: "绝对", 377: "最大",
    398: "极佳", 401: "王牌", 413: "极佳", 471: "最具", 505: "极佳", 510: "绝对", 517: "极致", 528: "极致",
    532: "最", 545: "极致 极佳", 551: "极佳", 565: "最", 583: "极佳", 595: "极佳", 597: "绝对", 604: "首选",
    607: "最为", 618: "最", 639: "极佳", 671: "一流", 673: "极佳", 685: "瘦身", 687: "极佳", 691: "最",
    715: "独一无二", 750: "极佳", 757: "最", 796: "独一无二", 824: "最美", 844: "最 首选", 869: "绝对", 870: "最美",
    872: "绝对", 877: "绝佳", 878: "最", 881: "绝对", 903: "最好", 907: "最大程度", 942: "最是", 948: "独一无二",
}
# Hits judged false: 最最别样灵动的设计亮点 points at a design detail of the garment itself.
FALSE_HITS = {57: "最"}


# Copy shaped like what the renderer writes, without any hit: the common case on the serving path.
CLEAN_COPY = ("【今日好物】{}，券后19.9元，好评率98.6%，用着软和。", "宝妈们看过来，{}到了，3562条评价，需要的私我。",
              "{}，周末在家用正合适，今晚8点前下单明天到。", "上新：{}，到手价59元，领券再减5元，链接在群公告。")


def _caught(text: str, a: int, b: int) -> bool:
    return any(h.start < b and a < h.end for h in check(text))


def _pairs_caught(words: list[str]) -> tuple[int, int, list[str]]:
    caught = total = 0
    missed = []
    for word in words:
        n = 0
        for carrier in CARRIERS:
            a = carrier.index("{}")
            n += _caught(carrier.format(word), a, a + len(word))
        caught += n
        total += len(CARRIERS)
        if n < len(CARRIERS):
            missed.append(f"{word} ({n}/{len(CARRIERS)})")
    return caught, total, missed


def _full_width(text: str) -> str:
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in text)


def variants(word: str) -> list[str]:
    """Disguised forms of one entry: separators, fragments, full width, digit forms and case."""
    out = []
    if len(word) > 1:
        out += [" ".join(word), "·".join(word), "-".join(word), "，".join(word)]
    if any(c.isascii() and c.isalnum() for c in word):
        out += [_full_width(word), word.lower(), word.upper(), word.replace(".", ""), word.replace(".", " ")]
    if "第一" in word:
        out += [word.replace("第一", "第1"), word.replace("第一", "第１"), word.replace("第一", "第 1")]
    if word.endswith(".1") or word.endswith("P1"):
        stem = word.rstrip("1").rstrip(".")
        out += [stem + "1", stem + " 1", stem.title() + ".1", _full_width(stem + "1")]
    if "100%" in word:
        out += [word.replace("100%", "100％"), word.replace("100%", "１００％"), word.replace("100%", "100 %")]
    return [v for v in dict.fromkeys(out) if v != word]


def advertisegen(path: Path) -> tuple[int, int, int, list[str]]:
    """(ads, ads with any hit, ads with a false or unjudged hit, lines describing those hits)."""
    ads = [json.loads(line)["summary"] for line in path.read_text("utf-8").splitlines() if line.strip()]
    flagged = false = 0
    notes = []
    for i, ad in enumerate(ads):
        hits = check(ad)
        flagged += bool(hits)
        bad = False
        true_terms = TRUE_HITS.get(i, "").split()
        for h in hits:
            if h.term in true_terms:
                continue
            bad = True
            verdict = "false" if h.term in FALSE_HITS.get(i, "").split() else "UNJUDGED"
            notes.append(f"  {verdict} line {i}: {h.term} [{h.category}] …{ad[max(0, h.start - 10) : h.end + 10]}…")
        false += bad
    return len(ads), flagged, false, notes


def speed(texts: list[str], rounds: int) -> float:
    """Microseconds per check() call over `texts`, best of three."""
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        for _ in range(rounds):
            for text in texts:
                check(text)
        best = min(best, (time.perf_counter() - t0) / (rounds * len(texts)))
    return best * 1e6


def main() -> None:
    """Print every figure; exit 0 with a message when the data is absent."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    args = parser.parse_args()
    words_path = args.data / "ad_law_banned_words" / "es3344520_Dete.txt"
    ads_path = args.data / "advertisegen_dev" / "dev.json"
    if not words_path.exists() or not ads_path.exists():
        print(f"adlaw_quality: skipped, {args.data} lacks ad_law_banned_words/ or advertisegen_dev/")
        return
    check("预热")  # load and compile the lexicon outside the timings
    print(f"lexicon {lexicon_version()}")

    words = list(dict.fromkeys(w.strip() for w in words_path.read_text("utf-8").splitlines() if w.strip()))
    claims = [w for w in words if w not in CONTEXT_WORDS]
    c_all, n_all, missed_all = _pairs_caught(words)
    c_claims, n_claims, missed_claims = _pairs_caught(claims)
    c_ctx, n_ctx, missed_ctx = _pairs_caught(list(CONTEXT_WORDS.values()))
    print(f"community list, {len(words)} entries x {len(CARRIERS)} carriers: recall {c_all / n_all:.1%} "
          f"(missed: {', '.join(missed_all) or 'none'})")
    print(f"  claim entries ({len(claims)}): recall {c_claims / n_claims:.1%}"
          f"{' missed: ' + ', '.join(missed_claims) if missed_claims else ''}")
    print(f"  ordinary words inside claim phrases ({len(CONTEXT_WORDS)}): recall {c_ctx / n_ctx:.1%}"
          f"{' missed: ' + ', '.join(missed_ctx) if missed_ctx else ''}")

    generated = [v for w in claims for v in variants(w)]
    c_var, n_var, missed_var = _pairs_caught(generated)
    c_iss, n_iss, missed_iss = _pairs_caught(list(ISSUE_TERMS) + [v for w in ISSUE_TERMS for v in variants(w)])
    c_tr, n_tr, missed_tr = _pairs_caught(list(TRADITIONAL))
    print(f"variants of the claim entries ({len(generated)}: spacing, dots, hyphens, fragments, full width, digits, case): "
          f"recall {c_var / n_var:.1%}{' missed: ' + ', '.join(missed_var[:20]) if missed_var else ''}")
    print(f"issue 16 terms and their variants ({n_iss // len(CARRIERS)}): recall {c_iss / n_iss:.1%}"
          f"{' missed: ' + ', '.join(missed_iss) if missed_iss else ''}")
    print(f"traditional forms ({len(TRADITIONAL)}): recall {c_tr / n_tr:.1%}"
          f"{' missed: ' + ', '.join(missed_tr) if missed_tr else ''}")
    c_sum, n_sum = c_claims + c_var + c_iss + c_tr, n_claims + n_var + n_iss + n_tr
    print(f"recall including variants (claim entries + every variant set, {n_sum} pairs): {c_sum / n_sum:.2%} "
          f"[target >= 99%: {'met' if c_sum / n_sum >= 0.99 else 'NOT met'}]")

    n_ads, flagged, false, notes = advertisegen(ads_path)
    print(f"AdvertiseGen human ads: {n_ads}; {flagged} with a hit ({flagged / n_ads:.1%}), {false} of them with a false or "
          f"unjudged hit: false-hit rate {false / n_ads:.2%} [target <= 1%: {'met' if false / n_ads <= 0.01 else 'NOT met'}]")
    for note in notes:
        print(note)

    ads = [json.loads(line)["summary"] for line in ads_path.read_text("utf-8").splitlines() if line.strip()]
    clean = [c.format(w) for c in CLEAN_COPY for w in ("纯棉口水巾10条装", "九阳豆浆机", "蓝月亮洗衣液3kg", "三只松鼠坚果礼盒")]
    flagged_copy = [c.format(w) for w in claims[:100] for c in CARRIERS[:2]]
    print(f"speed, one core: {speed(ads, 3):.0f} µs per ad (mean {sum(map(len, ads)) / len(ads):.0f} chars); "
          f"{speed(clean, 30):.0f} µs per clean copy (mean {sum(map(len, clean)) / len(clean):.0f} chars); "
          f"{speed(flagged_copy, 5):.0f} µs per copy with a hit (mean {sum(map(len, flagged_copy)) / len(flagged_copy):.0f} chars)")

if __name__ == "__main__":
    main()
