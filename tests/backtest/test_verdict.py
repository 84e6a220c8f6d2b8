"""The verdict line and the small-sample mark (issue 16 sections 2 and 3).

Oracles: planted block returns whose interval must (or must not) contain zero, the rule in
words (at least 10 blocks; "edge" only when the 95 % interval lies above zero), the NYSE
sessions of the traded bars counted with pandas, and the same figures printed by historical
and simulation mode.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from sentio.backtest.metrics import MIN_DAYS, MIN_VERDICT_BLOCKS, bootstrap_mean_interval, verdict


def summary_of(rpb: np.ndarray, seed: int = 7) -> dict:
    low, high = bootstrap_mean_interval(rpb, seed)
    return {"blocks": len(rpb), "mean_rpb_pct": 100 * rpb.mean(),
            "rpb_ci95_pct": (100 * low, 100 * high)}  # fmt: skip


HOLD = {"mean_rpb_pct": 0.08, "rpb_ci95_pct": (-0.4, 0.55)}


def test_a_planted_edge_a_planted_loss_and_noise():
    rng = np.random.default_rng(0)
    edge = verdict(summary_of(0.004 + rng.normal(0, 0.002, 40)), HOLD)  # mean 20 sd: clear
    loss = verdict(summary_of(-0.004 + rng.normal(0, 0.002, 40)), HOLD)
    noise = verdict(summary_of(rng.normal(0, 0.002, 40) - rng.normal(0, 0.002, 40).mean()), HOLD)
    assert (edge.kind, loss.kind, noise.kind) == ("edge", "loss", "no edge")
    assert edge.text.startswith("verdict: edge — net mean per block +0.")
    assert "excludes zero" in edge.text and "; 40 blocks" in edge.text
    assert "(buy-and-hold +0.080% [-0.400%, +0.550%])" in noise.text
    assert noise.text.startswith("verdict: no edge — ") and "includes zero" in noise.text
    assert loss.ci95_pct[1] < 0 and "below zero" in loss.text


def test_too_few_blocks_never_show_an_edge():
    # two blocks of the same sign: the bootstrap interval excludes zero, yet nothing is shown
    few = summary_of(np.array([0.01, 0.011]))
    assert few["rpb_ci95_pct"][0] > 0
    judged = verdict(few, HOLD)
    assert judged.kind == "no edge" and judged.too_few and MIN_VERDICT_BLOCKS == 10
    assert "2 blocks are too few to judge (at least 10)" in judged.text
    undefined = verdict({"blocks": 0, "mean_rpb_pct": None, "rpb_ci95_pct": [None, None]}, HOLD)
    assert undefined.kind == "no edge" and "n/a" in undefined.text


def test_the_best_of_several_variants_says_so():
    judged = verdict(summary_of(np.full(12, 0.01) + np.arange(12) * 1e-4), HOLD, "session", 4)
    assert judged.text.endswith(
        "; best of 4 variants tried; intervals are not corrected for the choice"
    )
    assert "net mean per session" in judged.text and judged.to_dict()["tried"] == 4


# --- through strattest ----------------------------------------------------------------------

pytest.importorskip("torch", reason="the test artifact needs the train extra")


def strattest(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "sentio", "strattest", "tfa", *args, "--no-cache"],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip


@pytest.fixture(scope="module")
def historical(tiny_artifact, tmp_path_factory):
    """One printed run; its --out summary.json is the --json document."""
    out = tmp_path_factory.mktemp("verdict")
    printed = strattest("--model", str(tiny_artifact), "--allow-in-sample", "--blocks", "12",
                        "--block-size", "200", "--out", str(out))  # fmt: skip
    assert printed.returncode == 0, printed.stderr
    return json.loads((out / "summary.json").read_text()), printed.stdout


def test_strattest_states_its_verdict_by_the_rule(historical):
    report, stdout = historical
    judged = report["verdict"]
    mean = np.mean([b["return_pct"] for b in report["blocks"]])  # numpy over the blocks
    assert judged["count"] == 12 and judged["mean_pct"] == pytest.approx(mean, rel=1e-9)
    low, high = report["summary"]["strategy"]["rpb_ci95_pct"]
    assert judged["kind"] == ("no edge" if low <= 0 <= high else "edge" if low > 0 else "loss")
    assert judged["baseline_mean_pct"] == report["summary"]["buy_and_hold_qqq"]["mean_rpb_pct"]
    assert judged["text"] in stdout


def test_few_days_carry_a_mark_and_their_count(historical, tiny_artifact):
    report, stdout = historical
    from datetime import datetime
    from zoneinfo import ZoneInfo

    summary = report["summary"]["strategy"]
    # 12 blocks of 200 bars of the 12-session built-in market: the NYSE sessions they span
    ny = ZoneInfo("America/New_York")
    first = datetime.fromisoformat(report["blocks"][0]["start"]).astimezone(ny).date()
    last = datetime.fromisoformat(report["blocks"][-1]["end"]).astimezone(ny).date()
    sessions = pd.bdate_range(first, last)  # no NYSE holiday in these January weeks but the 15th
    expected = len([d for d in sessions if d.strftime("%m-%d") != "01-15"])
    assert summary["days"] == expected < MIN_DAYS and summary["small_sample"] is True
    sharpe_row = next(line for line in stdout.splitlines() if "Sharpe (daily)" in line)
    assert "*" in sharpe_row
    assert f"annualised from {expected} trading days: too few to annualise" in stdout


def test_simulation_prints_the_figures_historical_mode_prints(historical, tiny_artifact):
    _, stdout = historical
    done = strattest("--model", str(tiny_artifact), "--mode", "simulation", "--tracks", "1",
                     "--blocks", "2")  # fmt: skip
    assert done.returncode == 0, done.stderr
    labels = ("fills", "Sharpe (daily)", "max drawdown %", "spread $", "costs $ (the three)",
              "trading days", "turnover / block")  # fmt: skip
    for label in labels:
        assert f"│ {label}" in stdout and f"│ {label}" in done.stdout, label
    assert "verdict: no edge shown — 2 blocks are too few to judge" in done.stdout


def test_simulation_pools_its_tracks(tiny_artifact):
    """A regime's figures are its tracks' run one after another: counts, days and costs add
    up to the tracks' own."""
    from sentio.backtest.strattest import StrattestConfig, regime_summary, run_simulation

    config = StrattestConfig(model=tiny_artifact, blocks=1, cache_dir=None)
    tracks = run_simulation(config, 2, ("bull",))["bull"]
    pooled = regime_summary(tracks, config)
    own = [t.summary["strategy"] for t in tracks]
    assert pooled["strategy"]["blocks"] == 2 and pooled["tracks"] == 2
    assert pooled["strategy"]["days"] == sum(t.samples["strategy"].days for t in tracks)
    assert pooled["strategy"]["trades"] == sum(s.trades for s in own)
    for part in ("fills", "commissions", "regulatory_fees", "spread", "costs"):
        total = sum(getattr(t.costs["strategy"], part) for t in tracks)
        assert pooled["costs"]["strategy"][part] == pytest.approx(total, rel=1e-12)
    assert pooled["verdict"]["count"] == 2 and pooled["verdict"]["kind"] == "no edge"
