"""The conversion ranker: LightGBM estimate of P(order | group, product shown), calibrated.

Labels (`RankerConfig.examples`)
--------------------------------
"pushes" (the default, the issue's design): every push (group, product, pushed_at) is one example,
positive when the group orders that product within `label_window_days` (3) after the push
(`push_labels`). Pushes whose window is cut off by the end of the data are dropped rather than counted
as failures. p_conv then means P(order within the window | shown), which is what the blend, the picks
and the brand-reach what-if multiply by. Bias: pushes are the sellers' own choices (their sense of
the group's taste, commission, popularity), so pairs unlike the pushed ones are extrapolated; the
taste features are therefore monotone constraints (`RankerConfig.monotone_increasing`).

"exposure": the pushes (exposed = 1) plus a sample of the snapshot's candidates that were not pushed
in a label window (exposed = 0, positive on an organic order in it), served at exposed = 1. Early
stopping, calibration and the report use shown pairs only.

"candidates": every union candidate of a past snapshot, positive when the group ordered it within
the window: P(ordered | proposed, the seller pushing as usual). Not a conversion-if-shown probability.

Why "pushes" is the default (benchmarks/daily_job.py, sample world 2000×2000×60 days, last 7 days
held out): ranked by p_conv, "candidates" examples reach NDCG@10 0.098 on the held-out orders
against ALS 0.084, but as P(order | shown) on the test week's pushes they are off (ECE 0.047, AUC
0.78); "pushes" and "exposure" are calibrated there (ECE 0.007 / 0.006, AUC 0.80) but reach NDCG@10
only 0.063 / 0.068. Logged orders follow the sellers' pushes, so NDCG@10 on them rewards guessing what
a seller pushes anyway (ALS learns it from the push-weighted interactions); against the generator's
true affinity, the push-trained p_conv orders each group's candidates best (within-group Spearman
0.65, ALS 0.49). No example design tried meets both targets; the default keeps the probability the
rest of the system needs, and the NDCG gap is reported, not hidden.

Orders only (no pushes): each (group, product, day) with a non-refunded order is a positive and, for
each, `negatives_per_positive` products are drawn uniformly from the catalogue among those the group did
not order that day (`order_labels_with_sampled_negatives`). Bias: these negatives were never shown,
so they are easier than real misses (the model partly learns "relevant vs random" and popularity),
AUC is flattered, and the base rate is fixed by the sampling at 1/(1 + r) instead of the true
conversion rate: p_conv is then a relative score, calibrated to the sampled world, not a real
probability. Multiply the odds by (true rate odds / sampled rate odds) if the true rate is known.

Fit and evaluation (`fit_and_evaluate`) use a time split (a group split for one-snapshot examples):
examples before the last `validation_days` train the booster; the validation window is split in two
by time, the first half drives early stopping and fits the calibrator (isotonic or Platt), the second
half reports log loss, AUC and ECE (see `recsys.calibration`) for the calibrated model, the raw model
and a smoothed per-product conversion-rate baseline.

Storage: `ConversionRanker.save` writes LightGBM's text model and a JSON of feature names, category
lists and the calibrator; `load_ranker(artifact)` reads them back from an artifact's `models/` folder
and `reprice_features` rewrites stored feature rows for a price / commission / coupon what-if.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from contracts.schema import GROUP_ID, ORDERED_AT, PRODUCT_ID, PUSHED_AT
from recsys.calibration import Calibrator, probability_metrics
from contracts.config import RankerConfig

LABEL = "label"
TIME = "at"
# 1 for a pair that was shown (pushed), 0 for an unshown candidate; p_conv is predicted with it set to 1.
EXPOSED = "exposed"
# Columns never used as features.
NON_FEATURES: frozenset[str] = frozenset({GROUP_ID, PRODUCT_ID, LABEL, TIME, PUSHED_AT, ORDERED_AT, "sources", "reasons"})


def push_labels(
    pushes: pd.DataFrame,
    orders: pd.DataFrame,
    window_days: int,
    data_end: pd.Timestamp | None = None,
) -> pd.DataFrame:
    """One row per push: group_id, product_id, at (push time), label (1 when ordered within the window)."""
    window = pd.Timedelta(days=window_days)
    at = pd.to_datetime(pushes[PUSHED_AT]).reset_index(drop=True)
    keep = np.ones(len(at), dtype=bool) if data_end is None else (at + window <= pd.Timestamp(data_end)).to_numpy()
    p = pd.DataFrame({GROUP_ID: _as_strings(pushes[GROUP_ID])[keep], PRODUCT_ID: _as_strings(pushes[PRODUCT_ID])[keep],
                      TIME: at[keep].to_numpy()})
    o = orders
    if "refunded" in o.columns:
        o = o[~o["refunded"].fillna(False).astype(bool)]
    p[LABEL] = _ordered_within(p, o, window)
    return p


def _as_strings(values: pd.Series) -> pd.Series:
    """String ids, converted only when they are not strings already (a copy of 70M pushes costs seconds)."""
    return values.reset_index(drop=True) if pd.api.types.is_string_dtype(values.dtype) else values.astype(str).reset_index(drop=True)


def _ordered_within(p: pd.DataFrame, orders: pd.DataFrame, window: pd.Timedelta) -> np.ndarray:
    """1 where the push's group ordered its product at or after the push and within `window`, else 0."""
    from features.interactions import IdMap

    if not len(p) or not len(orders):
        return np.zeros(len(p), dtype=np.int8)
    o_groups, o_products = _as_strings(orders[GROUP_ID]), _as_strings(orders[PRODUCT_ID])
    groups, products = IdMap(o_groups), IdMap(o_products)
    width = np.int64(len(products))
    o_key = groups.index_of(o_groups) * width + products.index_of(o_products)
    pg = groups.index_of(p[GROUP_ID], missing="mark")
    pp = products.index_of(p[PRODUCT_ID], missing="mark")
    p_key = np.where((pg >= 0) & (pp >= 0), pg * width + pp, -1)
    return ordered_within(p_key, pd.to_datetime(p[TIME]).to_numpy(), o_key, pd.to_datetime(orders[ORDERED_AT]).to_numpy(),
                          window)


