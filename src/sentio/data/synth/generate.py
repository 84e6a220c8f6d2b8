"""``sentio data synth``: the built-in market ("MarS"), seeded and calibrated to real QQQ.

QQQ, per 1-minute bar ``t`` of session ``d`` at minute ``k`` (docs/synthetic_market.md)::

    u_t = rho * u_{t-1} + sqrt(1 - rho^2) * e_t      e_t ~ Student-t(df), unit variance
    h_t = (1 - a - b) + a * x_{t-1}^2 + b * h_{t-1}   GARCH(1,1), h = 1 at each open
    x_t = sqrt(h_t) * u_t
    r_t = s_d * profile_k * x_t  (+ drift of the regime, only with ``drift=True``)

``rho`` is ``signal_strength`` (0 by default: the log price is then a martingale, the sign of any
future return independent of the past); with ``signal_flip_every`` N > 0, session d uses
``rho * (-1) ** (d // N)`` instead, and with ``signal_by_regime`` (one +-1 per regime)
``rho * signal_by_regime[regime of d]`` (see :func:`signal_sign`). ``s_d`` is the day volatility of
that day's regime (a Markov chain over bull/bear/sideways/volatile) times a lognormal day factor.
Sessions open with a Student-t overnight gap; high and low come from a Brownian bridge of 8 steps
inside each bar.

TQQQ (+3), SQQQ (-3) and PSQ (-1) follow the daily-reset identity from QQQ (see
:func:`leveraged`). Every generated table is marked simulated.
"""

from __future__ import annotations

import datetime
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from numba import njit

from sentio.core.errors import OptionError, SynthError, excerpt
from sentio.core.hashing import content_hash
from sentio.core.seeding import MAX_SEED, rng_for
from sentio.data.schema import Bars, canonical_frame
from sentio.data.synth.params import MarketParams, load_params
from sentio.data.trading_calendar import sessions_from
from sentio.data.validate import latest_ts

BRIDGE_STEPS = 8
# Seeds are recorded in JSON metadata and audit runs, which other tools read as int64.
MAX_DAYS = 10_000  # sessions (40 years); each costs 390 bars x 4 symbols of memory
REGIME_CHOICES = ("mixed", "bull", "bear", "sideways", "volatile")


@dataclass(frozen=True)
class Sibling:
    """A leveraged or inverse fund simulated from QQQ (dated defaults, see docs)."""

    symbol: str
    leverage: float
    expense_ratio: float  # per year; ProShares prospectus figures as of 2025
    start_price: float  # a chosen level; only ratios matter
    volume_ratio: float  # its bar volume = QQQ's x this (a chosen constant, see docs)


SIBLINGS = (
    Sibling("TQQQ", 3.0, 0.0082, 50.0, 1.0),
    Sibling("SQQQ", -3.0, 0.0095, 20.0, 1.0),
    Sibling("PSQ", -1.0, 0.0095, 40.0, 0.1),
)


