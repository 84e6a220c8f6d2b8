"""Evaluation: the model next to the base rate, a logistic regression and a constant.

Every figure is computed here once (numpy only): AUC (rank statistic, ties averaged), log loss,
Brier score, accuracy, a 10-bin calibration table and probability quantiles.

>>> y = np.array([0.0, 0.0, 1.0, 1.0])
>>> auc(y, np.array([0.1, 0.4, 0.35, 0.8]))
0.75
>>> round(log_loss(y, np.full(4, 0.5)), 4)
0.6931
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from sentio.core.seeding import rng_for

EPS = 1e-12
RESAMPLES = 1000  # session bootstrap draws of an interval
QUANTILES = (0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99)


def sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.asarray(z, dtype=np.float64)))


def auc(y: np.ndarray, score: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney U with average ranks for ties)."""
    y = np.asarray(y) > 0.5
    pos, neg = int(y.sum()), int((~y).sum())
    if pos == 0 or neg == 0:
        return float("nan")
    order = np.argsort(score, kind="mergesort")
    ranks = np.empty(len(score))
    sorted_scores = np.asarray(score)[order]
    _, first, counts = np.unique(sorted_scores, return_index=True, return_counts=True)
    average = first + (counts + 1) / 2.0  # 1-based average rank of each tie group
    ranks[order] = np.repeat(average, counts)
    return float((ranks[y].sum() - pos * (pos + 1) / 2.0) / (pos * neg))


def log_loss(y: np.ndarray, p: np.ndarray) -> float:
    p = np.clip(p, EPS, 1 - EPS)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def brier(y: np.ndarray, p: np.ndarray) -> float:
    return float(np.mean((p - y) ** 2))


def calibration(y: np.ndarray, p: np.ndarray, bins: int = 10) -> list[dict]:
    """Per probability decile [k/bins, (k+1)/bins): count, mean predicted, observed rate."""
    index = np.minimum((p * bins).astype(int), bins - 1)
    table = []
    for k in range(bins):
        inside = index == k
        n = int(inside.sum())
        table.append(
            {
                "bin": f"{k / bins:.1f}-{(k + 1) / bins:.1f}",
                "count": n,
                "mean_predicted": float(p[inside].mean()) if n else None,
                "observed_rate": float(y[inside].mean()) if n else None,
            }
        )
    return table


def scores(y: np.ndarray, p: np.ndarray, majority: float) -> dict:
    """AUC, log loss, Brier and accuracy of probabilities ``p``, plus the calibration table."""
    return {
        "n": len(y),
        "positive_rate": float(y.mean()),
        "auc": auc(y, p),
        "log_loss": log_loss(y, p),
        "brier": brier(y, p),
        "accuracy": float(np.mean((p > 0.5) == (y > 0.5))),
        "majority_class_accuracy": float(np.mean(y == majority)),
        "calibration": calibration(y, p),
    }