def ordered_within(push_key: np.ndarray, push_time: np.ndarray, order_key: np.ndarray, order_time: np.ndarray,
                   window: pd.Timedelta) -> np.ndarray:
    """Per push, 1 when an order of the same pair key falls in [push time, push time + window], else 0.

    A push of a pair nobody ordered is 0 without a join, so only the few pushes of ordered pairs go through the
    as-of merge (70M pushes at a million groups, a few million orders).
    """
    label = np.zeros(len(push_key), dtype=np.int8)
    rows = np.flatnonzero(pd.Index(np.unique(order_key)).get_indexer(push_key) >= 0)
    if not len(rows):
        return label
    # One time unit on both sides: merge_asof refuses datetime64[ms] against datetime64[us].
    left = pd.DataFrame({"key": push_key[rows], TIME: np.asarray(push_time[rows], dtype="datetime64[ns]"), "_row": rows})
    right = pd.DataFrame({"key": order_key, ORDERED_AT: np.asarray(order_time, dtype="datetime64[ns]")})
    matched = pd.merge_asof(
        left.sort_values(TIME, kind="stable"), right.sort_values(ORDERED_AT, kind="stable"), left_on=TIME,
        right_on=ORDERED_AT, by="key", direction="forward", tolerance=window, allow_exact_matches=True,
    )
    label[matched["_row"].to_numpy()] = matched[ORDERED_AT].notna().to_numpy().astype(np.int8)
    return label


