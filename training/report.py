"""Write an evaluation as JSON (every figure and the exact configuration), Markdown and PNG plots."""

from __future__ import annotations

import json
from pathlib import Path

from training.evaluate import EvalResult

# The plots' fonts have no Chinese glyphs here, so seller types are labelled in English on images.
PLOT_LABELS = {"宝妈": "mum", "快递员": "courier", "导购": "shop guide", "安装维修": "installer", "微商": "micro-shop",
               "学生": "student", "其他": "other"}

HEADLINE = ("pair_hr@10", "pair_ndcg@10", "ndcg@10", "hr@10", "recall@10", "map@10", "pair_hr@20", "pair_ndcg@20",
            "ndcg@20", "hr@20", "recall@20", "map@20",
            "coverage@10", "diversity_category@10", "commission_realised@10", "commission_potential@10")


TABLE = (("pair_hr@10", "pHR@10"), ("pair_ndcg@10", "pNDCG@10"), ("hr@10", "HR@10"), ("ndcg@10", "NDCG@10"),
         ("recall@10", "Rec@10"), ("recall@20", "Rec@20"), ("map@10", "MAP@10"), ("coverage@10", "cov@10"))
# The headline: per test pair first (the standard for these benchmarks), then per group.
HEADLINE_METRICS = ("pair_hr@10", "pair_ndcg@10", "hr@10", "ndcg@10")
DROP_REASONS = {
    "refunded": "refunded (not a purchase)",
    "unknown_group": "group unknown to training",
    "unknown_product": "product unknown to training",
    "seen_in_training": "pair seen in training (--new-pairs-only)",
    "repeated_pair_rows": "repeat of a pair already counted (one pair, one hit)",
}


def headline_lines(result: EvalResult) -> list[str]:
    """One line per headline metric: the model under test against the best other model, with the lift."""
    lines = []
    for metric in HEADLINE_METRICS:
        if metric not in result.metrics.get(result.model_name, {}):
            continue
        best, value = result.best_baseline(metric)
        lines.append(f"{metric}: {result.model_name} {result.metrics[result.model_name][metric]:.4f}, best other {best} "
                     f"{value:.4f}, ×{result.lift(metric):.2f}")
    return lines


def dropped_lines(result: EvalResult) -> list[str]:
    """What happened to the test rows: how many count and why the others do not."""
    d = result.dropped
    if not d:
        return []
    lines = [f"{d['test_rows']:,} test rows: {d['kept_rows']:,} kept as {d['test_pairs']:,} test pairs"
             + (f", {d['evaluated_pairs']:,} of them in the {d['evaluated_groups']:,} evaluated groups"
                if "evaluated_pairs" in d else "") + "; left out:"]
    lines += [f"- {d.get(key, 0):,} {why}" for key, why in DROP_REASONS.items()]
    return lines


def table(result: EvalResult, metric: str = "hr@10") -> str:
    """The model against every baseline side by side (best first on `metric`), and its lift over the best baseline."""
    head = f"{'model':<28}" + "".join(f"{label:>9}" for _, label in TABLE) + f"{'fit s':>8}"
    lines = [head, "-" * len(head)]
    for name, vals in sorted(result.metrics.items(), key=lambda kv: -kv[1].get(metric, 0.0)):
        label = f"* {name}" if name == result.model_name else f"  {name}"
        lines.append(f"{label:<28}" + "".join(f"{vals.get(m, float('nan')):>9.4f}" for m, _ in TABLE)
                     + f"{result.fit_seconds.get(name, float('nan')):>8.1f}")
    for m in dict.fromkeys((metric, "ndcg@10")):
        best, value = result.best_baseline(m)
        lines.append(f"{m} lift of {result.model_name} over the best baseline ({best} {value:.4f}): ×{result.lift(m):.3f}")
    lines += dropped_lines(result)
    return "\n".join(lines)


def write_json(result: EvalResult, path: Path) -> Path:
    """Dump the whole result, configuration included."""
    path.write_text(json.dumps(result.to_dict(), ensure_ascii=False, indent=2, default=str), encoding="utf-8")
    return path


