"""Causal regime labels: a spec's ``regimes`` block, and fitting it on a training split.

A spec may carry one ``regimes`` block (our extension of the original format). It adds one
column per regime, ``regime_bull``, ``regime_bear``, ``regime_sideways``, ``regime_volatile``,
computed by the REGIME op (``sentio.features.ops.regime``) in the same engine step as every
other feature, so batch and stream agree bit for bit and ``features check`` covers the labels.
Each column is P(regime | bars <= t); the label of a bar is the column with the largest value.

Two labellers, both fitted on a training split only (docs/regimes.md):

- ``rules``: volatile when the trailing realised volatility is above its training quantile
  ``VOL_LEVEL`` (the top quarter); otherwise bull / sideways / bear by the trailing trend
  against its training terciles among the other bars (``TREND_LEVELS``);
- ``hmm``: a 4-state Gaussian HMM (hmmlearn) over (ln vol, trend), applied by forward
  filtering. Its states are named by their means: the highest volatility is volatile; of the
  others the highest trend bull, the lowest bear, the middle one sideways.

>>> block = RegimeBlock(labeller="rules", rules=RulesParams(vol_cut=1e-3, trend_low=-0.01,
...     trend_high=0.01))
>>> block.columns
('regime_bull', 'regime_bear', 'regime_sideways', 'regime_volatile')
>>> labels_of(np.array([[0, 0, 0, 0], [0, 1, 0, 0], [0.2, 0.1, 0.6, 0.1]], np.float32)).tolist()
[-1, 1, 2]
"""

from __future__ import annotations

import logging
from typing import Annotated, Literal

import numpy as np
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    Strict,
    StrictInt,
    ValidationError,
    model_validator,
)

from sentio.core.errors import SentioError
from sentio.features.ops.regime import HEAD, HMM, INPUTS, RULES, constant_size

NAMES = ("bull", "bear", "sideways", "volatile")
LABELLERS = ("rules", "hmm")
VOL_LEVEL = 0.75  # volatile = the top quarter of training bars' volatility
TREND_LEVELS = (1 / 3, 2 / 3)  # bear / sideways / bull terciles of the other bars' trend
HMM_ITERATIONS = 100
# Bars after the inputs' warm-up before an hmm column counts as valid: the filter starts from
# the chain's long-run distribution and that start must be forgotten. Measured on the real
# IBKR and LSE QQQ files: two filters started at different bars agreed to the last float32 bit
# from 60 bars on (the largest gap 30 bars in: 1.7e-4); declared at twice that.
HMM_BURN = 120
MIN_FIT_BARS = 1_000  # fewer ready training bars cannot place four regimes


class RegimeError(SentioError):
    """A labeller that cannot be fitted or applied (too few bars, an HMM that failed)."""


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


# A number of a hand-written block: a JSON number (not a string, not true/false), finite.
Number = Annotated[float, Strict(), Field(allow_inf_nan=False)]
PROBABILITY_SUM = 1e-6  # how far a probability vector may sum from 1


class RulesParams(_Frozen):
    vol_cut: Number = Field(ge=0, description="volatile above this realised volatility")
    trend_low: Number = Field(description="bear below this trend (log return)")
    trend_high: Number = Field(description="bull above this trend")

    @model_validator(mode="after")
    def _ordered(self) -> RulesParams:
        if self.trend_low > self.trend_high:
            raise ValueError("trend_low must not be above trend_high (no bar would be sideways)")
        return self


class HmmParams(_Frozen):
    """A Gaussian HMM over (ln vol, trend), states in NAMES order."""

    start: tuple[Number, ...]
    transition: tuple[tuple[Number, ...], ...]
    means: tuple[tuple[Number, Number], ...]
    covars: tuple[tuple[tuple[Number, Number], tuple[Number, Number]], ...]

    @model_validator(mode="after")
    def _shapes(self) -> HmmParams:
        k = len(NAMES)
        if len(self.start) != k or len(self.transition) != k or len(self.means) != k:
            raise ValueError(f"an HMM block has {k} states")
        if len(self.covars) != k or any(len(row) != k for row in self.transition):
            raise ValueError(f"an HMM block has {k} states")
        for name, vector in [
            ("start", self.start),
            *(("transition row", r) for r in self.transition),
        ]:
            if min(vector) < 0 or abs(sum(vector) - 1.0) > PROBABILITY_SUM:
                raise ValueError(f"each {name} must be probabilities (>= 0) summing to 1")
        for cov in self.covars:
            (a, b), (b2, c) = cov
            if b != b2 or not (a > 0 and c > 0 and a * c - b * b > 0):
                raise ValueError("each covariance must be symmetric positive definite")
        return self