@dataclass(frozen=True)
class SynthConfig:
    """What to generate. Every field is recorded in the output's metadata."""

    seed: int = 7  # the one seed; each component draws from its own named stream
    days: int = 250  # trading sessions
    start: str = "2024-01-02"  # first session on or after this date (XNYS calendar)
    signal_strength: float = 0.0  # rho of the planted AR(1); 0 = no predictable component
    signal_flip_every: int = 0  # sessions per sign of rho (session d: rho (-1)^(d//N)); 0 = never
    # sign of rho per regime, in the calibration's order (session d: rho * s[regime]); () = off
    signal_by_regime: tuple[float, ...] = ()
    drift: bool = False  # apply the regimes' calibrated drift (breaks the martingale)
    regime: str = "mixed"  # "mixed" = the Markov chain; else every day in that regime
    start_price: float = 400.0  # QQQ's first open (a chosen level)
    financing_rate: float = 0.0433  # per year; US effective fed funds rate, 2025-06
    tracking_noise_bp: float = 0.5  # sd of each sibling bar's independent noise, basis points

    def __post_init__(self) -> None:
        # Metadata is JSON, where the tuple comes back as a list: SynthConfig(**recorded) must
        # give the same (hashable) config.
        if isinstance(self.signal_by_regime, list):
            object.__setattr__(self, "signal_by_regime", tuple(self.signal_by_regime))

    def record(self) -> dict:
        """Every field as JSON, for metadata; ``signal_by_regime`` only when set, so a config
        without it records (and hashes) exactly as before the field existed.

        >>> "signal_by_regime" in SynthConfig().record()
        False
        """
        out = asdict(self)
        if self.signal_by_regime:
            out["signal_by_regime"] = list(self.signal_by_regime)
        else:
            del out["signal_by_regime"]
        return out

    def validate(self) -> None:
        if not 0 <= self.seed <= MAX_SEED:
            raise SynthError(f"--seed must be 0 to 2**63 - 1, got {excerpt(self.seed)}")
        if not 0.0 <= self.signal_strength < 1.0:
            raise SynthError(f"--signal-strength must be in [0, 1), got {self.signal_strength}")
        if not 1 <= self.days <= MAX_DAYS:
            raise SynthError(f"--days must be 1 to {MAX_DAYS:,}, got {self.days}")
        flip = self.signal_flip_every
        if (
            isinstance(flip, bool)
            or not isinstance(flip, int | np.integer)
            or not 0 <= flip <= MAX_DAYS
        ):
            raise SynthError(
                f"--signal-flip-every must be a whole number of sessions 0 to {MAX_DAYS:,} "
                f"(0 = never flips), got {excerpt(flip)}"
            )
        signs = self.signal_by_regime
        if not isinstance(signs, tuple) or not all(
            isinstance(v, int | float | np.integer | np.floating)
            and not isinstance(v, bool)
            and v in (1.0, -1.0)
            for v in signs
        ):
            raise SynthError(
                f"--signal-by-regime must give each regime a sign +1 or -1, got {excerpt(signs)}"
            )
        if signs and flip:
            raise SynthError(
                "--signal-by-regime and --signal-flip-every choose the sign two ways; give one"
            )
        try:
            datetime.date.fromisoformat(self.start)
        except (TypeError, ValueError) as exc:
            raise SynthError(
                f"--start must be a date YYYY-MM-DD, got {excerpt(self.start)} ({exc})"
            ) from exc
        if self.regime not in REGIME_CHOICES:
            raise SynthError(
                f"--regime must be one of {', '.join(REGIME_CHOICES)}, got {excerpt(self.regime)}"
            )
        if not 0 < self.start_price < float("inf"):
            raise SynthError("--start-price must be > 0")


@dataclass
class Market:
    """The generated tables: one canonical table per symbol, and the regime of every bar."""

    bars: dict[str, Bars]
    regimes: pd.DataFrame  # ts, regime (name), regime_id
    config: SynthConfig


def signal_sign(config: SynthConfig, path: np.ndarray | None = None) -> np.ndarray:
    """The sign (+1.0 or -1.0) of the planted rho in each session.

    With ``signal_flip_every`` N > 0 session d has ``(-1) ** (d // N)``; with
    ``signal_by_regime`` it has ``signal_by_regime[path[d]]``, ``path`` being the regime index of
    each session (:func:`regime_path`; default: the path under the shipped calibration).
    Otherwise every session is +1 (the planted rho never flips).

    >>> signal_sign(SynthConfig(days=7, signal_flip_every=2)).tolist()
    [1.0, 1.0, -1.0, -1.0, 1.0, 1.0, -1.0]
    >>> signal_sign(SynthConfig(days=3)).tolist()
    [1.0, 1.0, 1.0]
    >>> by_regime = SynthConfig(days=4, signal_by_regime=(1.0, -1.0, 1.0, -1.0))
    >>> signal_sign(by_regime, np.array([0, 1, 3, 2])).tolist()
    [1.0, -1.0, -1.0, 1.0]
    """
    if config.signal_by_regime:
        if path is None:
            path = regime_path(load_params(), config)
        return np.asarray(config.signal_by_regime, dtype=np.float64)[path]
    if config.signal_flip_every == 0:
        return np.ones(config.days)
    block = np.arange(config.days) // config.signal_flip_every
    return np.where(block % 2 == 0, 1.0, -1.0)


