"""What the planted signal makes predictable, measured by simulation (docs/synthetic_market.md).

With ``signal_strength`` rho the standardised shocks follow u_t = rho u_{t-1} + sqrt(1-rho^2) e_t.
The sign of r_t equals the sign of u_t, so the best predictor of the sign of the next ``horizon``
returns' sum, given the past, is the sign of the last return (all AR(1) weights are positive and
the noise is symmetric). Its accuracy is measured here by Monte Carlo on the same process with a
constant volatility, which is what makes the number a property of rho and the horizon alone.
"""

from __future__ import annotations

import numpy as np

from sentio.core.seeding import rng_for


def planted_accuracy(
    strength: float, horizon: int = 5, n: int = 400_000, seed: int = 0
) -> dict[str, float]:
    """Accuracy and AUC of the best sign predictor for the planted AR(1).

    >>> round(planted_accuracy(0.0, n=20_000)["accuracy"], 1)
    0.5
    """
    rng = rng_for(seed, "planted-accuracy")
    e = rng.standard_normal(n + horizon + 1)
    u = np.empty_like(e)
    u[0] = e[0]
    keep = np.sqrt(1 - strength * strength)
    for t in range(1, len(e)):  # n is modest; a plain loop keeps this readable
        u[t] = strength * u[t - 1] + keep * e[t]
    future = np.lib.stride_tricks.sliding_window_view(u[1:], horizon)[:n].sum(axis=1)
    score = u[:n]
    label = future > 0
    accuracy = float(np.mean((score > 0) == label))
    order = np.argsort(score)
    ranks = np.empty(n)
    ranks[order] = np.arange(1, n + 1)
    pos = label.sum()
    auc = float((ranks[label].sum() - pos * (pos + 1) / 2) / (pos * (n - pos)))
    return {"accuracy": accuracy, "auc": auc}