class RegimeBlock(_Frozen):
    """The ``regimes`` block of a spec: which labeller, its windows, its fitted numbers."""

    labeller: Literal["rules", "hmm", "inputs"]
    vol_window: StrictInt = Field(120, ge=2, le=100_000, description="bars of realised vol")
    trend_window: StrictInt = Field(390, ge=1, le=100_000, description="bars of the trend return")
    rules: RulesParams | None = None
    hmm: HmmParams | None = None
    fitted_on: dict = Field(default_factory=dict, description="what the fit saw (a record)")

    @model_validator(mode="after")
    def _fitted(self) -> RegimeBlock:
        wanted = {"rules": "rules", "hmm": "hmm", "inputs": None}[self.labeller]
        for name in ("rules", "hmm"):
            present = getattr(self, name) is not None
            if present != (name == wanted):
                raise ValueError(
                    f"labeller {self.labeller!r} needs "
                    + (f"its fitted '{wanted}' numbers" if wanted else "no fitted numbers")
                    + f" and no other ({name!r} is {'given' if present else 'missing'})"
                )
        return self

    @property
    def columns(self) -> tuple[str, ...]:
        if self.labeller == "inputs":
            return ("regime_vol", "regime_trend")
        return tuple(f"regime_{name}" for name in NAMES)

    @property
    def params(self) -> dict[str, int]:
        """The REGIME op's parameters of every column of this block."""
        k = len(NAMES)
        burn = HMM_BURN if self.labeller == "hmm" else 0
        return {
            "window": self.vol_window,
            "trend_window": self.trend_window,
            "regimes": k,
            "burn": burn,
        }

    def to_json_dict(self) -> dict:
        return self.model_dump(mode="json", exclude_none=True)


def constants(block: RegimeBlock) -> np.ndarray:
    """The initial state of one REGIME column (ops/regime.py layout): header, empty rings, the
    fitted constants, an unstarted filter."""
    k = len(NAMES)
    vw, tw = block.vol_window, block.trend_window
    kind = {"rules": RULES, "hmm": HMM, "inputs": INPUTS}[block.labeller]
    out = np.zeros(HEAD + 2 + vw + tw + constant_size(k) + k)
    out[:4] = (kind, k, vw, tw)
    c = HEAD + 2 + vw + tw
    if block.rules is not None:
        r = block.rules
        out[c : c + 3] = (r.vol_cut, r.trend_low, r.trend_high)
    if block.hmm is not None:
        h = block.hmm
        with np.errstate(divide="ignore"):  # a zero probability is a log of -inf, as meant
            out[c : c + k] = np.log(np.asarray(h.start))
            out[c + k : c + k + k * k] = np.log(np.asarray(h.transition)).ravel()
        out[c + k + k * k : c + 3 * k + k * k] = np.asarray(h.means).ravel()
        covars = np.asarray(h.covars)
        inverse = np.linalg.inv(covars)
        out[c + 3 * k + k * k : c + 6 * k + k * k] = inverse[:, [0, 0, 1], [0, 1, 1]].ravel()
        out[c + 6 * k + k * k : c + 7 * k + k * k] = -0.5 * np.log(np.linalg.det(covars)) - np.log(
            2 * np.pi
        )
    return out


def labels_of(values: np.ndarray) -> np.ndarray:
    """(N,) regime index per row of (N, K) regime columns: the largest; -1 where every column
    is 0 (before the warm-up)."""
    values = np.asarray(values)
    out = np.argmax(values, axis=1).astype(np.int64)
    out[~(values > 0).any(axis=1)] = -1
    return out


def fit_rules(vol: np.ndarray, trend: np.ndarray) -> RulesParams:
    """Cut points as quantiles of the training bars (module doc).

    >>> v = np.r_[np.full(75, 1.0), np.full(25, 3.0)]
    >>> fit_rules(v, np.arange(100.0)).vol_cut
    1.5
    """
    vol, trend = np.asarray(vol, np.float64), np.asarray(trend, np.float64)
    cut = float(np.quantile(vol, VOL_LEVEL))
    calm = trend[vol <= cut]
    low, high = (float(q) for q in np.quantile(calm if len(calm) else trend, TREND_LEVELS))
    return RulesParams(vol_cut=cut, trend_low=low, trend_high=high)


