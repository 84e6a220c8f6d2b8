"""``sentio sweep --grid FILE`` (issue 14 section 4) through the real console script: a 2-variant
grid on the tiny walk-forward recipe (1-layer d=32 network, 16-row windows, 2 epochs, 8-session
windows on a 45-session built-in market with a planted signal). The oracles: the variants'
own walkforward.json and sessions.csv files (the ranking recomputed from them, the mean session
return recomputed with numpy from the per-session returns), and the grid's arithmetic (how
many variants). Bad grid files: one line on stderr naming the file and the key, no traceback.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("torch", reason="torch is a train extra")

from sentio.backtest.sweep import read_grid, variants  # noqa: E402

SENTIO = Path(sys.executable).with_name("sentio")
FIXED = """
[fixed]
builtin_days = 45
signal_strength = 0.3
market_seed = 11
train_window = 8
retrain_every = 5
shadow_sessions = 2
epochs = 2
learning_rate = 1e-3
feature_spec = "intraday_default"
d_model = 32
nhead = 4
num_layers = 1
sequence_length = 16
deadzone_bp = 0.0
cpu_capability = "native"
"""


# smaller still (30 sessions, 5-session windows, 1 epoch) for the tests that run sweeps
# in-process
TINY = """
[fixed]
builtin_days = 30
signal_strength = 0.3
retrain_every = 3
shadow_sessions = 1
epochs = 1
feature_spec = "intraday_default"
d_model = 16
nhead = 2
num_layers = 1
sequence_length = 16
deadzone_bp = 0.0
cpu_capability = "native"
"""


def sentio(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([str(SENTIO), *args], capture_output=True, text=True, env=env)


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    folder = tmp_path_factory.mktemp("sweep")
    grid = folder / "grid.toml"
    grid.write_text(FIXED + "\n[grid]\nhorizon = [1, 3]\n")
    done = sentio("sweep", "--grid", str(grid), "--out", str(folder / "out"))
    assert done.returncode == 0, done.stderr
    return folder / "out", done.stdout


def test_table_has_one_row_per_variant_and_the_count(swept):
    out, stdout = swept
    document = json.loads((out / "sweep.json").read_text())
    assert document["variants_tried"] == 2 == len(document["ranked"])
    assert sorted(r["variant"] for r in document["ranked"]) == [0, 1]
    rows = [line for line in stdout.splitlines() if line.startswith("│")]
    assert len(rows) == 2  # the table's body: one row per variant
    assert "2 variants, ranked by walk-forward mean session return" in stdout
    assert "selection: 2 variants tried" in stdout


def test_ranking_recomputed_from_the_run_files(swept):
    out, _ = swept
    document = json.loads((out / "sweep.json").read_text())
    means = {}
    for number, settings in enumerate(variants({"horizon": [1, 3]})):
        folder = out / "variants" / f"{number:03d}"
        report = json.loads((folder / "walkforward.json").read_text())
        assert report["config"]["label"]["horizon"] == settings["horizon"]
        sessions = pd.read_csv(folder / "sessions.csv")["walk_forward_return_pct"]
        mean = float(np.mean(sessions.to_numpy()))  # numpy over the per-session returns
        assert report["summary"]["walk_forward"]["mean_rpb_pct"] == pytest.approx(mean, rel=1e-9)
        means[number] = mean
        row = next(r for r in document["ranked"] if r["variant"] == number)
        assert row["session_return_ci95_pct"] == report["summary"]["walk_forward"]["rpb_ci95_pct"]
        assert row["oos_auc"] == report["out_of_sample"]["walk_forward"]["auc"]
    expected = sorted(means, key=lambda n: -means[n])
    assert [r["variant"] for r in document["ranked"]] == expected
    assert [r["rank"] for r in document["ranked"]] == [1, 2]


def test_best_variant_interval_and_the_verdict(swept):
    out, stdout = swept
    best = json.loads((out / "sweep.json").read_text())["best"]
    low95, high95 = best["session_return_ci95_pct"]
    low, high = best["session_return_ci_bonferroni_pct"]
    assert best["bonferroni_level"] == pytest.approx(1 - 0.05 / 2)
    assert low <= low95 <= best["mean_session_return_pct"] <= high95 <= high  # wider, nested
    includes_zero = low <= 0 <= high
    assert best["edge"] is (not includes_zero)
    assert ("no edge" in stdout) is includes_zero


def test_every_variant_traded_the_same_sessions(swept):
    """The horizons differ in nothing that moves the schedule, so both trade from the first
    session the (shared) policy allows; sweep.json records it and the report says it."""
    out, stdout = swept
    record = json.loads((out / "sweep.json").read_text())["sessions"]
    firsts, dates = set(), set()
    for number in (0, 1):
        folder = out / "variants" / f"{number:03d}"
        firsts.add(json.loads((folder / "walkforward.json").read_text())["schedule"][0]["trade"][0])
        dates.add(tuple(pd.read_csv(folder / "sessions.csv", dtype={"date": str})["date"]))
    assert len(firsts) == 1 and len(dates) == 1
    (first,), (traded,) = firsts, dates
    assert record == {
        "first_session": first, "first_date": traded[0], "last_date": traded[-1],
        "count": len(traded), "same_for_every_variant": True,
    }  # fmt: skip
    assert f"sessions: every variant traded the same {len(traded)} sessions" in stdout


def test_variants_with_other_windows_trade_from_the_latest_first_session(tmp_path):
    """train_window 5 could trade from an earlier session than 7; both start at 7's first
    session (the oracle: each variant's own planned schedule), and end together."""
    from sentio.backtest.sweep import configs, run_sweep
    from sentio.backtest.walkforward import planned_folds

    grid = tmp_path / "grid.toml"
    grid.write_text(TINY + "\n[grid]\ntrain_window = [5, 7]\n")
    parsed = read_grid(grid)
    own = [planned_folds(c)[0].trade[0] for c in configs(parsed)]
    assert own[0] < own[1]  # without trade_from they would not trade the same sessions
    document = run_sweep(parsed, tmp_path / "out")
    assert document["sessions"]["first_session"] == max(own)
    assert document["sessions"]["same_for_every_variant"]
    for number in (0, 1):
        report = json.loads((tmp_path / "out" / "variants" / f"00{number}" / "walkforward.json")
                            .read_text())  # fmt: skip
        assert report["schedule"][0]["trade"][0] == max(own)
        assert report["sessions"] == document["sessions"]["count"]


def test_sweep_on_ray_writes_the_same_bytes_as_local(tmp_path, monkeypatch, ray_calls):
    """docs/sweep.md: with SOURCE_DATE_EPOCH set, a sweep on Ray writes the same bytes as on
    the local backend (a real local Ray, 2 CPUs): sweep.json and every variant's files."""
    pytest.importorskip("ray", reason="the ray extra (pip install 'sentio[ray]') is not installed")
    from sentio.backtest import cluster
    from sentio.backtest.sweep import run_sweep

    monkeypatch.setenv("SOURCE_DATE_EPOCH", "0")
    grid = tmp_path / "grid.toml"
    grid.write_text(TINY + "train_window = 5\n\n[grid]\nhorizon = [1, 3]\n")
    parsed = read_grid(grid)
    calls = ray_calls
    run_sweep(parsed, tmp_path / "local")
    assert calls == [] and not cluster.import_ray().is_initialized()
    with cluster.ray_session(num_cpus=2):
        run_sweep(parsed, tmp_path / "ray", backend="ray")
    assert len(calls) == 2 and min(calls) >= 2  # each variant's folds went to Ray as tasks

    def files(folder: Path) -> dict[str, bytes]:
        return {str(f.relative_to(folder)): f.read_bytes() for f in folder.rglob("*")
                if f.is_file()}  # fmt: skip

    local, on_ray = files(tmp_path / "local"), files(tmp_path / "ray")
    assert sorted(local) == sorted(on_ray)
    assert "sweep.json" in local and "variants/001/walkforward.json" in local
    assert [name for name in local if local[name] != on_ray[name]] == []


def test_grid_order_and_count():
    assert variants({"seed": [1, 2], "preset": ["quick"], "horizon": [1, 5, 9]}) == [
        {"preset": "quick", "horizon": h, "seed": s} for h in (1, 5, 9) for s in (1, 2)
    ]


BAD = {
    "unknown.toml": ("[grid]\nhorizn = [1]\n", "grid.horizn"),
    "scalar.toml": ("[grid]\nhorizon = 1\n", "grid.horizon"),
    "syntax.toml": ("[grid\nhorizon = [1]\n", "not valid TOML"),
    "type.json": ('{"grid": {"horizon": [1, "x"]}}', "grid.horizon[1]"),
    "twice.toml": ("[fixed]\nseed = 1\n[grid]\nseed = [1, 2]\n", "fixed.seed"),
    "value.toml": ('[fixed]\npreset = "huge"\n[grid]\nseed = [1]\n', "fixed.preset"),
    "table.toml": ("[grids]\nseed = [1]\n", "grids"),
    "cpu.toml": ('[fixed]\ncpu_capability = "bogus"\n[grid]\nseed = [1]\n', "fixed.cpu_capability"),
    # variant 1's window is longer than the 45-session market: refused before variant 0 trains
    "nofold.toml": (
        FIXED.replace("train_window = 8\n", "") + "[grid]\ntrain_window = [8, 100]\n",
        "grid.train_window",
    ),
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_grid_file_is_one_line_naming_file_and_key(tmp_path, name):
    text, key = BAD[name]
    grid = tmp_path / name
    grid.write_text(text)
    done = sentio("sweep", "--grid", str(grid), "--out", str(tmp_path / "out"))
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert name in lines[0] and key in lines[0] and "--grid" in lines[0]
    assert "Traceback" not in done.stderr + done.stdout
    assert not (tmp_path / "out").exists()  # refused before any work


def test_missing_grid_file(tmp_path):
    done = sentio("sweep", "--grid", str(tmp_path / "nope.toml"), "--out", str(tmp_path / "o"))
    assert done.returncode != 0
    assert done.stderr.strip() == f"error: --grid: {tmp_path / 'nope.toml'}: no such file"


def test_read_grid_keeps_fixed_and_grid(tmp_path):
    grid = tmp_path / "g.json"
    grid.write_text(json.dumps({"fixed": {"epochs": 2}, "grid": {"seed": [1, 2]}}))
    parsed = read_grid(grid)
    assert parsed.fixed == {"epochs": 2} and parsed.grid == {"seed": [1, 2]}