def plot_models(result: EvalResult, metric: str, path: Path) -> Path:
    """Horizontal bar chart of one metric for the model and every baseline."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = sorted(result.metrics, key=lambda m: result.metrics[m].get(metric, 0.0))
    values = [result.metrics[m].get(metric, 0.0) for m in names]
    colours = ["#d62728" if m == result.model_name else "#7f7f7f" for m in names]
    fig, ax = plt.subplots(figsize=(7, 0.35 * len(names) + 1.2))
    ax.barh(names, values, color=colours)
    for y, v in enumerate(values):
        ax.text(v, y, f" {v:.4f}", va="center", fontsize=8)
    ax.set_xlabel(metric)
    ax.set_title(f"{result.dataset}: {metric}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_breakdown(result: EvalResult, kind: str, metric: str, path: Path) -> Path:
    """Grouped bars of one metric per band of a breakdown: the model against the best baseline overall."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    best, _ = result.best_baseline(metric)
    bands = [b for b, models in result.breakdowns[kind].items() if models]
    x = np.arange(len(bands))
    fig, ax = plt.subplots(figsize=(max(5, 1.1 * len(bands) + 2), 3.5))
    for offset, name, colour in ((-0.2, result.model_name, "#d62728"), (0.2, best, "#7f7f7f")):
        vals = [result.breakdowns[kind][b].get(name, {}).get(metric, 0.0) for b in bands]
        ax.bar(x + offset, vals, width=0.4, label=name, color=colour)
    ax.set_xticks(x, [PLOT_LABELS.get(b, b) for b in bands])
    ax.set_ylabel(metric)
    ax.set_title(f"{metric} by {kind}")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def markdown(result: EvalResult, images: list[str]) -> str:
    """The readable report: split, headline table, lift over the best baseline, breakdowns, tuned parameters."""
    lines = [f"# Evaluation: {result.dataset}", ""]
    s = result.split
    shape = s.get("test_shape") or {}
    lines += [f"Clock {s.get('clock', 'real')}; test shape {shape.get('kind', 'window')}, validation carved as "
              f"{(s.get('validation_shape') or {}).get('kind', 'window')}; cut-off {s.get('cutoff')}; {s.get('eval_groups')} "
              f"test groups, {s.get('relevant_pairs')} test pairs, {s.get('items')} products; new pairs only: "
              f"{s.get('new_pairs_only')}.", ""]
    if result.served_model:
        lines += [f"Served model (what `quanxuan train` serves): **{result.served_model}**.", ""]
    for name, why in (s.get("not_evaluated") or {}).items():
        lines += [f"Not evaluated: **{name}** ({why}).", ""]
    lines += ["Per test pair (pair_hr@K: share of test pairs whose product is in the group's top K; pair_ndcg@K: each "
              "pair carries its group's NDCG) and per group (hr@K, ndcg@K: every group counts once).", ""]
    for metric in HEADLINE_METRICS:
        if metric not in result.metrics.get(result.model_name, {}):
            continue
        best, value = result.best_baseline(metric)
        lines.append(f"- **{metric}**: {result.model_name} {result.metrics[result.model_name][metric]:.4f} vs best other "
                     f"{best} {value:.4f} → ×{result.lift(metric):.2f}")
    lines.append("")
    if result.dropped:
        lines += ["## Test rows", ""] + dropped_lines(result) + [""]
    cols = [m for m in HEADLINE if any(m in v for v in result.metrics.values())]
    lines.append("| model | " + " | ".join(cols) + " | fit s |")
    lines.append("|---" * (len(cols) + 2) + "|")
    for name, vals in sorted(result.metrics.items(), key=lambda kv: -kv[1].get("ndcg@10", 0.0)):
        label = f"**{name}**" if name == result.model_name else name
        lines.append(f"| {label} | " + " | ".join(f"{vals.get(c, float('nan')):.4f}" for c in cols)
                     + f" | {result.fit_seconds.get(name, float('nan')):.1f} |")
    lines.append("")
    if result.spearman:
        lines.append("Spearman (per group, averaged) between each model's category preference and the generator's truth:")
        lines.append("")
        lines += [f"- {name}: {value:.3f}" for name, value in result.spearman.items()]
        lines.append("")
    for kind, bands in result.breakdowns.items():
        models = sorted({m for b in bands.values() for m in b})
        if not models:
            continue
        lines += [f"## NDCG@10 by {kind}", "", "| band | groups | " + " | ".join(models) + " |", "|---" * (len(models) + 2) + "|"]
        for band, per_model in bands.items():
            if not per_model:
                continue
            n = next(iter(per_model.values()))["groups"]
            lines.append(f"| {band} | {n} | " + " | ".join(f"{per_model.get(m, {}).get('ndcg@10', float('nan')):.4f}" for m in models) + " |")
        lines.append("")
    lines += ["## Chosen parameters", "", "```json", json.dumps(result.params, ensure_ascii=False, indent=1, default=str), "```", ""]
    lines += [f"![{img}]({img})" for img in images]
    return "\n".join(lines) + "\n"


def write_report(result: EvalResult, out_dir: str | Path) -> Path:
    """Write result.json, report.md and the PNG plots into `out_dir`; returns the Markdown path."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_json(result, out / "result.json")
    images = []
    for metric in ("ndcg@10", "hr@10", "recall@20"):
        name = f"models_{metric.replace('@', '_at_')}.png"
        plot_models(result, metric, out / name)
        images.append(name)
    for kind in result.breakdowns:
        if any(result.breakdowns[kind].values()):
            name = f"breakdown_{kind}.png"
            plot_breakdown(result, kind, "ndcg@10", out / name)
            images.append(name)
    path = out / "report.md"
    path.write_text(markdown(result, images), encoding="utf-8")
    return path
