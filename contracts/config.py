"""All configuration in one typed place: features, candidates, ranker, blend weights, rules, copy, service.

Every section is a pydantic model with documented ranges. `Config.load(path)` reads a TOML or
JSON file (any subset of sections); environment variables prefixed `QUANXUAN_` override the
service settings. `config_hash` fingerprints whatever produced a set of picks.
"""

from __future__ import annotations

import hashlib
import json
import os
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class FeatureConfig(_Section):
    """How interactions and profiles are built."""

    half_life_days: float | None = Field(14.0, ge=0, le=3650, description="Half-life of the time decay on interactions; "
                                         "0 or None: no decay (always the case on data without a real clock).")
    confidence: Literal["bm25", "log", "none"] = Field("bm25", description="Confidence scaling of the interaction matrix.")
    bm25_k1: float = Field(1.2, gt=0, le=10)
    bm25_b: float = Field(0.75, ge=0, le=1)
    log_alpha: float = Field(10.0, gt=0, le=1000, description="c = 1 + alpha·log(1 + x/eps) when confidence='log'.")
    cold_min_orders: int = Field(3, ge=0, le=1000, description="Groups with fewer orders than this count as cold.")
    embedding_model: Literal["e5-small"] = "e5-small"
    title_embeddings: Literal["auto", "on", "off"] = Field(
        "auto", description="Embed product titles for content similarity; auto = only when titles are real text, "
        "not copies of the product id (as adapted datasets without titles have).")
    embedding_batch_size: int = Field(64, ge=1, le=4096, description="Titles per forward pass of the embedding model.")
    embedding_threads: int = Field(0, ge=0, le=256, description="torch threads while embedding; 0 keeps torch's default.")
    conversion_prior_strength: float = Field(20.0, ge=0, le=1e6, description="Pseudo-pushes at the overall rate added to every orders-per-push rate.")
    share_prior_strength: float = Field(5.0, ge=0, le=1e6, description="Pseudo-orders shrinking a group's category share to its segment's (and a segment's to the whole).")
    default_cycle_days: float = Field(30.0, gt=0, le=3650, description="Repurchase cycle when no group in the data bought a category twice.")
    repurchase_due_ratio: float = Field(0.8, gt=0, le=100, description="days since last purchase / cycle at which a repurchase counts as due.")
    min_log_price_scale: float = Field(0.1, gt=0, le=10, description="Floor on a group's log-price spread when z-scoring a product's price against it.")
    cache_dir: str = Field("", description="Model and embedding cache; empty means ~/.cache/quanxuan or QUANXUAN_CACHE_DIR.")


