"""The planted-market proof of issue 16 section 4: with costs, the cost rule keeps an edge that
the fitted quantile rule gives away, and on a null market no rule shows one.

Market: the built-in generator (``sentio.data.synth.generate``) with a planted AR(1) of strength
``RHO`` and a constant volatility (one regime, a flat intraday profile, no GARCH, no day-to-day
dispersion), so that each bar's shock ``u_t = ln(close / open) / sigma`` is read off exactly and
the ORACLE probability that the next ``HORIZON`` returns sum above zero has a closed form (the
module doc of ``generate`` gives the process): given ``u_t`` the sum of the next h shocks has

    mean u_t rho (1 - rho^h) / (1 - rho),  variance (1 + rho) / (1 - rho) sum_k (1 - rho^k)^2

(k = 1..h), and ``p = Phi(mean / sd)`` (the shocks are Student-t with 60 degrees of freedom,
near enough normal: the calibration test checks p against the realised frequencies). No network
is trained. The first ``VALIDATION`` sessions fit both rules (the quantile thresholds of
``train.evaluate.fit_thresholds`` and ``train.costrule.fit_cost_rule``); the last ``TEST``
sessions are traded through strattest's own accounting (``make_plan``, ``decide_blocks``,
``account``: next-open fills, default costs, one block per session).

Measured (seed 3; ``.venv/bin/python -m pytest tests/backtest/test_planted_costs.py``), net mean
per block with its 95 % bootstrap interval over 30 blocks:
- planted, quantile rule before costs: +0.535 % [+0.366, +0.701]: the signal is real;
- planted, quantile rule after costs: -0.304 % [-0.467, -0.142]: it gives the edge away (432
  long entries in QQQ, whose round trip costs 0.78 bp, and 411 short ones in PSQ, 5.3 bp);
- planted, cost rule: +0.329 % [+0.090, +0.579], 779 entries, every one long in QQQ: the
  expected 5-bar move never paid PSQ's round trip, so it never shorted (its fit: enter at 0.5
  round trips, stay down to -1, hold 1 bar, cool down 5; validation net per session +0.580 %
  [+0.292, +0.870]);
- null market (rho 0; the same oracle, believing rho 0.2): quantile rule -0.822 %
  [-0.960, -0.681] (costs for nothing); the cost rule's fit found no net edge on validation
  (trade false) and it never traded: 0.000 % [0.000, 0.000].
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from sentio.backtest.costs import CostModel
from sentio.backtest.strattest import (
    SYMBOLS,
    StrattestConfig,
    account,
    decide_blocks,
    make_plan,
    prices_of,
)
from sentio.data.synth import SynthConfig, generate, load_params
from sentio.features.inputs import clock_columns
from sentio.strategy import StrategyConfig
from sentio.train.costrule import fit_cost_rule
from sentio.train.evaluate import fit_thresholds

RHO, HORIZON, SEED = 0.2, 5, 3
VALIDATION, TEST = 20, 30  # sessions
REGIME = "sideways"
FREE = CostModel(
    commission_per_share=0.0,
    commission_min=0.0,
    sec_fee_per_million=0.0,
    taf_per_share=0.0,
    half_spread_bp=dict.fromkeys(SYMBOLS, 0.0),
)


def constant_volatility():
    """The shipped calibration with every source of changing volatility switched off."""
    params = load_params()
    regimes = params.regimes.model_copy(
        update={"vol_dispersion": (0.0,) * len(params.regimes.names)}
    )
    return params.model_copy(
        update={
            "garch_alpha": 0.0,
            "garch_beta": 0.0,
            "vol_profile": (1.0,) * 390,
            "regimes": regimes,
        }
    )


def oracle(qqq, rho: float, horizon: int, sigma: float) -> np.ndarray:
    """P(sum of the next ``horizon`` returns > 0 | the past) of the planted AR(1) (module doc)."""
    u = np.log(qqq["close"].to_numpy() / qqq["open"].to_numpy()) / sigma
    k = np.arange(1, horizon + 1)
    mean = u * rho * (1 - rho**horizon) / (1 - rho)
    sd = math.sqrt((1 + rho) / (1 - rho) * np.sum((1 - rho**k) ** 2))
    return 0.5 * (1.0 + np.vectorize(math.erf)(mean / sd / math.sqrt(2.0)))


def market(rho: float):
    """(instrument tables, QQQ's session per bar, the validation mask, oracle p believing RHO)."""
    params = constant_volatility()
    sigma = params.regimes.vol_per_min[params.regimes.names.index(REGIME)]
    config = SynthConfig(seed=SEED, days=VALIDATION + TEST, signal_strength=rho, regime=REGIME)
    generated = generate(config, params)
    tables = {s: generated.bars[s].of(s) for s in SYMBOLS}
    qqq = tables["QQQ"]
    session = clock_columns(qqq["ts"].to_numpy(np.int64))[1]
    validation = session < np.unique(session)[VALIDATION]
    return tables, session, validation, oracle(qqq, RHO, HORIZON, sigma)


def backtest(tables, validation, p, rule: str, thresholds: dict, costs=CostModel()):
    """The test sessions through strattest's accounting; returns the result."""
    qqq = tables["QQQ"]
    ts = qqq["ts"].to_numpy(np.int64)
    config = StrattestConfig(
        blocks=TEST, block_size=390, costs=costs, strategy=StrategyConfig(rule=rule)
    )
    meta = {"data": {"splits": {"validation": {"last_ts": int(ts[validation][-1])}}}}
    simulated = dict.fromkeys(SYMBOLS, True)
    plan = make_plan(config, Path("oracle"), meta, qqq, prices_of(tables), simulated, ~validation)
    used, exposure, reasons = decide_blocks(plan, lambda b: (p, thresholds))
    return account(plan, used, exposure, reasons, {})


def both_rules(rho: float) -> dict:
    tables, _, validation, p = market(rho)
    close = tables["QQQ"]["close"].to_numpy()
    ts = tables["QQQ"]["ts"].to_numpy(np.int64)
    prices = {s: float(np.median(tables[s]["close"].to_numpy()[validation])) for s in SYMBOLS}
    quantile = fit_thresholds(p[validation])
    cost = fit_cost_rule(p[validation], close[validation], ts[validation], HORIZON, prices=prices)
    out = {
        "quantile": backtest(tables, validation, p, "fitted", quantile),
        "cost": backtest(tables, validation, p, "cost", {"cost": cost}),
        "fit": cost,
    }
    if rho > 0:
        out["quantile_before_costs"] = backtest(tables, validation, p, "fitted", quantile, FREE)
    return out


@pytest.fixture(scope="module")
def planted():
    return both_rules(RHO)


@pytest.fixture(scope="module")
def null():
    return both_rules(0.0)


def interval(result) -> tuple[float, float, float]:
    summary = result.summary["strategy"]
    assert summary.blocks == TEST
    return summary.mean_rpb_pct, *summary.rpb_ci95_pct


def test_the_oracle_is_calibrated_on_the_planted_market():
    """The realised share of positive forward sums in each fifth of p matches its mean p."""
    tables, session, _, p = market(RHO)
    close = tables["QQQ"]["close"].to_numpy()
    same = session[HORIZON:] == session[:-HORIZON]
    up = (close[HORIZON:] > close[:-HORIZON])[same]
    q = p[:-HORIZON][same]
    fifth = np.searchsorted(np.quantile(q, [0.2, 0.4, 0.6, 0.8]), q)
    for b in range(5):
        assert abs(up[fifth == b].mean() - q[fifth == b].mean()) < 0.03
    # and it separates: the top fifth rises 11 points more often than the bottom one (measured)
    assert up[fifth == 4].mean() - up[fifth == 0].mean() > 0.08


def test_the_cost_rule_keeps_the_edge_the_quantile_rule_gives_away(planted):
    mean, low, high = interval(planted["quantile_before_costs"])
    assert low > 0, "the planted signal pays before costs"
    mean, low, high = interval(planted["quantile"])
    assert low < 0, f"the quantile rule's net interval [{low}, {high}] excludes zero"
    mean, low, high = interval(planted["cost"])
    assert mean > 0 and low > 0, f"the cost rule's net interval [{low}, {high}]"
    assert planted["fit"]["trade"] is True
    assert planted["cost"].verdict.kind == "edge", planted["cost"].verdict.text
    assert planted["quantile"].verdict.kind == "loss", planted["quantile"].verdict.text


def test_the_null_market_shows_no_edge(null):
    for rule in ("quantile", "cost"):
        mean, low, high = interval(null[rule])
        assert low <= 0, f"{rule} shows an edge on a null market: [{low}, {high}]"
        assert null[rule].verdict.kind != "edge", null[rule].verdict.text
    # the cost rule never trades there, and its verdict line says so in words
    assert null["cost"].verdict.text.startswith("verdict: no edge — net mean per block +0.000%")
    assert null["fit"]["trade"] is False
    assert len(null["cost"].fills) == 0