def parse_signal_by_regime(text: str, names: tuple[str, ...]) -> tuple[float, ...]:
    """``--signal-by-regime``: ``NAME=SIGN`` pairs, every regime once, to signs in ``names`` order.

    SIGN is ``1``, ``+1`` or ``-1``; anything else raises OptionError naming the flag.

    >>> parse_signal_by_regime("bear=-1, bull=+1", ("bull", "bear"))
    (1.0, -1.0)
    >>> parse_signal_by_regime("bull=1", ("bull", "bear"))
    Traceback (most recent call last):
    ...
    sentio.core.errors.OptionError: --signal-by-regime: no sign for bear; give NAME=SIGN for each of bull, bear
    """  # noqa: E501
    flag, given = "--signal-by-regime", {}
    expected = ", ".join(names)
    for item in text.split(","):
        name, eq, sign = (part.strip() for part in item.partition("="))
        if not eq or sign not in ("1", "+1", "-1"):
            raise OptionError(
                f"{excerpt(item.strip())} is not NAME=SIGN with SIGN 1, +1 or -1 "
                f"(e.g. bull=1,bear=-1); regimes: {expected}",
                flag=flag,
            )
        if name not in names:
            raise OptionError(f"unknown regime {excerpt(name)}; regimes: {expected}", flag=flag)
        if name in given:
            raise OptionError(f"{name} is given twice", flag=flag)
        given[name] = -1.0 if sign == "-1" else 1.0
    missing = [n for n in names if n not in given]
    if missing:
        raise OptionError(
            f"no sign for {', '.join(missing)}; give NAME=SIGN for each of {expected}", flag=flag
        )
    return tuple(given[n] for n in names)


@njit(cache=True)
def _shocks(e, new_day, rho, alpha, beta):  # pragma: no cover - compiled
    """x_t = sqrt(h_t) u_t with u the planted AR(1) and h the GARCH variance (see module doc).

    ``rho`` has one entry per bar (its session's signed rho); only ``rho[t]`` of a bar that is
    not a session open is used, so u never mixes two sessions' coefficients.
    """
    n = len(e)
    x = np.empty(n)
    h = np.empty(n)
    omega = 1.0 - alpha - beta
    u = 0.0
    for t in range(n):
        if new_day[t]:
            h[t] = 1.0
            u = e[t]
        else:
            h[t] = omega + alpha * x[t - 1] * x[t - 1] + beta * h[t - 1]
            u = rho[t] * u + np.sqrt(1.0 - rho[t] * rho[t]) * e[t]
        x[t] = np.sqrt(h[t]) * u
    return x, h


def _student(rng: np.random.Generator, df: float, size: int) -> np.ndarray:
    """Student-t draws scaled to unit variance."""
    return rng.standard_t(df, size) * np.sqrt((df - 2.0) / df)


def regime_path(params: MarketParams, config: SynthConfig) -> np.ndarray:
    """The regime index of each session: the calibrated Markov chain, or one fixed regime."""
    names = params.regimes.names
    if config.regime != "mixed":
        return np.full(config.days, names.index(config.regime), dtype=np.int64)
    p = np.asarray(params.regimes.transition)
    # Start from the chain's stationary distribution (left eigenvector for eigenvalue 1).
    w, v = np.linalg.eig(p.T)
    stationary = np.real(v[:, np.argmin(np.abs(w - 1.0))])
    stationary = stationary / stationary.sum()
    rng = rng_for(config.seed, "regimes")
    path = np.empty(config.days, dtype=np.int64)
    path[0] = rng.choice(len(names), p=stationary)
    for d in range(1, config.days):
        path[d] = rng.choice(len(names), p=p[path[d - 1]])
    return path