class CandidateConfig(_Section):
    """Candidate generation: which sources, how many, and their hyper-parameters."""

    per_source: int = Field(100, ge=1, le=5000, description="Candidates taken from each source per group.")
    union_size: int = Field(200, ge=1, le=10000, description="Candidates kept per group after the union.")
    union_reserved: int = Field(10, ge=0, le=5000, description="Each source's top this many candidates of a group are "
                                "kept in the union before any proposed by several sources, so that what one source "
                                "alone finds (EASE, kNN) is not cut by the popular items every source proposes.")
    als_factors: int = Field(64, ge=2, le=1024)
    als_regularization: float = Field(0.05, ge=0, le=100)
    als_iterations: int = Field(15, ge=1, le=200)
    algorithm: Literal["als", "bpr"] = "als"
    knn_neighbours: int = Field(100, ge=1, le=5000)
    ease_lambda: float = Field(250.0, gt=0, le=1e7)
    ease_max_items: Annotated[int, Field(ge=1)] | Literal["auto"] = Field(
        "auto", description="Products EASE models (the most bought; others are not proposed by it): 'auto' takes every "
        "bought product when the dense item × item matrices fit in ease_memory_share of the available memory, else as "
        "many of the most bought as fit; an integer fixes the number.")
    ease_memory_share: float = Field(0.25, gt=0, le=0.9, description="Share of the available memory EASE's dense "
                                     "matrices may take when ease_max_items is 'auto'.")
    trending_days: int = Field(3, ge=1, le=60)
    trending_baseline_days: int = Field(14, ge=1, le=365)
    content_dims: int = Field(0, ge=0, le=4096, description="Content similarity in this many SVD dimensions of the title "
                              "vectors (0 = the vectors themselves): 64 makes scoring 100k products a dense product like "
                              "ALS's, for catalogues where the exact cosine costs too much per group.")
    threads: int = Field(1, ge=0, le=256, description="Threads for fitting ALS / BPR and item-kNN (implicit); 0 = every core.")
    seed: int = 7
    device: Literal["auto", "cpu", "cuda"] = Field("cpu", description="Where ALS fitting (with a CUDA build of implicit) "
                                                   "and ALS top-K scoring (torch) run; 'auto' takes a GPU when present.")
    # TIFU-KNN (Hu et al., SIGIR 2020), recsys/candidates/tifu_knn.py; defaults are the paper's Ta Feng setting.
    tifu_neighbours: int = Field(300, ge=1, le=5000, description="TIFU-KNN: nearest groups k whose vectors are averaged.")
    tifu_within_decay: float = Field(0.9, gt=0, le=1, description="TIFU-KNN r_b: decay per basket within a group of "
                                     "baskets (1 = no decay).")
    tifu_group_decay: float = Field(0.7, gt=0, le=1, description="TIFU-KNN r_g: decay per group of baskets (1 = no decay).")
    tifu_groups: int = Field(7, ge=1, le=1000, description="TIFU-KNN m: a group's baskets (order days) are cut into at "
                             "most this many consecutive groups.")
    tifu_alpha: float = Field(0.7, ge=0, le=1, description="TIFU-KNN α: weight of the group's own vector; 1 − α goes to "
                              "its neighbours' mean.")
    tifu_similarity: Literal["cosine", "euclidean"] = Field("cosine", description="TIFU-KNN: how neighbours are found "
                                                            "(the authors' code uses Euclidean distance).")
    tifu_exclude_seen: bool = Field(False, description="TIFU-KNN: drop items the group already bought (repeats are "
                                    "TIFU-KNN's strength, so they are proposed by default).")
    tifu_new_item_weight: float = Field(0.0, ge=0, le=10, description="TIFU-KNN: weight of the item-item (cosine) term "
                                        "that adds items the group never bought; 0 = the paper's model.")
    tifu_item_neighbours: int = Field(100, ge=1, le=5000, description="TIFU-KNN: similar items kept per item for that term.")
    line_order_sources: tuple[str, ...] = Field((), description="Sources that read only the order of events "
                                                "(TIFU-KNN's baskets in line order), not days: they also run on a "
                                                "line-order clock, where the other timed sources (trending, repurchase) "
                                                "are left out; never on a clock of 'none' (no order at all). Empty by "
                                                "default: side by side on Ta Feng without time (benchmarks/real_data.py "
                                                "--ab tifu) TIFU-KNN on line order lifted the union (pHR@10 0.088 → "
                                                "0.101) and p_conv alone within noise (0.1105 → 0.1142, pNDCG equal) "
                                                "but lowered the served blend (0.064 → 0.054).")


# Ranker features that say "this group likes this kind of product": p_conv is constrained to rise with them.
TASTE_FEATURES: tuple[str, ...] = (
    "cat_share", "cat_affinity", "segment_cat_share", "brand_share", "score__als", "score__ease",
    "score__item_knn_cosine", "score__content", "score__own_top", "score__segment_popular", "score__tifu_knn",
)