def fit_hmm(vol: np.ndarray, trend: np.ndarray, lengths: list[int], seed: int) -> HmmParams:
    """A Gaussian HMM fitted by hmmlearn on (ln vol, trend) of consecutive training bars
    (``lengths``: the runs of consecutive bars, e.g. one per segment), states renamed."""
    try:
        from hmmlearn.hmm import GaussianHMM
        from threadpoolctl import threadpool_limits
    except ImportError as exc:
        raise RegimeError(
            "the hmm labeller needs hmmlearn: pip install 'sentio[train]' (or use --labeller rules)"
        ) from exc
    x = np.column_stack([np.log(np.maximum(np.asarray(vol, np.float64), 1e-12)), trend])
    if not (np.ptp(x[:, 0]) > 0 and np.ptp(x[:, 1]) > 0):
        raise RegimeError(
            "the bars to fit on have no spread of volatility or trend (constant prices?): four "
            "states cannot be told apart"
        )
    k = len(NAMES)
    model = GaussianHMM(
        n_components=k,
        covariance_type="full",
        n_iter=HMM_ITERATIONS,
        random_state=seed % 2**32,
        tol=1e-4,
        init_params="c",  # covariances from the data; the rest is set below
    )
    # A deterministic start that spreads the states over the volatility range (k-means, the
    # default start, merged two volatility levels on planted markets, docs/regimes.md):
    # means at the 1/8, 3/8, 5/8, 7/8 quantiles of ln vol and the median trend, sticky
    # transitions (a regime lasts, bar to bar), every state equally likely at the start.
    model.means_ = np.column_stack(
        [np.quantile(x[:, 0], (np.arange(k) + 0.5) / k), np.full(k, np.median(x[:, 1]))]
    )
    model.startprob_ = np.full(k, 1.0 / k)
    model.transmat_ = np.full((k, k), 0.01 / (k - 1)) + np.eye(k) * (0.99 - 0.01 / (k - 1))
    quiet = logging.getLogger("hmmlearn")  # it logs "not converging" on a last tiny step back
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    with threadpool_limits(1), np.errstate(all="ignore"):  # the same numbers on any core count
        try:
            model.fit(x, lengths)
        except (ValueError, np.linalg.LinAlgError) as exc:
            raise RegimeError(f"the HMM could not be fitted: {exc}") from exc
        finally:
            quiet.setLevel(level)
    if not np.isfinite(model.means_).all() or not np.isfinite(model.transmat_).all():
        raise RegimeError("the HMM fit gave non-finite numbers; give more or other bars")
    spread = np.ptp(x, axis=0)
    gaps = np.abs(model.means_[:, None, :] - model.means_[None, :, :]) / spread
    if (gaps.max(axis=2) + np.eye(k) < 1e-6).any():
        raise RegimeError(
            "the HMM fit found fewer than four distinct states in these bars; give more or "
            "other bars, or use the rules labeller"
        )
    order = name_states(model.means_)
    covars = model.covars_[order]
    covars = (covars + covars.transpose(0, 2, 1)) / 2  # exactly symmetric
    try:
        return HmmParams(
            start=tuple(float(v) for v in stationary(model.transmat_)[order]),
            transition=tuple(tuple(float(v) for v in row[order]) for row in model.transmat_[order]),
            means=tuple((float(a), float(b)) for a, b in model.means_[order]),
            covars=tuple(
                ((float(c[0, 0]), float(c[0, 1])), (float(c[1, 0]), float(c[1, 1]))) for c in covars
            ),
        )
    except ValidationError as exc:  # e.g. a covariance that collapsed to a point
        raise RegimeError(f"the HMM fit is unusable: {exc.errors()[0]['msg']}") from None


def stationary(transition: np.ndarray) -> np.ndarray:
    """The long-run distribution of a Markov chain: where the filter starts at a segment's
    first labelled bar. (hmmlearn's fitted start probability is one-hot on the state of the
    first training bar, which would tie the first labels of every segment to that state.)

    >>> stationary(np.array([[0.9, 0.1], [0.2, 0.8]])).round(4).tolist()
    [0.6667, 0.3333]
    """
    w, v = np.linalg.eig(np.asarray(transition).T)
    p = np.abs(np.real(v[:, np.argmin(np.abs(w - 1.0))]))
    return p / p.sum()


def name_states(means: np.ndarray) -> np.ndarray:
    """Fitted state index for each of NAMES: volatile has the highest ln vol; of the rest, bull
    the highest trend, bear the lowest, sideways the middle one.

    >>> name_states(np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 0.1], [0.0, -0.1]])).tolist()
    [2, 3, 0, 1]
    """
    volatile = int(np.argmax(means[:, 0]))
    rest = [s for s in range(len(means)) if s != volatile]
    by_trend = sorted(rest, key=lambda s: means[s, 1])
    return np.array([by_trend[-1], by_trend[0], by_trend[1], volatile])


__all__ = [
    "HMM_BURN",
    "HMM_ITERATIONS",
    "LABELLERS",
    "MIN_FIT_BARS",
    "NAMES",
    "TREND_LEVELS",
    "VOL_LEVEL",
    "HmmParams",
    "RegimeBlock",
    "RegimeError",
    "RulesParams",
    "constants",
    "fit_hmm",
    "fit_rules",
    "labels_of",
    "name_states",
    "stationary",
]