def generate(config: SynthConfig = SynthConfig(), params: MarketParams | None = None) -> Market:
    """Generate QQQ, TQQQ, SQQQ and PSQ (see module doc). Deterministic for a given seed."""
    config.validate()
    params = params or load_params()
    names = params.regimes.names
    if config.signal_by_regime and len(config.signal_by_regime) != len(names):
        raise SynthError(
            f"--signal-by-regime must give one sign per regime of the calibration "
            f"({', '.join(names)}), got {len(config.signal_by_regime)}"
        )
    sessions = sessions_from(config.start, config.days)
    if sessions.close_ns[-1] > latest_ts():
        raise SynthError(
            f"--start {config.start} with --days {config.days} ends on "
            f"{sessions.dates[-1]:%Y-%m-%d}, in the future: bars after now are refused by the "
            "bar rules (ts_out_of_range); choose an earlier --start or fewer --days"
        )
    bars_per_day = ((sessions.close_ns - sessions.open_ns) // 60_000_000_000).astype(np.int64)
    n = int(bars_per_day.sum())
    day_of_bar = np.repeat(np.arange(config.days), bars_per_day)
    first_bar = np.r_[0, np.cumsum(bars_per_day)[:-1]]
    minute = np.arange(n) - first_bar[day_of_bar]
    new_day = np.zeros(n, dtype=np.bool_)
    new_day[first_bar] = True
    ts = sessions.open_ns[day_of_bar] + minute * 60_000_000_000

    reg = params.regimes
    path = regime_path(params, config)
    day_factor = rng_for(config.seed, "day-vol").standard_normal(config.days)
    disp = np.asarray(reg.vol_dispersion)[path]
    s_day = np.asarray(reg.vol_per_min)[path] * np.exp(disp * day_factor - 0.5 * disp**2)
    e = _student(rng_for(config.seed, "shocks"), params.student_df, n)
    rho = config.signal_strength * signal_sign(config, path)[day_of_bar]  # exact: rho * +-1.0
    x, h = _shocks(e, new_day, rho, params.garch_alpha, params.garch_beta)
    scale = s_day[day_of_bar] * np.asarray(params.vol_profile)[minute]
    ret = scale * x
    if config.drift:
        ret = ret + np.asarray(reg.drift_per_min)[path][day_of_bar]

    gaps = params.gap_std * _student(rng_for(config.seed, "gaps"), params.gap_df, config.days)
    gaps[0] = 0.0
    if config.drift:
        gaps[1:] += params.gap_mean
    # log open of each bar = log close of the previous bar, plus the gap at each session open.
    step = ret + np.where(new_day, gaps[day_of_bar], 0.0)
    log_close = np.log(config.start_price) + np.cumsum(step)
    log_open = log_close - ret
    hi, lo = _bridge_extremes(ret, scale * np.sqrt(h), rng_for(config.seed, "bridge"))
    volume = _volume(params, config, minute, new_day, s_day, day_of_bar, path)
    open_, close = np.exp(log_open), np.exp(log_close)
    # The bridge passes through both ends, so high >= max(open, close) exactly in real numbers;
    # exp(log_open + hi) and exp(log_close) round apart by an ulp when the extreme is the close.
    # max/min restore the identity the bar rules check (seed 7 broke it once in 97,500 bars).
    qqq = pd.DataFrame(
        {
            "ts": ts,
            "symbol": "QQQ",
            "open": open_,
            "high": np.maximum(np.exp(log_open + hi), np.maximum(open_, close)),
            "low": np.minimum(np.exp(log_open + lo), np.minimum(open_, close)),
            "close": close,
            "volume": volume,
            "segment": 0,
        }
    )
    meta = _meta(config, params)
    tables = {"QQQ": Bars(canonical_frame(qqq), {**meta, "simulated": {"QQQ": True}})}
    for sib in SIBLINGS:
        frame = leveraged(qqq, new_day, sib, config)
        tables[sib.symbol] = Bars(canonical_frame(frame), {**meta, "simulated": {sib.symbol: True}})
    regimes = pd.DataFrame(
        {
            "ts": ts,
            "regime": np.asarray(reg.names, dtype=object)[path][day_of_bar],
            "regime_id": path[day_of_bar].astype(np.int8),
        }
    )
    return Market(bars=tables, regimes=regimes, config=config)


def _bridge_extremes(ret: np.ndarray, sd: np.ndarray, rng: np.random.Generator):
    """Max and min (>= 0 and <= 0) of a Brownian bridge from 0 to ``ret`` with bar sd ``sd``."""
    n = len(ret)
    z = rng.standard_normal((n, BRIDGE_STEPS)) * (sd / np.sqrt(BRIDGE_STEPS))[:, None]
    walk = np.cumsum(z, axis=1)
    frac = np.arange(1, BRIDGE_STEPS + 1) / BRIDGE_STEPS
    bridge = walk - frac[None, :] * (walk[:, -1] - ret)[:, None]
    return np.maximum(bridge.max(axis=1), 0.0), np.minimum(bridge.min(axis=1), 0.0)


def _volume(params, config, minute, new_day, s_day, day_of_bar, path) -> np.ndarray:
    """Whole shares: level x profile x (day vol effect) x exp(AR(1) noise), mean-preserving."""
    rng = rng_for(config.seed, "volume")
    phi, sd = params.volume_ar1, params.volume_noise_sd
    noise = rng.standard_normal(len(minute)) * sd
    a = _ar1(noise, new_day, phi)
    stationary_var = sd * sd / (1 - phi * phi)
    typical = np.exp(np.mean(np.log(params.regimes.vol_per_min)))
    day_effect = (s_day / typical) ** params.volume_vol_elasticity
    v = (
        params.volume_level
        * np.asarray(params.volume_profile)[minute]
        * day_effect[day_of_bar]
        * np.exp(a - 0.5 * stationary_var)
    )
    return np.maximum(np.round(v), 1.0)


@njit(cache=True)
def _ar1(noise, new_day, phi):  # pragma: no cover - compiled
    out = np.empty(len(noise))
    scale0 = 1.0 / np.sqrt(1.0 - phi * phi)  # start each day from the stationary spread
    for t in range(len(noise)):
        out[t] = noise[t] * scale0 if new_day[t] else phi * out[t - 1] + noise[t]
    return out


def leveraged(
    qqq: pd.DataFrame, new_day: np.ndarray, sib: Sibling, config: SynthConfig
) -> pd.DataFrame:
    """A fund with daily leverage ``L`` from QQQ bars, by the daily-reset identity.

    For every bar of session d, with ``P`` the fund's and ``Q`` QQQ's previous session close::

        value = P * (1 - ER/252 - (L - 1) * rate/252) * (1 + L * (Q_now / Q - 1))

    applied to open, high, low and close (high and low swap when L < 0), times one independent
    lognormal tracking noise per bar (``tracking_noise_bp``). On the first day Q is its first open.
    """
    L = sib.leverage
    day = np.cumsum(new_day) - 1
    n_days = int(day[-1]) + 1
    first = np.flatnonzero(new_day)
    last = np.r_[first[1:] - 1, len(day) - 1]
    q_close = qqq["close"].to_numpy()
    q_ref = np.r_[qqq["open"].to_numpy()[0], q_close[last[:-1]]]
    cost = sib.expense_ratio / 252.0 + (L - 1.0) * config.financing_rate / 252.0
    noise = np.exp(
        rng_for(config.seed, f"tracking-{sib.symbol}").standard_normal(len(day))
        * config.tracking_noise_bp
        * 1e-4
    )
    fields = {f: qqq[f].to_numpy() for f in ("open", "high", "low", "close")}
    out = {f: np.empty(len(day)) for f in fields}
    prev = sib.start_price
    for d in range(n_days):
        rows = slice(first[d], last[d] + 1)
        base = prev * (1.0 - cost)
        for f in fields:
            out[f][rows] = base * (1.0 + L * (fields[f][rows] / q_ref[d] - 1.0)) * noise[rows]
        prev = out["close"][last[d]]
    if L < 0:
        out["high"], out["low"] = out["low"], out["high"]
    if min(v.min() for v in out.values()) <= 0:
        raise SynthError(
            f"{sib.symbol} would reach a price <= 0: QQQ moved more than 1/{abs(L):g} in a day"
        )
    return pd.DataFrame(
        {
            "ts": qqq["ts"].to_numpy(),
            "symbol": sib.symbol,
            **out,
            "volume": np.maximum(np.round(qqq["volume"].to_numpy() * sib.volume_ratio), 1.0),
            "segment": 0,
        }
    )


def _meta(config: SynthConfig, params: MarketParams) -> dict:
    return {
        "interval_s": 60,
        "max_gap_min": 5,
        "generator": {
            "name": "MarS",
            "config": config.record(),
            "calibration": content_hash(params.model_dump(mode="json")),
            "siblings": [asdict(s) for s in SIBLINGS],
        },
    }


def write_market(market: Market, out_dir, *, flag: str | None = "--out") -> list:
    """Write ``SYMBOL.parquet`` per symbol and ``regimes.parquet`` into ``out_dir``.

    Each file is written atomically (see :func:`sentio.core.files.atomic_output`).
    """
    from pathlib import Path

    from sentio.core.files import atomic_output
    from sentio.data.schema import write_bars

    out = Path(out_dir)
    written = [
        write_bars(bars, out / f"{symbol}.parquet", flag=flag)
        for symbol, bars in market.bars.items()
    ]
    regimes = out / "regimes.parquet"
    with atomic_output(regimes, flag=flag) as tmp:
        market.regimes.to_parquet(tmp, index=False)
    return [*written, regimes]