class RankerConfig(_Section):
    """The LightGBM conversion ranker and its calibration."""

    label_window_days: int = Field(3, ge=1, le=60, description="An order within this many days of a push labels it positive.")
    negatives_per_positive: int = Field(4, ge=1, le=100, description="Sampled negatives when only orders exist.")
    examples: Literal["pushes", "exposure", "candidates"] = Field(
        "pushes", description="Ranker examples: pushes labelled by a later order (P(order | shown)); 'exposure': the same plus "
        "unpushed candidates labelled by an organic order, with an exposed flag (served at exposed = 1); or a past "
        "snapshot's candidates labelled by an order in the label window (P(ordered | proposed)).")
    feature_refresh_days: int = Field(7, ge=1, le=365, description="Examples read pair features from profile snapshots this "
                                      "many days apart (the latest one at or before the example).")
    unshown_share: float = Field(0.1, gt=0, le=1, description="'exposure' examples: share of a snapshot's candidates drawn "
                                 "as unshown examples at each feature refresh.")
    example_days: int = Field(21, ge=2, le=365, description="Days of pushes (or orders) before today used as ranker examples; "
                              "their features come from a snapshot at the start of this span.")
    max_example_groups: int = Field(20_000, ge=100, le=100_000_000, description="Ranker examples come from at most this "
                                    "many groups (a seeded sample of whole groups): the ranker learns a pattern all groups "
                                    "share, and reading a group's source ranks costs as much as scoring it today.")
    orders_only_examples: Literal["holdout", "sampled"] = Field(
        "holdout", description="Examples without pushes or without a real clock: 'holdout' carves the data like "
        "validation (each group's last line, or the last holdout_days), fits the sources on the rest and labels each "
        "group's union candidates by the held-out purchases; 'sampled' labels orders against negatives drawn from the "
        "whole catalogue (a past snapshot of the orders' own clock).")
    holdout_days: int = Field(7, ge=1, le=365, description="'holdout' examples on a real clock without pushes: the last "
                              "this many days are held out (the evaluation's test window by default).")
    holdout_depth: int = Field(5, ge=1, le=100, description="'holdout' examples of a line holdout: the carve is repeated "
                               "this many times (each group's last 5 lines), so the ranker learns from that many held-out "
                               "purchases per group (Ta Feng without time, 1,500 customers: pHR@10 0.101 at 1, 0.110 at 3, "
                               "0.119 at 5). A window holdout is carved once (repeating it would age the snapshot).")
    max_category_levels: int = Field(64, ge=2, le=100000, description="'holdout' examples: a categorical feature with "
                                     "more levels than this (Ta Feng's 2,000 subclasses) is left out: a few hundred held-out "
                                     "purchases cannot tell its levels apart, and the taste features already carry it.")
    candidate_negatives: int = Field(50, ge=1, le=10000, description="'holdout' examples: at most this many of a "
                                     "group's other union candidates are drawn as its negatives.")
    num_leaves: int = Field(31, ge=2, le=1024)
    learning_rate: float = Field(0.05, gt=0, le=1)
    n_estimators: int = Field(300, ge=1, le=10000)
    min_child_samples: int = Field(50, ge=1, le=100000)
    monotone_increasing: list[str] = Field(default_factory=lambda: list(TASTE_FEATURES), description="Features p_conv may only rise with (LightGBM "
                                           "monotone constraints): taste signals, so that pairs unlike the pushed ones "
                                           "are not extrapolated the wrong way.")
    calibration: Literal["isotonic", "platt", "none"] = "isotonic"
    validation_days: int = Field(7, ge=1, le=365, description="Last days of labelled examples held for early stopping, calibration and its report.")
    num_threads: int = Field(1, ge=1, le=256, description="LightGBM threads; OpenMP threads spin badly on a busy machine, so 1 unless cores are free.")
    inference: Literal["lightgbm", "compiled"] = Field(
        "lightgbm", description="How the daily job predicts p_conv of its candidates: LightGBM's own predictor, or the "
        "trees compiled to native code (lleaves): the same probabilities to about 1e-15, about 5× faster per core, "
        "after a compile of seconds per hundred trees.")
    seed: int = 7


class BlendWeights(_Section):
    """Exponents of the ops blend: score = p_conv^conversion × commission_yuan^earnings × rating^rating
    × order_value^order_value × (1 − diversity_penalty)^diversity × adoption^adoption.

    With the defaults the score is the seller's expected earnings from a pick (the chance she pushes it ×
    p_conv × price × commission_rate) tempered by the good-review rate squared.
    """

    conversion: float = Field(1.0, ge=0, le=3, description="Weight on predicted conversion p_conv.")
    earnings: float = Field(1.0, ge=0, le=3, description="Weight on commission in yuan (price × commission_rate).")
    rating: float = Field(2.0, ge=0, le=10, description="Weight on good-review rate.")
    order_value: float = Field(0.0, ge=0, le=3, description="Weight on expected order value (price × mean quantity).")
    diversity: float = Field(1.0, ge=0, le=5, description="Weight on the diversity penalty of a repeated brand or category.")
    adoption: float = Field(1.0, ge=0, le=3, description="Weight on the chance that the seller pushes the pick at all "
                            "(her category mix for the group × how often sellers push the product); 0 ignores her habits.")