def order_labels_with_sampled_negatives(
    orders: pd.DataFrame,
    product_ids: Sequence[str],
    negatives_per_positive: int,
    seed: int = 7,
) -> pd.DataFrame:
    """Positives from orders, uniform sampled negatives per positive (see the module docstring for the bias)."""
    o = orders
    if "refunded" in o.columns:
        o = o[~o["refunded"].fillna(False).astype(bool)]
    o = o.assign(**{ORDERED_AT: pd.to_datetime(o[ORDERED_AT])})
    o = o.assign(_day=o[ORDERED_AT].dt.floor("D"), **{GROUP_ID: o[GROUP_ID].astype(str), PRODUCT_ID: o[PRODUCT_ID].astype(str)})
    pos = o.groupby([GROUP_ID, PRODUCT_ID, "_day"], as_index=False)[ORDERED_AT].min().rename(columns={ORDERED_AT: TIME})
    catalogue = np.asarray([str(p) for p in product_ids], dtype=object)
    rng = np.random.default_rng(seed)
    r = int(negatives_per_positive)
    draws = catalogue[rng.integers(0, len(catalogue), size=len(pos) * r)]
    neg = pd.DataFrame({
        GROUP_ID: np.repeat(pos[GROUP_ID].to_numpy(), r),
        PRODUCT_ID: draws,
        "_day": np.repeat(pos["_day"].to_numpy(), r),
        TIME: np.repeat(pos[TIME].to_numpy(), r),
    })
    bought = pd.MultiIndex.from_frame(pos[[GROUP_ID, PRODUCT_ID, "_day"]])
    neg = neg[~pd.MultiIndex.from_frame(neg[[GROUP_ID, PRODUCT_ID, "_day"]]).isin(bought)]
    neg = neg.drop_duplicates([GROUP_ID, PRODUCT_ID, "_day"])
    out = pd.concat([pos.assign(**{LABEL: 1}), neg.assign(**{LABEL: 0})], ignore_index=True)
    out[LABEL] = out[LABEL].astype(np.int8)
    return out.drop(columns="_day").sort_values(TIME, kind="stable").reset_index(drop=True)


def feature_columns(frame: pd.DataFrame) -> list[str]:
    """Every column of the frame except ids, label, time, free-text lists and helper columns."""
    return [c for c in frame.columns if c not in NON_FEATURES and not c.startswith("_")]


