"""Probability calibration and the metrics that judge it.

Expected calibration error (ECE), as used throughout the project: split [0, 1] into 15 equal-width
bins, bin b = [b/15, (b+1)/15) with the last bin closed at 1; for the predictions p_i falling in bin
b let acc_b be the mean label and conf_b the mean prediction; then

    ECE = Σ_b (n_b / N) · |acc_b − conf_b|      (empty bins contribute nothing)

i.e. the sample-weighted mean gap between predicted and observed rates. 0 is perfect.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss as _log_loss
from sklearn.metrics import roc_auc_score

Method = Literal["isotonic", "platt", "none"]
P_FLOOR = 1e-6


def _check(y: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y, dtype=float).ravel()
    p = np.asarray(p, dtype=float).ravel()
    if y.shape != p.shape:
        raise ValueError(f"labels {y.shape} and predictions {p.shape} differ in length")
    if len(y) == 0:
        raise ValueError("no rows to score")
    if not np.isin(y, (0.0, 1.0)).all():
        raise ValueError("labels must be 0 or 1")
    if np.isnan(p).any() or (p < 0).any() or (p > 1).any():
        raise ValueError("predictions must be probabilities in [0, 1]")
    return y, p


def expected_calibration_error(y: np.ndarray, p: np.ndarray, n_bins: int = 15) -> float:
    """ECE over `n_bins` equal-width bins of [0, 1] (see the module docstring)."""
    y, p = _check(y, p)
    bins = np.minimum((p * n_bins).astype(int), n_bins - 1)
    acc = np.bincount(bins, weights=y, minlength=n_bins)
    conf = np.bincount(bins, weights=p, minlength=n_bins)
    return float(np.abs(acc - conf).sum() / len(y))


def log_loss(y: np.ndarray, p: np.ndarray) -> float:
    """Mean binary cross-entropy, predictions clipped to [1e-6, 1 − 1e-6]."""
    y, p = _check(y, p)
    return float(_log_loss(y, np.clip(p, P_FLOOR, 1 - P_FLOOR), labels=[0.0, 1.0]))


def auc(y: np.ndarray, p: np.ndarray) -> float:
    """ROC AUC; NaN when only one class is present."""
    y, p = _check(y, p)
    if y.min() == y.max():
        return float("nan")
    return float(roc_auc_score(y, p))


def probability_metrics(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    """log loss, AUC, ECE (15 bins), mean prediction and observed rate."""
    y, p = _check(y, p)
    return {
        "log_loss": log_loss(y, p),
        "auc": auc(y, p),
        "ece": expected_calibration_error(y, p),
        "mean_p": float(p.mean()),
        "rate": float(y.mean()),
        "n": int(len(y)),
    }


class Calibrator:
    """Maps raw scores to probabilities: isotonic regression, Platt scaling (logistic on the logit), or identity.

    The learned map is kept as plain numbers (isotonic thresholds, Platt slope and intercept) so that
    `to_dict` / `from_dict` round-trip it exactly through JSON.
    """

    def __init__(self, method: Method = "isotonic") -> None:
        self.method = method

    def fit(self, scores: np.ndarray, y: np.ndarray) -> "Calibrator":
        """Learn the map from held-out scores and their 0/1 labels."""
        scores = np.asarray(scores, dtype=float).ravel()
        y = np.asarray(y, dtype=float).ravel()
        if self.method == "isotonic":
            iso = IsotonicRegression(y_min=P_FLOOR, y_max=1 - P_FLOOR, out_of_bounds="clip").fit(scores, y)
            # Isotonic prediction is linear interpolation between these thresholds, clipped at both ends.
            self.x_ = np.asarray(iso.X_thresholds_, dtype=float)
            self.y_ = np.asarray(iso.y_thresholds_, dtype=float)
        elif self.method == "platt":
            if y.min() == y.max():
                raise ValueError("Platt scaling needs both classes")
            lr = LogisticRegression(C=1e6).fit(_logit(scores)[:, None], y)
            self.slope_, self.intercept_ = float(lr.coef_[0, 0]), float(lr.intercept_[0])
        elif self.method != "none":
            raise ValueError(f"unknown calibration method {self.method!r}")
        return self

    def predict(self, scores: np.ndarray) -> np.ndarray:
        """Calibrated probabilities for raw scores."""
        scores = np.asarray(scores, dtype=float).ravel()
        if self.method == "isotonic":
            return np.clip(np.interp(scores, self.x_, self.y_), P_FLOOR, 1 - P_FLOOR)
        if self.method == "platt":
            return 1.0 / (1.0 + np.exp(-(self.slope_ * _logit(scores) + self.intercept_)))
        return np.clip(scores, 0.0, 1.0)

    def to_dict(self) -> dict[str, Any]:
        """The fitted map as JSON-ready numbers."""
        out: dict[str, Any] = {"method": self.method}
        if self.method == "isotonic":
            out.update(x=self.x_.tolist(), y=self.y_.tolist())
        elif self.method == "platt":
            out.update(slope=self.slope_, intercept=self.intercept_)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Calibrator":
        """Rebuild a fitted calibrator from `to_dict` output."""
        cal = cls(data["method"])
        if cal.method == "isotonic":
            cal.x_, cal.y_ = np.asarray(data["x"], dtype=float), np.asarray(data["y"], dtype=float)
        elif cal.method == "platt":
            cal.slope_, cal.intercept_ = float(data["slope"]), float(data["intercept"])
        elif cal.method != "none":
            raise ValueError(f"unknown calibration method {cal.method!r}")
        return cal


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, P_FLOOR, 1 - P_FLOOR)
    return np.log(p / (1 - p))
