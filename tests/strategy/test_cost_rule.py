"""The cost rule (strategy/signal.py) on hand-made probability paths, and the pieces of its fit
(train/costrule.py) against independent oracles: hand arithmetic, the backtest's own accounting
kernel and the cost model's defaults."""

from __future__ import annotations

import json

import numpy as np
import pytest

from sentio.backtest.costs import CostModel
from sentio.backtest.execution import simulate
from sentio.core.errors import OptionError
from sentio.strategy import StrategyConfig, run_strategy
from sentio.train.costrule import (
    SYMBOLS,
    decision_bars,
    fit_cost_rule,
    fit_move,
    isotonic,
    round_trip_fraction,
    with_costs,
)
from tests.cli.badinput import assert_refused, run_script

# m(p) = 10 bp x (p - 0.5) / 0.1: p = 0.6 expects +10 bp over the horizon, p = 0.4 -10 bp
MOVE = {"p": [0.0, 0.5, 1.0], "log_return": [-5e-3, 0.0, 5e-3]}
# long (QQQ) costs 2 bp a round trip, short (PSQ) 20 bp
COSTS = {"QQQ": 2e-4, "TQQQ": 6e-4, "PSQ": 20e-4, "SQQQ": 60e-4}
FIT = {
    "move": MOVE,
    "round_trip": COSTS,
    "enter_margin": 1.0,
    "stay_margin": 0.0,
    "min_hold_bars": 1,
    "cooldown_bars": 0,
    "trade": True,
}
OPEN = np.full(50, 300.0)  # minutes to the close: far from it


def run(p, **fit):
    config = StrategyConfig(rule="cost")
    exposure, reasons, _ = run_strategy(
        np.array(p, float), OPEN[: len(p)], config, {"cost": {**FIT, **fit}}
    )
    return exposure.tolist(), [r.value for r in reasons]


def test_enters_only_where_the_expected_move_pays_the_round_trip():
    # p 0.515 expects +1.5 bp < 2 bp (QQQ's round trip); 0.525 expects +2.5 bp > 2 bp
    exposure, reasons = run([0.515, 0.515, 0.525])
    assert exposure == [0.0, 0.0, 1.0] and reasons == ["inside_band", "inside_band", "long"]


def test_a_short_must_pay_the_dearer_instrument():
    # -5 bp pays QQQ's 2 bp but not PSQ's 20 bp: the same size of move long enters, short not
    assert run([0.45, 0.45])[0] == [0.0, 0.0]
    assert run([0.55])[0] == [1.0]
    assert run([0.25]) == ([-1.0], ["short"])  # -25 bp > 20 bp


def test_the_margin_scales_the_cost_to_beat():
    assert run([0.525], enter_margin=2.0)[0] == [0.0]  # 2.5 bp < 2 x 2 bp
    assert run([0.545], enter_margin=2.0)[0] == [1.0]  # 4.5 bp > 4 bp


def test_a_position_is_kept_while_the_gain_covers_the_stay_margin():
    # stay margin -1: a long is kept until the expected move falls below -2 bp
    exposure, reasons = run([0.53, 0.50, 0.485, 0.475], stay_margin=-1.0)
    assert exposure == [1.0, 1.0, 1.0, 0.0]
    assert reasons == ["long", "hold", "hold", "inside_band"]
    # stay margin 0: kept while the expected move is not negative
    assert run([0.53, 0.50, 0.49], stay_margin=0.0)[0] == [1.0, 1.0, 0.0]


def test_fitted_min_hold_and_cooldown_are_the_rules_not_the_configs():
    p = [0.53, 0.45, 0.45, 0.45, 0.53, 0.53, 0.53]  # 0.45: -5 bp, no long, no short
    exposure, reasons = run(p, min_hold_bars=3, cooldown_bars=2)
    # held 3 bars (entry included), out at bar 3, bars 4 and 5 cool down, in again at 6
    assert exposure == [1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 1.0]
    assert reasons == [
        "long",
        "min_hold",
        "min_hold",
        "inside_band",
        "cooldown",
        "cooldown",
        "long",
    ]


def test_a_fit_without_net_edge_never_enters():
    exposure, _ = run([0.9, 0.1, 0.9], trade=False)
    assert exposure == [0.0, 0.0, 0.0]


def test_a_model_without_the_fit_is_refused_naming_the_flag():
    with pytest.raises(OptionError, match=r"^--rule: cost needs a model"):
        run_strategy(np.array([0.6]), OPEN[:1], StrategyConfig(rule="cost"), {"long": 0.6})


@pytest.mark.parametrize("price", [400.0, 38.5, 9.9])
def test_round_trip_equals_the_backtest_accounting(price):
    """Buy the whole capital at the close of bar 0, sell at the close of bar 1, same price:
    the equity lost is the round trip (execution.simulate is the oracle)."""
    capital = 100_000.0
    close = np.full((3, 1), price)
    weights = np.array([[1.0], [0.0], [0.0]])
    half = np.array([0.005 / price])
    equity, _, fills, _ = simulate(
        weights, close, close, np.zeros(3, np.int64), False, capital, CostModel().vector(), half
    )
    bought = fills[0, 2] * price  # shares x the reference price
    expected = (capital - equity[-1]) / bought
    assert round_trip_fraction(price, capital) == pytest.approx(expected, rel=1e-9)