def fit_logistic(x: np.ndarray, y: np.ndarray, l2: float = 1e-2, steps: int = 25) -> np.ndarray:
    """Weights (F + 1,) of an L2-regularised logistic regression by Newton's method (float64,
    deterministic). ``x`` should be standardised; the last weight is the intercept.

    BLAS runs on one thread here: OpenBLAS splits a large product by thread, and the split
    changes the last bits, so the weights (and the artifact's metrics.json) would depend on
    the machine's core count or OMP_NUM_THREADS (a Ray worker sets 1)."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):
        return _newton(x, y, l2, steps)


def _newton(x: np.ndarray, y: np.ndarray, l2: float, steps: int) -> np.ndarray:
    design = np.hstack([x, np.ones((len(x), 1))])
    w = np.zeros(design.shape[1])
    penalty = l2 * np.eye(len(w))
    penalty[-1, -1] = 0.0
    for _ in range(steps):
        p = sigmoid(design @ w)
        grad = design.T @ (p - y) / len(y) + penalty @ w
        hess = (design * (p * (1 - p))[:, None]).T @ design / len(y) + penalty
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.abs(step).max() < 1e-10:
            break
    return w


def predict_logistic(w: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Probabilities of the fitted weights (one BLAS thread, as :func:`fit_logistic`)."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):
        return sigmoid(x @ w[:-1] + w[-1])


def evaluate(
    parts: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]], train_rate: float
) -> dict:
    """Metrics per part for the model, the logistic regression and the base-rate constant.

    ``parts[name] = (labels, model probabilities, logistic probabilities)``; ``train_rate`` is
    the training split's positive rate (the base-rate predictor and the majority class).
    """
    majority = 1.0 if train_rate >= 0.5 else 0.0
    out = {}
    for name, (y, p_model, p_logistic) in parts.items():
        out[name] = {
            "model": scores(y, p_model, majority),
            "logistic_last_row": scores(y, p_logistic, majority),
            "base_rate": scores(y, np.full(len(y), train_rate), majority),
        }
    return out


def session_interval(
    statistic: Callable[[np.ndarray], float],
    session: np.ndarray,
    seed: int,
    stream: str,
    level: float = 0.95,
    draws: int = RESAMPLES,
) -> tuple[float, float]:
    """Percentile interval of ``statistic(rows)``, resampling whole sessions with replacement
    (``draws`` times, from the named random stream): labels of one session overlap and move
    together, so the session is the unit of independence. Non-finite draws are left out.

    >>> y = np.tile([0.0, 1.0], 50)
    >>> days = np.repeat(np.arange(10), 10)
    >>> lo, hi = session_interval(lambda r: float(y[r].mean()), days, 0, "x")
    >>> lo == hi == 0.5
    True
    """
    days = np.unique(session)
    rows = [np.flatnonzero(session == d) for d in days]
    rng = rng_for(seed, stream)
    values = []
    for _ in range(draws):
        value = statistic(np.concatenate([rows[i] for i in rng.integers(0, len(days), len(days))]))
        if np.isfinite(value):
            values.append(value)
    if not values:
        return float("nan"), float("nan")
    tail = (1.0 - level) / 2.0
    return float(np.quantile(values, tail)), float(np.quantile(values, 1.0 - tail))


def session_auc_interval(y, p, session, seed: int, level: float = 0.95) -> tuple[float, float]:
    """The AUC's session-bootstrap interval (:func:`session_interval`)."""
    return session_interval(lambda r: auc(y[r], p[r]), session, seed, "backtest.gate.auc", level)


def quantiles(p: np.ndarray) -> dict[str, float]:
    """Quantiles of probabilities (the strategy fits its thresholds on validation ones)."""
    return {f"q{int(q * 100):02d}": float(np.quantile(p, q)) for q in QUANTILES}


def fit_thresholds(validation_p: np.ndarray, target_activity: float = 0.3) -> dict:
    """Long and short probability thresholds from VALIDATION probabilities only: the upper
    and lower ``target_activity / 2`` tails, so that about that share of validation bars would
    be long or short. Stored in the artifact; the strategy's "fitted" rule reads them.

    >>> t = fit_thresholds(np.linspace(0.4, 0.6, 101), 0.2)
    >>> round(t["long"], 3), round(t["short"], 3)
    (0.58, 0.42)
    """
    p = np.asarray(validation_p, dtype=np.float64)
    return {
        "long": float(np.quantile(p, 1 - target_activity / 2)),
        "short": float(np.quantile(p, target_activity / 2)),
        "target_activity": target_activity,
        "fitted_on": "validation probabilities",
        "validation_samples": int(len(p)),
    }


__all__ = [
    "RESAMPLES",
    "auc",
    "brier",
    "calibration",
    "evaluate",
    "fit_logistic",
    "fit_thresholds",
    "log_loss",
    "predict_logistic",
    "quantiles",
    "scores",
    "session_auc_interval",
    "session_interval",
    "sigmoid",
]
