"""What a report draws, checked against records made elsewhere: the strattest run's own
block returns, metrics, block table and costs (an audited run re-derives them from its fills),
and labels recomputed by hand from the closes.

One tiny strattest in memory (2 blocks of 200 bars, the adaptive rule so that the tiny
model trades; ``tiny_artifact`` is the session's trained model) and a hand-made walk-forward
run folder serve every test. The audited run and the run folder are checked against
strattest's records in test_report_browser.py, which makes them once.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from sentio.backtest.strattest import StrattestConfig, run_strattest
from sentio.core.clock import NEW_YORK
from sentio.report import ReportError, report_run, write
from sentio.report.data import drawdown_pct, entries_exits
from sentio.report.sources import from_result, from_run_folder
from sentio.strategy import StrategyConfig

pytest.importorskip("bokeh", reason="the report draws with Bokeh: pip install 'sentio[report]'")


@pytest.fixture(scope="module")
def run(tiny_artifact):
    config = StrattestConfig(
        model=tiny_artifact,
        blocks=2,
        block_size=200,
        cache_dir=None,
        strategy=StrategyConfig(rule="adaptive"),
    )
    result = run_strattest(config)
    assert len(result.fills) > 0  # the adaptive rule trades: entries and exits exist
    return result


def test_equity_and_drawdown_are_the_runs_own(run):
    """The chained equity ends where the recorded block returns compound to, and its
    drawdown bottoms at the max drawdown metrics.py computed from the bar returns."""
    result = run
    data = from_result(result)
    capital = result.config.capital
    expected = capital * np.prod(1 + result.per_block["return_pct"].to_numpy() / 100)
    assert data.final_equity() == pytest.approx(expected, rel=1e-12)
    lowest = drawdown_pct(data.stitched_equity(), capital).min()
    assert lowest == pytest.approx(result.summary["strategy"].max_drawdown_pct, abs=1e-9)
    # buy-and-hold chained the same way ends at its own recorded block returns
    hold = data.bars["equity_buy_and_hold"].to_numpy()
    ends = np.r_[np.flatnonzero(np.diff(data.bars["block"]) != 0), len(hold) - 1]
    got = 100 * (hold[ends] / capital - 1)
    assert got == pytest.approx(result.per_block["buy_and_hold_return_pct"].to_numpy(), abs=1e-9)


def test_entries_and_exits_are_the_round_trips(run):
    """Every block starts and ends flat and the adaptive rule holds one instrument at a time,
    so each entry is one round-trip trade of the run's figures and each has its exit."""
    result = run
    bars = result.per_bar
    entries, exits = entries_exits(bars["exposure"].to_numpy(), bars["block"].to_numpy())
    assert len(entries) == len(exits) == result.summary["strategy"].trades
    assert (exits > entries).all()


def test_labels_are_the_forward_return_computed_by_hand(run, tiny_artifact):
    """The label of a traded bar: QQQ's log return over the model's horizon, up or down past
    the dead zone, within one New York date and one segment; computed here with pandas."""
    result = run
    meta = json.loads((tiny_artifact / "model.meta.json").read_text())
    horizon = meta["label"]["horizon_bars"]
    deadzone = meta["label"]["deadzone_bp"] * 1e-4
    market = result.market.reset_index(drop=True)
    date = pd.to_datetime(market["ts"], utc=True).dt.tz_convert(NEW_YORK).dt.date
    ahead = market["close"].shift(-horizon)
    same = (date.shift(-horizon) == date) & (market["segment"].shift(-horizon) == market["segment"])
    ret = np.log(ahead / market["close"])
    hand = np.where(same & (ret > deadzone), 1.0, np.where(same & (ret < -deadzone), 0.0, np.nan))
    row = pd.Index(market["ts"]).get_indexer(result.per_bar["ts"])
    got = from_result(result).bars["label"].to_numpy()
    np.testing.assert_array_equal(got, hand[row])
    assert np.isfinite(got).sum() > 100


def test_a_walk_forward_folder_is_drawn_by_sessions(tmp_path):
    """A walk-forward run folder (docs/walkforward.md: walkforward.json, sessions.csv) has
    no bars: the sessions are chained, and the final equity is sessions.csv's own. The page
    prints the recorded figures as strattest does (3 decimals, n/a and the small-sample
    mark) and shows every string with markup as text, never as markup."""
    folder = tmp_path / "wf"
    folder.mkdir()
    returns = [0.5, -1.0, 0.25]
    sessions = pd.DataFrame(
        {
            "date": ["2024-01-02", "2024-01-03", "2024-01-04"],
            "session": [10, 11, 12],
            "fold": [0, 0, 1],
            "model": ["folds/000/model"] * 2 + ["folds/001/model"],
            "walk_forward_return_pct": returns,
            "single_return_pct": [0.1, 0.2, 0.3],
            "buy_and_hold_return_pct": [1.0, -2.0, 0.0],
            "warmup_bars": [0, 0, 0],
            "walk_forward_costs": [10.0, 12.0, 9.0],
            "walk_forward_turnover": [3.0, 4.0, 2.0],
            "walk_forward_equity": [1.005, 0.99495, 0.9974374],
        }
    )
    sessions.to_csv(folder / "sessions.csv", index=False)
    figures = {"blocks": 3, "mean_rpb_pct": -0.08333, "rpb_ci95_pct": [-1.0, 0.5],
               "sharpe": None, "days": 3, "small_sample": True}  # fmt: skip
    document = {
        "config": {
            "strattest": {"capital": 50_000.0, "fill": "next-open"},
            "policy": {"train_window": 6, "shadow_sessions": 1, "retrain_every": 2},
            "feature_spec": "<img src=x onerror=alert(2)>",
        },
        "folds": [
            {
                "fold": 0,
                "promoted": True,
                "gate_reason": "<script>alert(1)</script>",
                "oos": {"auc": 0.5},
            }
        ],  # fmt: skip
        "summary": {"walk_forward": figures, "buy_and_hold_qqq": figures},
        "costs": {"walk_forward": {"costs": 31.0}},
        "verdict": {
            "text": "verdict: 3 sessions are too few <to judge>",
            "mean_pct": -0.08333,
            "ci95_pct": [-1.0, 0.5],
        },  # fmt: skip
    }
    (folder / "walkforward.json").write_text(json.dumps(document))
    data = from_run_folder(folder)
    assert data.bars is None and data.unit == "session"
    assert data.final_equity() == pytest.approx(50_000 * np.prod(1 + np.array(returns) / 100))
    page = report_run(folder, tmp_path / "wf.html").read_text()
    assert "<td>-0.083</td>" in page and "<td>-1.000 .. 0.500</td>" in page
    assert "<td>n/a *</td>" in page and "annualised from 3 trading days" in page
    assert "3 sessions are too few &lt;to judge&gt;" in page and "<to judge>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "<script>alert(1)" not in page
    assert "&lt;img src=x" in page and "<img src=x" not in page


def test_without_bokeh_the_error_names_the_extra(run, tmp_path, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "bokeh", None)  # import bokeh raises ImportError
    with pytest.raises(ReportError, match=r"pip install 'sentio\[report\]'"):
        write(from_result(run), tmp_path / "x.html")
    assert not (tmp_path / "x.html").exists()
