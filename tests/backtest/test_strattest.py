"""strattest end to end: honesty rules, baselines, and an independent engine (vectorbt) that
reproduces every fill and the equity to the cent from the same orders, prices and fees."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from sentio.backtest.strattest import SYMBOLS, StrattestConfig, load_market, run_strattest
from sentio.model import load_verified
from tests.conftest import real_qqq_config

pytest.importorskip("torch", reason="training the test artifact needs the train extra")


@pytest.fixture(scope="module")
def artifact(tiny_artifact):
    return tiny_artifact


def strattest(*args):
    done = subprocess.run(
        [sys.executable, "-m", "sentio", "strattest", "tfa", *args, "--json", "--no-cache"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    return done


def test_only_out_of_sample_blocks_unless_asked(artifact):
    done = strattest("--model", str(artifact), "--blocks", "5")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    meta = load_verified(artifact)
    # 12 built-in sessions: the bars after the validation end fill one 480-bar block
    assert report["blocks_run"] == 1 and report["blocks_asked"] == 5
    assert not report["in_sample"] and not report["optimistic_fill"]
    assert report["data_range"][0] > meta["data"]["splits"]["validation"]["last_time"]
    assert report["simulated"] == {s: True for s in SYMBOLS}
    flat = report["summary"]["flat"]
    assert flat["mean_rpb_pct"] == 0.0 and flat["trades"] == 0 and flat["fees"] == 0.0
    inside = strattest(
        "--model", str(artifact), "--blocks", "5", "--allow-in-sample", "--fill", "close"
    )
    report = json.loads(inside.stdout)
    assert report["blocks_run"] == 5 and report["in_sample"] and report["optimistic_fill"]


def test_every_fill_and_the_equity_match_vectorbt_on_a_real_file(tmp_path, artifact):
    vbt = pytest.importorskip("vectorbt", reason="vectorbt is a dev dependency")
    config = real_qqq_config(tmp_path, artifact)
    result = run_strattest(config)
    assert result.blocks_run == 5 and len(result.fills) >= 20
    qqq, prices, simulated = load_market(config, load_verified(artifact))
    assert not simulated["QQQ"] and simulated["TQQQ"]
    ts = qqq["ts"].to_numpy()
    row_of = {t: i for i, t in enumerate(ts)}
    for block in range(result.blocks_run):
        bars_in = result.per_bar[result.per_bar["block"] == block]
        rows = np.array([row_of[t] for t in bars_in["ts"]])
        fills = result.fills[result.fills["ts"].isin(bars_in["ts"])]
        shape = (len(rows), len(SYMBOLS))
        size, price, fees = np.full(shape, np.nan), np.full(shape, np.nan), np.zeros(shape)
        for fill in fills.itertuples():
            r, j = row_of[fill.ts] - rows[0], SYMBOLS.index(fill.symbol)
            size[r, j], price[r, j], fees[r, j] = fill.qty, fill.price, fill.fees
        portfolio = vbt.Portfolio.from_orders(
            close=prices["close"][rows],
            size=size,
            price=price,
            fixed_fees=fees,
            size_type="amount",
            init_cash=config.capital,
            cash_sharing=True,
            group_by=True,
            call_seq="auto",
            freq="1min",
        )
        value = portfolio.value().to_numpy()
        np.testing.assert_allclose(value, bars_in["equity"].to_numpy(), atol=0.005)
        orders = portfolio.orders.records_readable
        assert len(orders) == len(fills)
        ours = fills.assign(size=fills["qty"].abs()).sort_values(["ts", "symbol"])
        theirs = orders.sort_values(["Timestamp", "Column"])
        np.testing.assert_allclose(
            np.sort(theirs["Size"].to_numpy()), np.sort(ours["size"].to_numpy().astype(float))
        )
        np.testing.assert_allclose(
            np.sort(theirs["Price"].to_numpy()), np.sort(ours["price"].to_numpy()), rtol=1e-12
        )
        np.testing.assert_allclose(
            np.sort(theirs["Fees"].to_numpy()), np.sort(ours["fees"].to_numpy()), atol=1e-9
        )


def test_simulation_mode_runs_fresh_tracks_per_regime(artifact):
    done = strattest(
        "--model",
        str(artifact),
        "--mode",
        "simulation",
        "--tracks",
        "2",
        "--regime",
        "bull",
        "--regime",
        "volatile",
        "--blocks",
        "1",
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert set(report["regimes"]) == {"bull", "volatile"} and report["simulated"]
    for summary in report["regimes"].values():
        assert summary["tracks"] == 2 and summary["strategy"]["blocks"] == 2


def test_simulation_never_reuses_the_training_market(artifact):
    from sentio.backtest import strattest as module

    seen = []
    original = module.generate

    def spy(synth):
        seen.append(synth.seed)
        return original(synth)

    training_seed = load_verified(artifact)["data"]["synth"]["seed"]
    module.generate = spy
    try:
        module.run_simulation(
            StrattestConfig(model=artifact, blocks=1, cache_dir=None), 3, ("mixed",)
        )
    finally:
        module.generate = original
    assert len(seen) == 3 and training_seed not in seen and len(set(seen)) == 3
    # the seed that would collide is skipped, not reused
    first = module.track_seeds(7, "bull", 1, avoid=None)[0]
    assert first not in module.track_seeds(7, "bull", 3, avoid=first)


# --- issue 12: flags, named inputs, JSON, time zone, atomic --out, the cache -------------------


@pytest.mark.parametrize(
    ("flags", "flag"),
    [
        ({"capital": -5.0}, "--capital"),
        ({"blocks": 0}, "--blocks"),
        ({"block_size": 1}, "--block-size"),
        ({"seed": -1}, "--seed"),
        ({"commission_per_share": -1.0}, "--commission-per-share"),
        ({"commission_min": float("nan")}, "--commission-min"),
        ({"sec_fee_per_million": float("inf")}, "--sec-fee-per-million"),
        ({"taf_per_share": -1.0}, "--taf-per-share"),
        ({"rule": "fited"}, "--rule"),
        ({"fill": "clos"}, "--fill"),
        ({"half_spread_bp": ["QQQ=x"]}, "--half-spread-bp"),
        ({"data": ["builtin", "builtin"]}, "--data"),
    ],
)
def test_from_flags_names_the_flag_of_every_bad_value(flags, flag):
    from sentio.core.errors import OptionError

    with pytest.raises(OptionError) as caught:
        StrattestConfig.from_flags(**flags)
    assert caught.value.flag == flag and str(caught.value).startswith(f"{flag}: ")


def test_from_flags_builds_what_the_fields_say():
    spreads = ["QQQ=0.5", "TQQQ=1", "PSQ=2", "SQQQ=1.5"]
    config = StrattestConfig.from_flags(
        blocks=2, rule="bands", fill="close", cache=False, half_spread_bp=spreads
    )
    assert config.blocks == 2 and config.strategy.rule == "bands" and config.fill == "close"
    assert config.cache_dir is None and config.data == ("builtin",) and config.model is None
    assert config.costs.half_spread_bp == {"QQQ": 0.5, "TQQQ": 1.0, "PSQ": 2.0, "SQQQ": 1.5}
    # the defaults of the flags are the defaults of the config: the command changes nothing
    assert StrattestConfig.from_flags() == StrattestConfig()


def strict_json(text: str):
    """json.loads that refuses NaN and Infinity (which Python's parser accepts by default)."""

    def refuse(name):
        raise ValueError(f"bare {name} in JSON")

    return json.loads(text, parse_constant=refuse)


def run_cli(*args, cwd=None, env=None):
    import os

    return subprocess.run(
        [sys.executable, "-m", "sentio", "strattest", "tfa", *args],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=cwd,
        env={**os.environ, **(env or {})},
    )


def test_json_is_strict_and_names_the_model_and_data(artifact):
    done = strattest("--model", str(artifact), "--blocks", "1")
    assert done.returncode == 0, done.stderr
    report = strict_json(done.stdout)
    # staying flat has no daily variation: its Sharpe is undefined, so null (never NaN)
    assert report["summary"]["flat"]["sharpe"] is None
    assert (
        report["inputs"]["model"] == str(artifact) and report["inputs"]["model_from"] == "--model"
    )
    assert (
        report["inputs"]["data"] == "builtin" and "built-in market" in report["inputs"]["data_from"]
    )


def test_the_report_is_in_new_york_time_and_has_no_dict_reprs(artifact):
    from datetime import datetime
    from zoneinfo import ZoneInfo

    as_json = strict_json(strattest("--model", str(artifact), "--blocks", "1").stdout)
    done = run_cli("--model", str(artifact), "--blocks", "1", "--no-cache")
    assert done.returncode == 0, done.stderr
    for row in as_json["blocks"]:
        for key in ("start", "end"):  # the JSON's UTC time, converted by the standard library
            local = datetime.fromisoformat(row[key]).astimezone(ZoneInfo("America/New_York"))
            assert local.strftime("%Y-%m-%d %H:%M") in done.stdout
    assert "+00:00" not in done.stdout and "UTC" not in done.stdout
    assert "{" not in done.stdout and "':" not in done.stdout  # no dict repr (costs were one)
    assert f"model {artifact} (--model)" in done.stdout


def edit_cache(path, change, rehash):
    """Apply ``change`` to the cached values; with ``rehash`` also recompute the header's
    sha256, as an attacker who knows the format would."""
    import hashlib

    blob = path.read_bytes()
    end = blob.index(b"\n")
    header = json.loads(blob[:end])
    values = np.frombuffer(blob[end + 1 :], "<f8").copy()
    change(values)
    if rehash:
        header["sha256"] = hashlib.sha256(values.tobytes()).hexdigest()
    path.write_bytes(json.dumps(header, sort_keys=True).encode() + b"\n" + values.tobytes())


def to_099(values):  # the attack: exposure 47 % -> 97 %
    values[~np.isnan(values)] = 0.99


def to_5(values):  # round 2: not a probability at all, checksum recomputed
    values[~np.isnan(values)] = 5.0


def to_nan(values):  # round 2: "missing" everywhere (the strategy would stay flat)
    values[:] = np.nan


@pytest.mark.parametrize(
    ("change", "rehash", "reason"),
    [
        (to_099, False, "sha256"),
        (to_5, True, "outside [0, 1]"),
        (to_nan, True, "no probability on"),
    ],
    ids=["edited", "rehashed-above-one", "rehashed-all-nan"],
)
def test_a_poisoned_cache_is_recomputed_not_trusted(tmp_path, artifact, change, rehash, reason):
    """A poisoned cache file is refused, recomputed, and the run says so: its figures are
    those of a run without a cache."""
    args = ("--model", str(artifact), "--blocks", "1", "--json")
    truth = strict_json(run_cli(*args, "--no-cache", cwd=tmp_path).stdout)
    first = strict_json(run_cli(*args, cwd=tmp_path).stdout)  # writes the cache
    (path,) = (tmp_path / ".sentio-cache").glob("*.prob")
    edit_cache(path, change, rehash)
    again = run_cli(*args, cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    report = strict_json(again.stdout)
    for figure in ("exposure_pct", "mean_rpb_pct", "fees"):
        values = [r["summary"]["strategy"][figure] for r in (truth, first, report)]
        assert values[0] == values[1] == values[2], (figure, values)
    assert len(report["probability_cache"]["rejected"]) == 1
    assert reason in report["probability_cache"]["rejected"][0]
    assert first["probability_cache"]["rejected"] == [] and truth["probability_cache"]["hits"] == 0


SLOW_WRITER = """
import pathlib, sys, time
import pandas
signal = pathlib.Path(sys.argv[1])
original = pandas.DataFrame.to_parquet
def slow(self, path, *args, **kwargs):
    original(self, path, *args, **kwargs)
    signal.write_text(str(path))  # the file is written: a kill now must leave the old one
    time.sleep(120)
pandas.DataFrame.to_parquet = slow
sys.argv = ["sentio", *sys.argv[2:]]
from sentio.cli.app import main
main()
"""

OUT_FILES = ("blocks.parquet", "bars.parquet", "fills.parquet", "summary.json")
OLD = {name: f"old {name}".encode() for name in OUT_FILES}


def complete_or_old(out):
    """Each output file is either the planted old bytes or a complete new file."""
    import pandas as pd

    for name, old in OLD.items():
        blob = (out / name).read_bytes()
        if blob == old:
            continue
        if name.endswith(".json"):
            assert strict_json(blob.decode())["blocks_run"] == 1
        else:
            assert len(pd.read_parquet(out / name)) > 0


def test_kill_9_while_writing_out_leaves_the_old_files(tmp_path, artifact):
    import signal as signals
    import time

    out = tmp_path / "runs"
    out.mkdir()
    for name, old in OLD.items():
        (out / name).write_bytes(old)
    marker = tmp_path / "written"
    args = ["strattest", "tfa", "--model", str(artifact), "--blocks", "1", "--no-cache"]
    child = subprocess.Popen(
        [sys.executable, "-c", SLOW_WRITER, str(marker), *args, "--out", str(out)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 300
        while not marker.exists() and child.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert marker.exists(), child.stderr.read() if child.poll() is not None else "timeout"
        child.send_signal(signals.SIGKILL)
    finally:
        child.kill()
        child.wait()
    # the first table was written in full, but under a temporary name: the target is the old one
    assert marker.read_text() != str(out / "blocks.parquet")
    assert {n: (out / n).read_bytes() for n in OLD} == OLD
    # kill -9 of the real script at several moments: every file old or complete
    for delay in (0.5, 1.0, 1.5, 2.0):
        child = subprocess.Popen(
            [sys.executable, "-m", "sentio", *args, "--out", str(out)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(delay)
        child.send_signal(signals.SIGKILL)
        child.wait()
        complete_or_old(out)
    done = run_cli(*args[2:], "--out", str(out))
    assert done.returncode == 0, done.stderr
    complete_or_old(out)
    assert all((out / n).read_bytes() != old for n, old in OLD.items())