class OpsWeights(_Section):
    """The default profile plus per-seller-type overrides (a full profile each)."""

    default: BlendWeights = Field(default_factory=BlendWeights)
    overrides: dict[str, BlendWeights] = Field(default_factory=dict)

    def for_seller_type(self, seller_type: str) -> BlendWeights:
        """Weights that apply to a seller of this type."""
        return self.overrides.get(seller_type, self.default)


class RuleConfig(_Section):
    """Business rules applied after scoring."""

    top_k: int = Field(10, ge=1, le=200, description="Picks per group per day.")
    no_repeat_days: int = Field(7, ge=0, le=365, description="Skip items pushed to the group this recently unless a repurchase is due.")
    max_per_brand: int = Field(2, ge=1, le=200)
    max_per_category: int = Field(3, ge=1, le=200)
    category_decay: float = Field(0.15, ge=0, le=1, description="Diversity penalty added per earlier pick of the same category.")
    max_price_change: float = Field(0.10, ge=0, le=10, description="Drop items whose price moved more than this share in the last 7 days.")
    price_window_days: int = Field(7, ge=1, le=365)
    in_stock_only: bool = True
    high_rating: float = Field(0.97, ge=0, le=1, description="Good-review rate from which a pick carries the high_rating reason.")


class CopyConfig(_Section):
    """Promo copy rendering."""

    max_chars: int = Field(90, ge=20, le=1000)
    short_title_chars: int = Field(16, ge=4, le=64)
    no_repeat_template_days: int = Field(7, ge=0, le=365)
    emoji_seller_types: list[str] = Field(default_factory=lambda: ["宝妈", "微商", "学生", "导购"])
    min_rating_to_show: float = Field(0.9, ge=0, le=1, description="The good-review rate is only quoted at or above this rate.")
    max_selling_points: int = Field(2, ge=0, le=5, description="Selling points (title attributes) quoted per copy.")


class ReachConfig(_Section):
    """Brand reach forecasts, ops previews and the count model behind their intervals."""

    interval_level: float = Field(0.8, gt=0, lt=1, description="Nominal coverage of the forecast intervals.")
    dispersion: float = Field(0.25, ge=0, le=100, description="Gamma-Poisson extra variance of a forecast count: var = mean + dispersion·mean²; "
                              "0.25 measured on the sample world, 0.7–1.0 on Ta Feng (benchmarks/reach_backtest.py).")
    week_days: int = Field(7, ge=1, le=31, description="Days simulated for the week forecast (one pick list per day).")
    max_groups: int = Field(300, ge=1, le=10_000_000, description="Groups simulated per forecast (a pick list costs ≈4 ms a "
                            "day); above this a seeded sample is simulated and its totals scaled up.")
    preview_groups: int = Field(200, ge=1, le=1_000_000, description="Groups replayed by an ops preview (seeded sample).")
    curve_points: int = Field(5, ge=2, le=41, description="Points of the preview's conversion-earnings trade-off curve.")
    cold_neighbours: int = Field(10, ge=1, le=500, description="Known products whose placements a new product borrows.")
    history_weeks: int = Field(8, ge=1, le=104, description="Weeks of orders the backtest forecaster reads before the cut-off.")
    seed: int = 7


class ServiceSettings(_Section):
    """The HTTP service; every field can be overridden by QUANXUAN_<NAME> in the environment."""

    artifact_dir: str = "artifacts"
    # URLs may carry passwords: typed as secrets, so dumps, reprs and logs show ********** instead.
    db_url: SecretStr = SecretStr("sqlite:///quanxuan.sqlite3")
    cache_url: SecretStr = SecretStr("")
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    rate_limit_per_minute: int = Field(600, ge=1, le=1_000_000)
    max_body_bytes: int = Field(1_000_000, ge=1024, le=100_000_000)
    max_batch_events: int = Field(5000, ge=1, le=1_000_000)
    key_pepper: SecretStr = Field(SecretStr(""), description="Server-side secret of the HMAC-SHA256 API-key hashes; set it in production, "
                            "the same for every replica and for `quanxuan keys`.")
    state_refresh_seconds: float = Field(1.0, ge=0, le=300, description="How long a replica may reuse ops weights and key "
                                         "records read from the store; 0 reads them on every request.")
    artifact_poll_seconds: float = Field(30.0, ge=0, le=86400, description="Look for a newer artifact this often; 0 turns the file watch off.")
    picks_cache_seconds: int = Field(86400, ge=0, le=30 * 86400, description="Lifetime of cached rendered picks; 0 disables the cache.")
    workers: int = Field(1, ge=1, le=64, description="uvicorn worker processes for `quanxuan serve`.")
    prepare_picks: bool = Field(True, description="Render today's picks of every group in the background once per "
                                "artifact, day and weights version, so the first request of a group's day is a cache read.")
    heavy_workers: int = Field(1, ge=0, le=64, description="Processes (per serving worker) computing brand reach, "
                               "what-if, new-product and ops preview answers off the picks path; 0 computes them in the "
                               "serving process's thread pool.")
    heavy_per_key: int = Field(1, ge=1, le=64, description="Heavy requests one key may have in flight; more get 429 busy.")
    heavy_queue: int = Field(4, ge=0, le=1000, description="Heavy requests waiting beyond those running; more get 429 busy.")
    heavy_timeout_seconds: float = Field(300.0, gt=0, le=3600, description="A heavy request longer than this answers 503.")