class ConversionRanker:
    """LightGBM binary classifier on (group, product) features plus a calibrator; `predict_proba` is p_conv.

    The booster is kept as LightGBM's own text model and the rest (feature names, category lists, the
    calibrator) as plain values, so `save` / `load_ranker` give back the very same predictions.
    """

    compiled_: Any = None  # the lleaves forest once `compile` has run

    def __init__(self, config: RankerConfig | None = None) -> None:
        self.config = config

    def _matrix(self, X: pd.DataFrame) -> pd.DataFrame:
        missing = [c for c in self.feature_names_ if c not in X.columns]
        if missing:
            raise KeyError(f"feature columns missing: {missing}")
        M = X[self.feature_names_].copy()
        for col, cats in self.categories_.items():
            # Compare as text: a tier stored as 3.0 in one frame and "3.0" in another is the same category.
            if isinstance(M[col].dtype, pd.CategoricalDtype):
                # Already categorical (pair features are): map its few categories, not every row.
                lookup = pd.Index(cats).get_indexer([str(c) for c in M[col].cat.categories])
                codes = M[col].cat.codes.to_numpy()
                M[col] = pd.Categorical.from_codes(np.where(codes >= 0, lookup[np.maximum(codes, 0)] if len(lookup) else -1, -1),
                                                   categories=cats)
                continue
            values = M[col].astype(object)
            text = values.where(values.isna(), values.map(str))
            M[col] = pd.Categorical(text.where(text.isin(cats), None), categories=cats)
        for col in M.columns:
            if col not in self.categories_:
                M[col] = pd.to_numeric(M[col], errors="coerce").astype(float)
        return M

    def fit(
        self,
        X: pd.DataFrame,
        y: np.ndarray,
        X_cal: pd.DataFrame | None = None,
        y_cal: np.ndarray | None = None,
    ) -> "ConversionRanker":
        """Train the booster on (X, y); with a later calibration set, early-stop on it and fit the calibrator."""
        import lightgbm as lgb

        cfg = self.config or RankerConfig()
        self.feature_names_ = feature_columns(X)
        self.categories_ = {
            c: sorted({str(v) for v in X[c].dropna().unique()})
            for c in self.feature_names_
            if not pd.api.types.is_numeric_dtype(X[c]) and not pd.api.types.is_bool_dtype(X[c])
        }
        y = np.asarray(y, dtype=int)
        if y.min() == y.max():
            raise ValueError("training labels hold a single class")
        model = lgb.LGBMClassifier(
            objective="binary", num_leaves=cfg.num_leaves, learning_rate=cfg.learning_rate,
            n_estimators=cfg.n_estimators, min_child_samples=cfg.min_child_samples, random_state=cfg.seed,
            subsample=0.8, subsample_freq=1, colsample_bytree=0.8, reg_lambda=1.0, verbose=-1, n_jobs=cfg.num_threads,
            monotone_constraints=[1 if name in cfg.monotone_increasing else 0 for name in self.feature_names_],
        )
        fit_args: dict[str, Any] = {}
        has_cal = X_cal is not None and y_cal is not None and len(np.unique(y_cal)) == 2
        if has_cal:
            fit_args = {"eval_X": (self._matrix(X_cal),), "eval_y": (np.asarray(y_cal, int),),
                        "callbacks": [lgb.early_stopping(30, verbose=False)]}
        model.fit(self._matrix(X), y, **fit_args)
        self.best_iteration_ = int(model.best_iteration_ or model.n_estimators)
        # Keep only the trees in use, exactly as they will be saved.
        self.booster_ = lgb.Booster(model_str=model.booster_.model_to_string(num_iteration=self.best_iteration_))
        method = cfg.calibration if has_cal else "none"
        raw_cal = self.predict_raw(X_cal) if has_cal else np.zeros(0)
        self.calibrator_ = Calibrator(method).fit(raw_cal, np.asarray(y_cal, float) if has_cal else np.zeros(0))
        return self

    def predict_raw(self, X: pd.DataFrame) -> np.ndarray:
        """The booster's uncalibrated probability (through the compiled forest once `compile` has run)."""
        if len(X) == 0:
            return np.zeros(0)
        if self.compiled_ is not None:
            return np.asarray(self.compiled_.predict(self._matrix(X), n_jobs=self._threads()), dtype=float)
        return np.asarray(self.booster_.predict(self._matrix(X), num_threads=self._threads()), dtype=float)

    def compile(self) -> "ConversionRanker":
        """Compile the trees to native code (lleaves, through LLVM) for `predict_raw`: the same probabilities to
        about 1e-15, several times faster per core than LightGBM's own predictor on the daily job's candidate rows.
        Compiling takes seconds per hundred trees, so it pays on millions of rows, not on a request's few."""
        import lleaves

        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / MODEL_FILE
            path.write_text(self.model_text(), encoding="utf-8")
            compiled = lleaves.Model(model_file=str(path))
            compiled.compile()
        self.compiled_ = compiled
        return self

    def __getstate__(self) -> dict[str, Any]:
        # Compiled code does not pickle: a Dask worker compiles the same trees again when it unpickles the ranker.
        state = dict(self.__dict__)
        if state.get("compiled_") is not None:
            state["compiled_"] = True
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        recompile = state.pop("compiled_", None) is not None
        self.__dict__.update(state)
        if recompile:
            self.compile()

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        """Calibrated P(order | shown): p_conv."""
        return self.calibrator_.predict(self.predict_raw(X))

    def _threads(self) -> int:
        return (self.config or RankerConfig()).num_threads

    def feature_importance(self) -> dict[str, float]:
        """Total gain per feature, largest first."""
        gain = self.booster_.feature_importance(importance_type="gain")
        order = np.argsort(-gain)
        return {self.feature_names_[i]: float(gain[i]) for i in order}

    def model_text(self) -> str:
        """The booster in LightGBM's text format (`models/ranker.txt` of the artifact)."""
        return self.booster_.model_to_string()

    def meta(self) -> dict[str, Any]:
        """Everything but the trees, as JSON-ready values (`models/ranker.json` of the artifact)."""
        return {
            "feature_names": list(self.feature_names_),
            "categories": {c: list(v) for c, v in self.categories_.items()},
            "calibrator": self.calibrator_.to_dict(),
            "best_iteration": self.best_iteration_,
            "config": (self.config or RankerConfig()).model_dump(mode="json"),
        }

    def save(self, folder: str | Path) -> list[Path]:
        """Write ranker.txt and ranker.json into a folder; returns their paths."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        text, meta = folder / MODEL_FILE, folder / META_FILE
        text.write_text(self.model_text(), encoding="utf-8")
        meta.write_text(json.dumps(self.meta(), ensure_ascii=False, indent=1), encoding="utf-8")
        return [text, meta]

    @classmethod
    def from_parts(cls, model_text: str, meta: dict[str, Any]) -> "ConversionRanker":
        """Rebuild a fitted ranker from its LightGBM text and its meta dictionary."""
        import lightgbm as lgb

        ranker = cls(RankerConfig.model_validate(meta.get("config", {})))
        ranker.feature_names_ = list(meta["feature_names"])
        ranker.categories_ = {c: list(v) for c, v in meta["categories"].items()}
        ranker.calibrator_ = Calibrator.from_dict(meta["calibrator"])
        ranker.best_iteration_ = int(meta.get("best_iteration", 0))
        ranker.booster_ = lgb.Booster(model_str=model_text)
        return ranker


MODEL_DIR = "models"
MODEL_FILE = "ranker.txt"
META_FILE = "ranker.json"


def load_ranker(artifact: Any) -> ConversionRanker:
    """The conversion ranker stored in an artifact (an `Artifact`, or its folder): models/ranker.txt + ranker.json.

    FileNotFoundError when the artifact holds no ranker (older artifacts).
    """
    folder = Path(getattr(artifact, "path", artifact)) / MODEL_DIR
    text, meta = folder / MODEL_FILE, folder / META_FILE
    if not text.is_file() or not meta.is_file():
        raise FileNotFoundError(f"no ranker in {folder.parent} (expected {MODEL_DIR}/{MODEL_FILE} and {MODEL_DIR}/{META_FILE})")
    return ConversionRanker.from_parts(text.read_text("utf-8"), json.loads(meta.read_text("utf-8")))


def reprice_features(
    rows: pd.DataFrame,
    price: np.ndarray | float | None = None,
    commission_rate: np.ndarray | float | None = None,
    coupon: np.ndarray | float | None = None,
) -> pd.DataFrame:
    """Stored ranker rows (the artifact's `candidate_features`) as they would be with a new price, commission
    rate or coupon (None keeps a field). Rewrites log_price, price_z (a log-price shift over the group's
    price scale, `_price_z_scale`), commission_rate, commission_yuan and coupon; nothing else moves."""
    out = rows.copy()
    old_log = out["log_price"].to_numpy(dtype=float)
    new_log = old_log if price is None else np.log(np.broadcast_to(np.asarray(price, dtype=float), old_log.shape))
    if price is not None:
        out["log_price"] = new_log
        if "price_z" in out and PRICE_SCALE in out:
            out["price_z"] = out["price_z"].to_numpy(dtype=float) + (new_log - old_log) / out[PRICE_SCALE].to_numpy(dtype=float)
    if commission_rate is not None:
        out["commission_rate"] = np.broadcast_to(np.asarray(commission_rate, dtype=float), old_log.shape)
    if coupon is not None:
        out["coupon"] = np.broadcast_to(np.asarray(coupon, dtype=float), old_log.shape)
    if "commission_yuan" in out and (price is not None or commission_rate is not None):
        out["commission_yuan"] = np.exp(new_log) * out["commission_rate"].to_numpy(dtype=float)
    return out


# Helper column of `candidate_features`: the group's log-price scale that divides price_z (not a feature).
PRICE_SCALE = "_price_z_scale"


def popularity_rate(train_items: pd.Series, train_y: np.ndarray, items: pd.Series, strength: float = 20.0) -> np.ndarray:
    """Baseline: each item's conversion rate in training, shrunk toward the overall rate (strength pseudo-rows)."""
    y = np.asarray(train_y, dtype=float)
    prior = float(y.mean())
    stats = pd.DataFrame({"item": train_items.astype(str).to_numpy(), "y": y}).groupby("item")["y"].agg(["sum", "count"])
    rate = (stats["sum"] + strength * prior) / (stats["count"] + strength)
    return items.astype(str).map(rate).fillna(prior).to_numpy(dtype=float)


def time_split(frame: pd.DataFrame, days: float, time_col: str = TIME) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(rows before end − days, rows from then on), end being the last time in the frame."""
    t = pd.to_datetime(frame[time_col])
    cut = t.max() - pd.Timedelta(days=days)
    return frame[t <= cut], frame[t > cut]


def fit_and_evaluate(
    examples: pd.DataFrame,
    config: RankerConfig | None = None,
    time_col: str = TIME,
    item_col: str = PRODUCT_ID,
) -> tuple[ConversionRanker, dict[str, Any]]:
    """Time-split fit (train / calibrate / report, see the module docstring); returns the ranker and its metrics."""
    cfg = config or RankerConfig()
    if pd.to_datetime(examples[time_col]).nunique() > 1:
        train, valid = time_split(examples, cfg.validation_days, time_col)
        t = pd.to_datetime(valid[time_col])
        mid = t.min() + (t.max() - t.min()) / 2
        cal, test = valid[t <= mid], valid[t > mid]
    else:
        # One snapshot (candidate examples): hold out whole groups instead, 70 / 15 / 15.
        bucket = pd.util.hash_array(examples[GROUP_ID].astype(str).to_numpy(dtype=object)) % 20
        train, cal, test = examples[bucket < 14], examples[(bucket >= 14) & (bucket < 17)], examples[bucket >= 17]
    if EXPOSED in examples.columns:
        # p_conv is served as P(order | shown): early stopping, calibration and the report use shown pairs only.
        cal, test = cal[cal[EXPOSED] == 1], test[test[EXPOSED] == 1]
    if len(test) == 0 or len(cal) == 0 or len(train) == 0:
        raise ValueError("not enough time span for a train / calibrate / test split")
    ranker = ConversionRanker(cfg).fit(train, train[LABEL].to_numpy(), cal, cal[LABEL].to_numpy())
    y = test[LABEL].to_numpy()
    raw = ranker.predict_raw(test)
    shown = train[train[EXPOSED] == 1] if EXPOSED in train.columns else train
    metrics: dict[str, Any] = {
        "calibrated": probability_metrics(y, ranker.calibrator_.predict(raw)),
        "uncalibrated": probability_metrics(y, raw),
        "popularity_rate": probability_metrics(y, popularity_rate(shown[item_col], shown[LABEL].to_numpy(), test[item_col])),
        "rows": {"train": int(len(train)), "calibrate": int(len(cal)), "test": int(len(test))},
        "calibration": ranker.calibrator_.method,
        "best_iteration": ranker.best_iteration_,
    }
    return ranker, metrics