def test_round_trip_by_hand():
    # QQQ at $400 with $100,000: 250 shares; commission $1.25 each way, SEC 27.80 per $1M of
    # the sale at $399.995, TAF 250 x $0.000166, half a cent of spread each way on 250 shares
    sec = 27.80e-6 * 250 * 399.995
    by_hand = (2 * 1.25 + sec + 250 * 0.000166 + 2 * 0.005 * 250) / 100_000
    assert round_trip_fraction(400.0) == pytest.approx(by_hand, rel=1e-12)
    assert round_trip_fraction(200_000.0) == float("inf")  # not one share


def test_with_costs_prices_missing_siblings_and_keeps_the_margins():
    fit = with_costs({**FIT, "costs": {}}, {"QQQ": 400.0, "PSQ": 40.0}, rates={"taf_max": 0.0})
    assert fit["enter_margin"] == FIT["enter_margin"]
    assert fit["costs"]["prices_assumed"] == ["TQQQ", "SQQQ"]
    assert fit["costs"]["prices"]["TQQQ"] == pytest.approx(50.0)  # the built-in ratio 50/400
    assert fit["round_trip"]["PSQ"] == pytest.approx(
        round_trip_fraction(40.0, rates={"taf_max": 0})
    )


def test_isotonic_is_monotone_and_keeps_the_weighted_mean():
    rng = np.random.default_rng(1)
    y, w = rng.normal(size=40), rng.uniform(1, 3, 40)
    fitted = isotonic(y, w)
    assert np.all(np.diff(fitted) >= 0)
    assert np.sum(fitted * w) == pytest.approx(np.sum(y * w))
    # a monotone series is its own fit
    assert isotonic(np.arange(5.0), np.ones(5)).tolist() == [0.0, 1.0, 2.0, 3.0, 4.0]


def test_fit_move_recovers_a_planted_conditional_mean():
    """E[r | p] = 1e-3 x (p - 0.5) planted under noise: the table follows the line."""
    rng = np.random.default_rng(2)
    p = rng.uniform(0.3, 0.7, 200_000)
    r = 1e-3 * (p - 0.5) + rng.normal(0, 1e-4, len(p))
    move = fit_move(p, r)
    truth = 1e-3 * (np.array(move["p"]) - 0.5)
    assert np.max(np.abs(np.array(move["log_return"]) - truth)) < 5e-6
    assert sum(move["bars"]) == len(p)


def test_decision_bars_cover_the_part_and_skip_other_segments_windows():
    rows = np.array([10, 12, 30])
    segment = np.r_[np.zeros(20, int), np.ones(20, int)]
    bars, has = decision_bars(rows, segment, seq_len=4)
    assert bars.tolist() == list(range(10, 31))
    # 20..22: windows reach into segment 0; 23..29: no sample of segment 1 before them yet
    assert has.tolist() == [True] * 10 + [False] * 10 + [True]


def test_the_fit_is_json_and_refuses_to_trade_on_noise():
    """Uninformative probabilities on a random walk: no grid point nets an interval above
    zero, so the rule is stored with trade false."""
    from sentio.data.synth import SynthConfig, generate

    qqq = generate(SynthConfig(seed=11, days=12)).bars["QQQ"].of("QQQ")
    p = np.random.default_rng(3).uniform(0.4, 0.6, len(qqq))
    fit = fit_cost_rule(p, qqq["close"].to_numpy(), qqq["ts"].to_numpy(), horizon=5)
    assert fit["trade"] is False
    assert fit["why"].startswith("does not trade: the best net per validation session [")
    assert json.loads(json.dumps(fit)) == fit
    assert set(fit["round_trip"]) == set(SYMBOLS)
    assert fit["validation"]["sessions"] == 12


def test_a_few_sessions_never_make_the_rule_trade():
    """A strong planted signal (rho 0.5) seen over 3 sessions: too few for an interval."""
    from sentio.data.synth import SynthConfig, generate

    qqq = generate(SynthConfig(seed=5, days=3, signal_strength=0.5)).bars["QQQ"].of("QQQ")
    last = np.log(qqq["close"].to_numpy() / qqq["open"].to_numpy())
    p = 1.0 / (1.0 + np.exp(-last / np.std(last)))  # rises with the last return, as the truth
    fit = fit_cost_rule(p, qqq["close"].to_numpy(), qqq["ts"].to_numpy(), horizon=5)
    assert fit["trade"] is False
    assert fit["why"] == (
        "does not trade: 3 validation sessions are fewer than the 10 an interval needs"
    )


def test_strattest_refuses_the_cost_rule_for_a_model_without_its_fit(tiny_artifact, tmp_path):
    """A model trained before the cost rule (its fit taken out of a copy of the tiny artifact,
    written as a valid artifact): one line naming --rule, exit 2, through the console script."""
    from sentio.model.artifact import write_artifact

    files = {p.name: p.read_bytes() for p in tiny_artifact.iterdir() if p.name != "manifest.json"}
    meta = json.loads(files["model.meta.json"])
    meta["thresholds"].pop("cost", None)
    files["model.meta.json"] = json.dumps(meta).encode()
    old = write_artifact(tmp_path / "old", files)
    done = run_script(
        "sentio",
        "strattest",
        "--model",
        str(old),
        "--rule",
        "cost",
        "--blocks",
        "1",
        "--no-cache",
        cwd=tmp_path,
    )
    assert_refused(done, "--rule", "cost needs a model whose training fitted the cost rule")
