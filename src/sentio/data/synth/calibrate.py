"""``sentio data calibrate``: measure the synthetic market's parameters from real QQQ bars.

Every number is a plain statistic of the input (see docs/synthetic_market.md):

- intraday profiles: mean over sessions of r^2 (and volume) divided by that session's mean,
  per minute of the session, smoothed with a 7-minute moving average (not the first and last
  two minutes, the auctions);
- day volatility ``s_d``: RMS of the de-seasonalised returns of a session;
- GARCH(1,1) on r / (profile x s_d), variance-targeted to 1, by Gaussian quasi-likelihood over
  a grid (reset to 1 at every session open, as the generator does);
- Student-t degrees of freedom by simulated moments: the value on :data:`DF_GRID` whose generated
  1-minute excess kurtosis (median of 8 seeded 120-session runs) is closest to the measured one
  (median over the input files, so one file's outlier cannot set it). Matching the kurtosis of
  GARCH residuals instead double-counts: most of the kurtosis comes from the intraday profile,
  the day volatility and GARCH, which the generator adds back;
- regimes per session: ``volatile`` if s_d is in the top quarter, else ``bull`` / ``bear`` when
  the session's return exceeds +/- 0.5 of its own volatility x sqrt(bars), else ``sideways``;
  transitions counted between adjacent sessions of one segment, plus one (Laplace);
- overnight gaps: log(first open / previous session's last close) between adjacent sessions.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from numba import njit

from sentio.core.errors import SynthError
from sentio.core.hashing import sha256_file
from sentio.data.ingest import import_files
from sentio.data.synth.facts import excess_kurtosis, session_returns
from sentio.data.synth.params import REGIMES, MarketParams, RegimeParams
from sentio.data.trading_calendar import locate

MINUTES = 390
SMOOTH = 7
VOLATILE_QUANTILE = 0.75
TREND_Z = 0.5
DF_GRID = (5.0, 6.0, 8.0, 10.0, 15.0, 20.0, 30.0, 60.0)
TAIL_SEEDS = 8


def smooth_profile(values: np.ndarray) -> np.ndarray:
    """7-minute centred moving average, except the first and last two minutes (kept as measured:
    the opening and closing auctions are spikes a moving average would smear)."""
    out = values.copy()
    kernel = np.ones(SMOOTH) / SMOOTH
    padded = np.pad(values, SMOOTH // 2, mode="edge")
    out[2:-2] = np.convolve(padded, kernel, mode="valid")[2:-2]
    return out


@njit(cache=True)
def garch_loglik(x, new_day, alpha, beta):  # pragma: no cover - compiled
    """Gaussian quasi log-likelihood of unit-variance GARCH(1,1), h reset at each new day."""
    omega = 1.0 - alpha - beta
    h = 1.0
    ll = 0.0
    prev = 0.0
    for t in range(len(x)):
        h = 1.0 if new_day[t] else omega + alpha * prev * prev + beta * h
        ll += -0.5 * (np.log(h) + x[t] * x[t] / h)
        prev = x[t]
    return ll


def fit_garch(x: np.ndarray, new_day: np.ndarray) -> tuple[float, float]:
    """Grid search (step 0.01) for the (alpha, beta) with the highest quasi-likelihood."""
    best = (-np.inf, 0.0, 0.0)
    for alpha in np.arange(0.0, 0.31, 0.01):
        for beta in np.arange(0.0, 0.995 - alpha, 0.01):
            ll = garch_loglik(x, new_day, alpha, beta)
            if ll > best[0]:
                best = (ll, float(round(alpha, 2)), float(round(beta, 2)))
    return best[1], best[2]


def calibrate(
    paths: list[str | Path], volume_paths: list[str | Path] | None = None
) -> MarketParams:
    """Fit :class:`MarketParams` from real 1-minute QQQ files (any importable format)."""
    pieces = []
    for file_no, path in enumerate(paths):
        bars, _ = import_files([path])
        if bars.interval_s != 60:
            raise SynthError(f"{path}: calibration needs 1-minute bars, got {bars.interval_s} s")
        frame = bars.frame
        r = session_returns(frame)
        r["segment"] = frame["segment"].to_numpy()
        r["volume"] = frame["volume"].to_numpy()
        r["open"] = frame["open"].to_numpy()
        r["close"] = frame["close"].to_numpy()
        r["file"] = file_no
        pieces.append(r)
    data = pd.concat(pieces, ignore_index=True)
    data = data[data["minute"] < MINUTES]
    key = ["file", "session"]

    # 1. Intraday profiles, each session normalised by its own mean square / mean volume.
    ok = data["ret"].notna()
    day_ms = data[ok].groupby(key)["ret"].transform(lambda s: np.mean(s * s))
    r2 = (data.loc[ok, "ret"] ** 2 / day_ms).groupby(data.loc[ok, "minute"]).mean()
    vol_profile = smooth_profile(np.sqrt(r2.reindex(range(MINUTES)).interpolate().to_numpy()))
    vol_profile /= np.sqrt(np.mean(vol_profile**2))
    day_mean_v = data.groupby(key)["volume"].transform("mean")
    vrel = (data["volume"] / day_mean_v).groupby(data["minute"]).mean()
    volume_profile = smooth_profile(vrel.reindex(range(MINUTES)).interpolate().to_numpy())
    volume_profile /= volume_profile.mean()

    # 2. Day volatility and de-seasonalised returns.
    data["prof"] = vol_profile[data["minute"].to_numpy()]
    data["y"] = data["ret"] / data["prof"]
    grouped = data.groupby(key, sort=True)
    day = pd.DataFrame(
        {
            "vol": grouped["y"].apply(lambda s: np.sqrt(np.nanmean(s * s))),
            "ret": grouped["ret"].sum(),
            "bars": grouped["ret"].count(),
            "segment": grouped["segment"].first(),
            "first_open": grouped["open"].first(),
            "last_close": grouped["close"].last(),
            "mean_volume": grouped["volume"].mean(),
        }
    ).reset_index()
    data = data.merge(day[[*key, "vol"]], on=key, how="left")
    x = (data["y"] / data["vol"]).to_numpy()
    new_day = np.r_[
        True, (np.diff(data["session"].to_numpy()) != 0) | (np.diff(data["file"].to_numpy()) != 0)
    ]
    valid = np.isfinite(x)
    # A hole inside a session: restart the variance there too (no shock is known across it).
    new_day = (new_day | np.r_[True, ~valid[:-1]])[valid]
    x = x[valid]

    # 3. GARCH (tails come last, by simulation).
    alpha, beta = fit_garch(x, new_day)
    target_kurtosis = float(np.median([excess_kurtosis(p["ret"].to_numpy()) for p in pieces]))

    # 4. Regimes per session.
    volatile = day["vol"] > day["vol"].quantile(VOLATILE_QUANTILE)
    z = day["ret"] / (day["vol"] * day["bars"] ** 0.5 * np.sqrt(np.mean(vol_profile**2)))
    label = np.where(volatile, 3, np.where(z > TREND_Z, 0, np.where(z < -TREND_Z, 1, 2)))
    day["regime"] = label
    counts = np.ones((4, 4))  # Laplace: one pseudo-count per cell
    adjacent = (
        (day["file"].to_numpy()[1:] == day["file"].to_numpy()[:-1])
        & (day["segment"].to_numpy()[1:] == day["segment"].to_numpy()[:-1])
        & (day["session"].to_numpy()[1:] == day["session"].to_numpy()[:-1] + 1)
    )
    for a, b in zip(label[:-1][adjacent], label[1:][adjacent], strict=True):
        counts[a, b] += 1
    transition = counts / counts.sum(axis=1, keepdims=True)
    regime_rows = [day[day["regime"] == k] for k in range(4)]
    if any(len(rows) < 2 for rows in regime_rows):
        raise SynthError("calibration data too short: need at least 2 sessions in every regime")
    regimes = RegimeParams(
        names=REGIMES,
        share=tuple(float(len(rows) / len(day)) for rows in regime_rows),
        drift_per_min=tuple(float((rows["ret"] / rows["bars"]).mean()) for rows in regime_rows),
        vol_per_min=tuple(float(np.exp(np.log(rows["vol"]).mean())) for rows in regime_rows),
        vol_dispersion=tuple(float(np.log(rows["vol"]).std(ddof=1)) for rows in regime_rows),
        transition=tuple(tuple(float(p) for p in row) for row in transition),
    )

    # 5. Overnight gaps between adjacent sessions of one segment.
    gaps = np.log(day["first_open"].to_numpy()[1:] / day["last_close"].to_numpy()[:-1])[adjacent]
    gap_kurt = excess_kurtosis(gaps)

    # 6. Volume around its profile.
    e = np.log(data["volume"] / (day_mean_v.to_numpy() * volume_profile[data["minute"].to_numpy()]))
    e = e.where(np.isfinite(e))
    same = np.r_[False, np.diff(data["session"].to_numpy()) == 0]
    e_prev = e.shift(1).where(same)
    pair = e.notna() & e_prev.notna()
    phi = float(np.corrcoef(e[pair], e_prev[pair])[0, 1])
    noise_sd = float(np.nanstd(e) * np.sqrt(1 - phi * phi))
    log_v = np.log(day["mean_volume"]) - day.groupby("file")["mean_volume"].transform(
        lambda s: np.log(s).mean()
    )
    log_s = np.log(day["vol"]) - day.groupby("file")["vol"].transform(lambda s: np.log(s).mean())
    elasticity = float(np.sum(log_v * log_s) / np.sum(log_s * log_s))
    level_sources = volume_paths if volume_paths else paths
    level_days = []
    for path in level_sources:
        bars, _ = import_files([path])
        _, session, _, _ = locate(bars.frame["ts"].to_numpy())
        level_days.append(bars.frame["volume"].groupby(session).mean())
    level = float(np.median(pd.concat(level_days)))

    params = MarketParams(
        sources=tuple(
            {"file": Path(p).name, "sha256": sha256_file(p), "volume_level": p in level_sources}
            for p in paths
        ),
        sessions=int(len(day)),
        vol_profile=tuple(float(v) for v in vol_profile),
        volume_profile=tuple(float(v) for v in volume_profile),
        garch_alpha=alpha,
        garch_beta=beta,
        student_df=DF_GRID[-1],
        regimes=regimes,
        gap_std=float(np.std(gaps)),
        gap_mean=float(np.mean(gaps)),
        gap_df=float(np.clip(4.0 + 6.0 / max(gap_kurt, 1e-6), 4.1, 60.0)),
        volume_level=level,
        volume_ar1=phi,
        volume_noise_sd=noise_sd,
        volume_vol_elasticity=elasticity,
    )
    return params.model_copy(update={"student_df": fit_tails(params, target_kurtosis)})


def fit_tails(params: MarketParams, target_kurtosis: float) -> float:
    """The df on DF_GRID whose simulated kurtosis is closest to ``target_kurtosis``."""
    from sentio.data.synth.generate import SynthConfig, generate  # generate builds on params

    best_df, best_err = DF_GRID[-1], np.inf
    for df in DF_GRID:
        trial = params.model_copy(update={"student_df": df})
        sims = [
            excess_kurtosis(
                session_returns(generate(SynthConfig(seed=s, days=120), trial).bars["QQQ"].frame)[
                    "ret"
                ].to_numpy()
            )
            for s in range(TAIL_SEEDS)
        ]
        err = abs(float(np.median(sims)) - target_kurtosis)
        if err < best_err:
            best_df, best_err = df, err
    return best_df