class ClusterConfig(_Section):
    """How the per-group part of the daily job is cut up, and where it runs.

    Today's groups are scored in blocks of whole sellers, so memory is bounded by the block size; with a
    scheduler address the blocks run on that Dask cluster, and with `processes` above 1 on forked processes of
    this machine, instead of in this process (same picks either way).
    """

    block_groups: int = Field(2000, ge=1, le=1_000_000, description="Groups per block of the daily job's scoring "
                              "(a block holds whole sellers, so it may run a few groups over).")
    scheduler: str = Field("", description="Dask scheduler address (tcp://host:8786); empty runs in this process. "
                           "'local' starts a LocalCluster on this machine.")
    local_workers: int = Field(2, ge=1, le=256, description="Workers of the LocalCluster when scheduler = 'local'.")
    processes: int = Field(1, ge=0, le=256, description="Without a scheduler: processes scoring the blocks on this "
                           "machine, forked so they share the day model's memory (same picks); 0 = one per core.")


class Config(_Section):
    """The whole configuration."""

    features: FeatureConfig = Field(default_factory=FeatureConfig)
    candidates: CandidateConfig = Field(default_factory=CandidateConfig)
    ranker: RankerConfig = Field(default_factory=RankerConfig)
    weights: OpsWeights = Field(default_factory=OpsWeights)
    rules: RuleConfig = Field(default_factory=RuleConfig)
    copy_: CopyConfig = Field(default_factory=CopyConfig, alias="copy")
    reach: ReachConfig = Field(default_factory=ReachConfig)
    service: ServiceSettings = Field(default_factory=ServiceSettings)
    cluster: ClusterConfig = Field(default_factory=ClusterConfig)

    model_config = ConfigDict(extra="forbid", validate_assignment=True, populate_by_name=True)

    @classmethod
    def load(cls, path: str | Path | None = None, env: dict[str, str] | None = None) -> "Config":
        """Read a TOML or JSON file (missing sections keep defaults) and apply QUANXUAN_* service overrides."""
        data: dict[str, Any] = {}
        if path:
            p = Path(path)
            data = tomllib.loads(p.read_text("utf-8")) if p.suffix == ".toml" else json.loads(p.read_text("utf-8"))
        cfg = cls.model_validate(data)
        env = dict(os.environ) if env is None else env
        overrides = {
            name: env[f"QUANXUAN_{name.upper()}"]
            for name in ServiceSettings.model_fields
            if f"QUANXUAN_{name.upper()}" in env
        }
        if overrides:
            cfg.service = ServiceSettings.model_validate({**cfg.service.model_dump(), **overrides})
        return cfg


def config_hash(model: BaseModel) -> str:
    """A short stable fingerprint of any configuration section (sorted JSON, sha256)."""
    payload = json.dumps(model.model_dump(mode="json", by_alias=True), sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:12]


def cache_dir(cfg: FeatureConfig | None = None) -> Path:
    """The folder for built models and embedding caches."""
    configured = cfg.cache_dir if cfg else ""
    root = configured or os.environ.get("QUANXUAN_CACHE_DIR") or str(Path.home() / ".cache" / "quanxuan")
    path = Path(root)
    path.mkdir(parents=True, exist_ok=True)
    return path
