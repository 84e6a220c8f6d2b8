"""The retrainer (``sentio train --enable-realtime``) on the built-in market written as a bar
store, one file per session, every symbol, as ``sentio live --bar-store`` writes it.

Oracles: the store's own file names (which sessions are new, which are the newest K: the gate's
shadow sessions), the generator's bars (what the combined table must hold), ``shadow_gate``
called afresh on the published versions (the recorded gate numbers), ``fold_seed`` (the seed),
and each candidate's artifact (its recorded split ranges end before the shadow sessions)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sentio.backtest.gate import shadow_gate
from sentio.backtest.retrainer import (
    Retrainer,
    RetrainerConfig,
    RetrainError,
    combine,
    ny_date,
    stored_sessions,
)
from sentio.backtest.strattest import StrattestConfig, market_tables
from sentio.backtest.walkforward import fold_seed
from sentio.core.hashing import clean, sha256_file
from sentio.data import Bars, read_bars, write_bars
from sentio.data.synth.generate import SynthConfig, generate
from sentio.features.inputs import clock_columns
from sentio.model.artifact import read_meta
from sentio.model.versions import ModelRegistry

pytest.importorskip("torch", reason="the retrainer trains: it needs the train extra")

HISTORY_SESSIONS = 8  # the first model's data
TINY = {"d_model": 16, "nhead": 2, "num_layers": 1, "sequence_length": 8, "epochs": 2,
        "learning_rate": 1e-3, "horizon": 3, "cpu_capability": "native"}  # fmt: skip
POLICY = {"train_window": 4, "shadow_sessions": 2, "retrain_every": 2, "warm_start": True}
SEED = 7


def market_frame(days: int = 12) -> pd.DataFrame:
    """Every symbol of the built-in market (seed 3), one canonical frame."""
    market = generate(SynthConfig(seed=3, days=days))
    return pd.concat([b.frame for b in market.bars.values()], ignore_index=True)


def session_frames(frame: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    """(New York date, that session's rows of every symbol), oldest first."""
    dates = pd.to_datetime(frame["ts"], utc=True).dt.tz_convert("America/New_York")
    day = dates.dt.strftime("%Y-%m-%d")
    return [(d, frame[day == d]) for d in sorted(day.unique())]


def store_session(store: Path, date: str, rows: pd.DataFrame, partial: bool = False) -> Path:
    """One closed session as the live loop writes it (live/loop.py store_session)."""
    rows = rows.assign(segment=0)  # one whole session: one segment
    meta = {"interval_s": 60, "max_gap_min": 5, "source": "sentio live",
            "simulated": {s: True for s in ("QQQ", "TQQQ", "PSQ", "SQQQ")}}  # fmt: skip
    name = f"{date}{'.partial' if partial else ''}.parquet"
    return write_bars(Bars(rows, meta), store / name)


def config_for(root: Path, **policy) -> RetrainerConfig:
    return RetrainerConfig.from_settings(
        {**TINY, **POLICY, "seed": SEED, **policy},
        "test",
        bar_store=root / "store",
        registry=root / "registry",
        work=root / "registry" / "retrainer",
        history=(root / "history.parquet",),
    )


@pytest.fixture(scope="module")
def scenario(tmp_path_factory):
    """First check (history only), then sessions arrive one by one; a restarted retrainer
    takes over half way. Every check's result, the combined table after each retraining and
    the registry's current version before it are kept for the tests."""
    root = tmp_path_factory.mktemp("retrainer")
    frame = market_frame()
    days = session_frames(frame)
    history = pd.concat([rows for _, rows in days[:HISTORY_SESSIONS]])
    write_bars(Bars(history, {"interval_s": 60, "max_gap_min": 5}), root / "history.parquet")
    (root / "store").mkdir()
    registry = ModelRegistry(root / "registry")
    steps = []

    def check(retrainer, note):
        before = registry.current()
        result = retrainer.check()
        snapshot = None
        if result.trained:  # the combined table this retraining used, kept for the oracles
            snapshot = root / f"bars-{result.retrain}.parquet"
            shutil.copy(root / "registry" / "retrainer" / "bars.parquet", snapshot)
        stored = [s.date for s in stored_sessions(root / "store")]
        steps.append({"note": note, "result": result, "before": before, "data": snapshot,
                      "stored": stored})  # fmt: skip

    first = Retrainer(config_for(root), say=lambda line: None)
    check(first, "history only")
    check(first, "nothing new")
    for n in (8, 9):
        store_session(root / "store", *days[n])
        check(first, f"stored session {n}")
    restarted = Retrainer(config_for(root), say=lambda line: None)
    check(restarted, "restarted")
    for n in (10, 11):
        store_session(root / "store", *days[n])
        check(restarted, f"stored session {n}")
    return {"root": root, "steps": steps, "registry": registry, "frame": frame, "days": days}


def test_the_checks_train_when_the_policy_says(scenario):
    actions = [(s["note"], s["result"].action) for s in scenario["steps"]]
    decided = ("promote", "refuse")
    assert [a for _, a in actions[:3]] == ["first", "wait", "wait"]
    assert actions[3][1] in decided  # two new sessions: retrain_every 2
    assert actions[4] == ("restarted", "wait")  # the state survived the restart
    assert actions[5][1] == "wait" and actions[6][1] in decided
    assert [s["result"].retrain for s in scenario["steps"]] == [0, None, None, 1, None, None, 2]
    assert "1 new closed session(s) since" in scenario["steps"][2]["result"].detail


def test_every_decision_is_in_the_registry_history_with_its_numbers(scenario):
    registry = scenario["registry"]
    history = registry.history()
    decisions = [e for e in history if e["action"] in ("promote", "refuse")]
    assert [e["action"] for e in history if e["action"] != "publish"] == [
        e["action"] for e in decisions
    ]
    assert len(decisions) == 3 and decisions[0]["action"] == "promote"
    assert decisions[0]["gate"] is None and "first model" in decisions[0]["reason"]
    trained = [s for s in scenario["steps"] if s["result"].trained]
    for step, entry in zip(trained[1:], decisions[1:], strict=True):
        result = step["result"]
        assert entry["version"] == result.version and entry["action"] == result.action
        gate = entry["gate"]
        # recomputed from scratch: shadow_gate on the published versions, the combined table
        # of that retraining, the policy's shadow sessions and margin (probabilities its own)
        config = StrattestConfig(data=(str(step["data"]),), cache_dir=None, seed=SEED)
        tables, _ = market_tables(config, {"data": {}})
        again = shadow_gate(registry.path(result.version), registry.path(step["before"]),
                            tables, POLICY["shadow_sessions"], config, 0.0)  # fmt: skip
        assert gate == clean(again.to_dict())  # the same numbers, to the last bit
        assert entry["reason"] == again.reason
        assert (entry["action"] == "promote") == again.promote
        # the shadow sessions are the newest two the store holds (the file names say which)
        shadow = [step["stored"][-2], step["stored"][-1]]
        assert entry["retrain"]["shadow"] == shadow
        qqq = tables["QQQ"]
        session = clock_columns(qqq["ts"].to_numpy(np.int64))[1]
        dates = qqq["ts"].map(ny_date).to_numpy()
        assert gate["sessions"] == [int(session[dates == d][0]) for d in shadow]
    current = registry.current()
    promoted = [e["version"] for e in decisions if e["action"] == "promote"]
    assert current == promoted[-1]  # a refusal never moved the pointer


def test_the_candidate_never_trained_on_the_shadow_sessions(scenario):
    registry = scenario["registry"]
    for step in (s for s in scenario["steps"] if s["result"].trained):
        result = step["result"]
        meta = read_meta(registry.path(result.version))
        decided = ("promote", "refuse")
        entry = next(e for e in registry.history()
                     if e["action"] in decided and e["version"] == result.version)  # fmt: skip
        shadow_first = entry["retrain"]["shadow"][0]
        splits = meta["data"]["splits"]
        for part in ("train", "validation"):
            assert ny_date(splits[part]["last_ts"]) < shadow_first
        assert ny_date(splits["test"]["first_ts"]) >= shadow_first
        assert ny_date(splits["train"]["first_ts"]) >= entry["retrain"]["train"][0]
        assert meta["seed"] == fold_seed(SEED, result.retrain)
        if step["before"] is not None:  # warm_start: from the version current at the time
            warm = meta["warm_start"]
            before = registry.path(step["before"])
            assert warm["manifest_sha256"] == sha256_file(before / "manifest.json")


def test_the_combined_table_is_the_history_and_the_store(scenario):
    """QQQ of the combined table = the generator's QQQ up to the newest stored session; the
    simulated siblings are left to the gate (simulated again from QQQ, labelled)."""
    last = [s for s in scenario["steps"] if s["result"].trained][-1]
    bars = read_bars(last["data"])  # read_bars checks every bar and segment rule
    assert bars.symbols == ["QQQ"]
    frame = scenario["frame"]
    want = frame[(frame["symbol"] == "QQQ")
                 & (frame["ts"].map(ny_date) <= last["stored"][-1])]  # fmt: skip
    np.testing.assert_array_equal(bars.of("QQQ")["ts"], want["ts"])
    np.testing.assert_array_equal(bars.of("QQQ")["close"], want["close"])


def test_the_log_and_state(scenario):
    work = scenario["root"] / "registry" / "retrainer"
    state = json.loads((work / "state.json").read_text())
    assert state == {"retrains": 3, "last_session": scenario["days"][11][0]}
    lines = [json.loads(line) for line in (work / "retrainer.jsonl").read_text().splitlines()]
    assert [line["retrain"] for line in lines] == [0, 1, 2]
    assert all(line["config"]["policy"]["train_window"] == 4 for line in lines)
    assert not (work / "candidates" / "0001").exists()  # published, so not kept twice


def test_a_failed_training_keeps_the_incumbent_and_waits(tmp_path):
    """A window of one session leaves none to train on after validation: the training fails,
    one line says why, nothing is published, and the next check waits for new sessions."""
    frame = market_frame(days=8)
    write_bars(Bars(frame, {"interval_s": 60, "max_gap_min": 5}), tmp_path / "history.parquet")
    lines = []
    retrainer = Retrainer(config_for(tmp_path, train_window=1), say=lines.append)
    result = retrainer.check()
    assert result.action == "failed" and "--train-window" in result.detail
    assert "\n" not in result.line()
    assert ModelRegistry(tmp_path / "registry").current() is None
    assert retrainer.check().action == "wait"


def test_a_second_retrainer_on_the_same_work_folder_is_refused(tmp_path):
    frame = market_frame(days=2)
    write_bars(Bars(frame, {"interval_s": 60, "max_gap_min": 5}), tmp_path / "history.parquet")
    one = Retrainer(config_for(tmp_path), say=lambda line: None)
    two = Retrainer(config_for(tmp_path), say=lambda line: None)
    with one.held(), pytest.raises(RetrainError, match="another retrainer is running"):
        two.check()


def test_the_store_listing_and_partial_sessions(tmp_path):
    """Closed sessions from the file names: a temporary file being written is not one; a
    restart-cut ``.partial`` session is one, and its bars are used (the missing stretch before
    them is a new segment, numbered again by the combination)."""
    days = session_frames(market_frame(days=4))
    store = tmp_path / "store"
    store.mkdir()
    store_session(store, *days[0])
    date, rows = days[1]
    cut = rows[rows["ts"] >= rows["ts"].min() + 120 * 60 * 10**9]  # the loop restarted at 11:30
    store_session(store, date, cut, partial=True)
    (store / f".{days[2][0]}.parquet.abc.tmp").write_bytes(b"half")
    (store / "notes.txt").write_text("not a session")
    listed = stored_sessions(store)
    assert [(s.date, s.partial) for s in listed] == [(days[0][0], False), (date, True)]
    out, skipped = combine([], listed, tmp_path / "bars.parquet")
    qqq = read_bars(out).of("QQQ")  # its segments pass the import's rule
    assert skipped == [] and len(qqq) == 390 + 270
    assert qqq["segment"].tolist() == [0] * 390 + [1] * 270


def test_a_bar_in_the_history_and_the_store_comes_from_the_store(tmp_path):
    days = session_frames(market_frame(days=3))
    history = pd.concat([days[0][1], days[1][1]])
    store = tmp_path / "store"
    store.mkdir()
    changed = days[1][1].copy()
    changed["volume"] += 1.0  # the live loop's record of that session
    store_session(store, days[1][0], changed)
    (store / f"{days[2][0]}.parquet").write_bytes(b"not parquet")  # unreadable: left out
    out, skipped = combine([Bars(history, {"interval_s": 60})], stored_sessions(store),
                           tmp_path / "bars.parquet")  # fmt: skip
    qqq = read_bars(out).of("QQQ")
    assert len(skipped) == 1 and skipped[0].startswith(f"{days[2][0]}.parquet")
    want = pd.concat([days[0][1], changed])
    want = want[want["symbol"] == "QQQ"]
    np.testing.assert_array_equal(qqq["volume"], want["volume"])


# -- sentio train --enable-realtime: every bad input is one line (the real console script) ----

BAD_POLICIES = {
    "unknown.toml": ("train_window = 8\nwindow = 3\n", ["unknown key 'window'", "unknown.toml"]),
    "type.toml": ('train_window = "8"\n', ["train_window", "valid integer"]),
    "bool.json": ('{"epochs": true}', ["epochs", "valid integer"]),
    "range.toml": ("shadow_sessions = 0\n", ["shadow_sessions", "greater than or equal to 1"]),
    "preset.toml": ('preset = "huge"\n', ["preset", "quick, default"]),
    "spec.toml": ('feature_spec = "nope"\n', ["spec.toml", "nope"]),
    "twice.json": ('{"seed": 1, "seed": 2}', ["twice.json", "'seed'", "twice"]),
    "broken.toml": ("train_window = \n", ["broken.toml", "not valid TOML"]),
    "list.json": ("[1, 2]", ["list.json", "table of settings"]),
}
BAD_FLAGS = [
    (["--policy", "{tmp}/p.toml"], ["--policy", "--enable-realtime only"]),
    (["--once"], ["--once", "--enable-realtime only"]),
    (["--enable-realtime", "--output", "x", "--bars", "s", "--registry", "r"], ["--output"]),
    (["--enable-realtime", "--resume", "x", "--bars", "s", "--registry", "r"], ["--resume"]),
    (["--enable-realtime", "--quick", "--bars", "s", "--registry", "r"], ["--quick"]),
    (["--enable-realtime", "--data", "builtin", "--bars", "s", "--registry", "r"], ["--data"]),
    (["--enable-realtime", "--registry", "r"], ["--bars", "required"]),
    (["--enable-realtime", "--bars", "s"], ["--registry", "required"]),
    (["--enable-realtime", "--bars", "s", "--registry", "r", "--poll", "0"], ["--poll"]),
    (["--enable-realtime", "--bars", "s", "--registry", "r", "--max-retrains", "0"],
     ["--max-retrains"]),
    (["--enable-realtime", "--bars", "s", "--registry", "r", "--preset", "big"], ["--preset"]),
    (["--enable-realtime", "--bars", "{tmp}/file", "--registry", "r", "--once"],
     ["--bars", "is a file"]),
    (["--enable-realtime", "--bars", "s", "--registry", "{tmp}/file", "--once"],
     ["--registry", "is a file"]),
    (["--enable-realtime", "--bars", "s", "--registry", "r", "--history", "{tmp}/none.parquet",
      "--once"], ["none.parquet", "not found"]),
    (["--enable-realtime", "--bars", "s", "--registry", "r", "--history", "{tmp}/file",
      "--once"], ["file", "Parquet"]),
]  # fmt: skip


@pytest.mark.parametrize("name", sorted(BAD_POLICIES))
def test_a_bad_policy_file_is_one_line(tmp_path, name):
    from tests.cli.badinput import assert_refused, run_script

    text, says = BAD_POLICIES[name]
    (tmp_path / name).write_text(text)
    args = ["train", "--enable-realtime", "--policy", str(tmp_path / name), "--bars",
            str(tmp_path / "s"), "--registry", str(tmp_path / "r"), "--once"]  # fmt: skip
    assert_refused(run_script("sentio", *args, cwd=tmp_path), "--policy", *says)
    assert not (tmp_path / "r").exists()  # refused before anything was written


@pytest.mark.parametrize("args, says", BAD_FLAGS, ids=[" ".join(a) for a, _ in BAD_FLAGS])
def test_a_bad_flag_is_one_line(tmp_path, args, says):
    from tests.cli.badinput import assert_refused, run_script

    (tmp_path / "p.toml").write_text("train_window = 8\n")
    (tmp_path / "file").write_text("not a folder, not Parquet")
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    assert_refused(run_script("sentio", "train", *args, cwd=tmp_path), *says)
    assert not (tmp_path / "r").exists()


def test_the_command_once_then_until_sigterm(tmp_path):
    """``--once`` trains the first model from the history; the long-lived loop then waits for
    sessions (polling) and ends cleanly on SIGTERM: exit 0, its last line says so."""
    import signal
    import subprocess

    from tests.cli.badinput import run_script, script

    write_bars(Bars(market_frame(days=8), {"interval_s": 60, "max_gap_min": 5}),
               tmp_path / "history.parquet")  # fmt: skip
    (tmp_path / "policy.json").write_text(json.dumps({**TINY, **POLICY, "cpu_capability": "auto"}))
    args = ["train", "--enable-realtime", "--policy", str(tmp_path / "policy.json"), "--bars",
            str(tmp_path / "store"), "--registry", str(tmp_path / "registry"), "--history",
            str(tmp_path / "history.parquet")]  # fmt: skip
    once = run_script("sentio", *args, "--once", "--epochs", "1")
    assert once.returncode == 0, once.stderr
    assert once.stdout.startswith("retrain 0: first: promoted 0001-"), once.stdout
    registry = ModelRegistry(tmp_path / "registry")
    meta = read_meta(registry.path(registry.current()))
    assert meta["train_config"]["epochs"] == 1  # the flag won over the policy file's 2
    loop = subprocess.Popen([script("sentio"), *args, "--poll", "0.05"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip
    first = loop.stdout.readline()
    assert first.startswith("retrainer: wait: 0 new closed session(s) since"), first
    loop.send_signal(signal.SIGTERM)
    out, err = loop.communicate(timeout=60)
    assert loop.returncode == 0 and err == "", err
    assert out.splitlines()[-1] == "retrainer: SIGTERM: stopped after 0 training(s)"
