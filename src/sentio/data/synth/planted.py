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
from sentio.data.synth.params import MarketParams, load_params

# The regime-sign market of docs/regimes.md: volatility levels a factor 2 apart, in this order.
SEPARABLE_VOL_PER_MIN = {"bull": 1.5e-4, "sideways": 3e-4, "bear": 6e-4, "volatile": 12e-4}


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


def separable_regimes(stay: float = 0.5, params: MarketParams | None = None) -> MarketParams:
    """The calibration with regimes a trailing volatility can tell apart: the four regimes'
    volatility levels a factor 2 apart (``SEPARABLE_VOL_PER_MIN``), a flat intraday profile, a
    day-to-day dispersion of 0.05 and a chain that stays in a regime with probability ``stay``
    and otherwise moves to each other one alike (all four equally likely in the long run).
    With ``signal_by_regime`` it is the planted market of docs/regimes.md.

    >>> p = separable_regimes()
    >>> p.regimes.vol_per_min, [round(x, 3) for x in p.regimes.transition[0]]
    ((0.00015, 0.0006, 0.0003, 0.0012), [0.5, 0.167, 0.167, 0.167])
    """
    params = params or load_params()
    k = len(params.regimes.names)
    regimes = params.regimes.model_copy(
        update={
            "vol_per_min": tuple(SEPARABLE_VOL_PER_MIN[n] for n in params.regimes.names),
            "vol_dispersion": (0.05,) * k,
            "share": (1.0 / k,) * k,
            "transition": tuple(
                tuple(stay if i == j else (1 - stay) / (k - 1) for j in range(k)) for i in range(k)
            ),
        }
    )
    return params.model_copy(update={"regimes": regimes, "vol_profile": (1.0,) * 390})


__all__ = ["SEPARABLE_VOL_PER_MIN", "planted_accuracy", "separable_regimes"]
