"""Issue 14's "done when" for live updates: a replay of real QQQ bars through ``sentio live
--registry DIR --bar-store STORE`` while ``sentio train --enable-realtime`` runs as its own
process gets gated swaps, trades through each, and its audit verifies; and the live loop's
per-bar latency while a retraining runs.

Both are real processes talking only through the files (the bar store, the registry), as in
production. The replay is throttled (a weekday of exchange time in a few seconds) so that the
retrainer, a tiny network that trains in about a second, has sessions to swap into: five
retrainings can land before the replay ends and two must, a wide margin on a loaded machine.
Durations are printed (``pytest -s``), never asserted: speed lives in bench/."""

from __future__ import annotations

import json
import re
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sentio.data import Bars, import_files, write_bars
from sentio.model.versions import ModelRegistry
from tests.cli.badinput import script
from tests.conftest import real_file
from tests.live.conftest import audit_events

pytest.importorskip("torch", reason="the retrainer trains: it needs the train extra")

HISTORY = 12  # sessions of the first model's data (train 8 + shadow 2, the rest warm-up)
NEW = 6  # sessions the replay brings after the history
DAY_S = 1.5  # wall seconds per 24 hours of exchange time in the replay
POLICY = """\
train_window = 8          # sessions a candidate trains on
shadow_sessions = 2       # newest sessions the gate compares on (never trained on)
retrain_every = 1         # a candidate after every closed session
gate_margin = 1.0         # log loss a candidate may lose and still be promoted: the test wants
                          # swaps; the gate still runs and its numbers are recorded
d_model = 16
nhead = 2
num_layers = 1
sequence_length = 8
epochs = 2
learning_rate = 1e-3
horizon = 3
seed = 7
"""


class Lines:
    """A process's output lines as they come, each with the monotonic time it arrived."""

    def __init__(self, process: subprocess.Popen) -> None:
        self.lines: list[tuple[float, str]] = []
        self.thread = threading.Thread(target=self._read, args=(process.stdout,), daemon=True)
        self.thread.start()

    def _read(self, stream) -> None:
        for line in stream:
            self.lines.append((time.monotonic(), line.rstrip("\n")))

    def wait_for(self, text: str, timeout: float) -> None:
        end = time.monotonic() + timeout
        while not any(text in line for _, line in self.lines):
            if time.monotonic() > end:
                raise AssertionError(f"no line with {text!r} in {timeout} s: {self.lines}")
            time.sleep(0.05)


def new_york_dates(ts: pd.Series) -> np.ndarray:
    return (
        pd.to_datetime(ts, utc=True)
        .dt.tz_convert("America/New_York")
        .dt.strftime("%Y-%m-%d")
        .to_numpy()
    )


@pytest.fixture(scope="module")
def first(tmp_path_factory):
    """The real QQQ file imported; the history (its first sessions) and the replay (history
    and the sessions after it) as canonical tables; a registry whose first model the retrainer
    trained on the history alone (``--once``)."""
    root = tmp_path_factory.mktemp("realtime")
    bars, _ = import_files([real_file("ibkr/QQQ_1min.csv")])
    frame = bars.frame
    day = new_york_dates(frame["ts"])
    days = sorted(set(day))
    write_bars(Bars(frame[day < days[HISTORY]], bars.meta), root / "history.parquet")
    write_bars(Bars(frame[day < days[HISTORY + NEW]], bars.meta), root / "replay.parquet")
    (root / "policy.toml").write_text(POLICY)
    started = time.monotonic()
    done = subprocess.run(
        [script("sentio"), *retrainer_args(root, root / "registry"), "--once"],
        capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    seconds = time.monotonic() - started
    assert done.returncode == 0, done.stderr
    assert "first: promoted" in done.stdout, done.stdout
    print(f"\nfirst model (--once, a fresh process): {seconds:.1f} s")
    return root


def retrainer_args(root: Path, registry: Path, *more: str) -> list[str]:
    return ["train", "--enable-realtime", "--policy", str(root / "policy.toml"),
            "--bars", str(registry.parent / "store"), "--registry", str(registry),
            "--history", str(root / "history.parquet"), *more]  # fmt: skip


def start_retrainer(root: Path, registry: Path) -> tuple[subprocess.Popen, Lines]:
    process = subprocess.Popen(
        [script("sentio"), *retrainer_args(root, registry, "--poll", "0.1")],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    lines = Lines(process)
    lines.wait_for("retrainer: wait", timeout=120)  # up, state read, polling
    return process, lines


def stop_retrainer(process: subprocess.Popen, lines: Lines) -> None:
    """SIGTERM: the step under way finishes, then the loop ends with exit status 0."""
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=120) == 0, lines.lines
    lines.thread.join(timeout=10)
    assert "stopped after" in lines.lines[-1][1], lines.lines
    assert not any("Traceback" in line for _, line in lines.lines)


def speed() -> str:
    return f"{86_400 / DAY_S:g}"


def test_a_replay_swaps_to_gated_models_while_trading(first, tmp_path):
    work = tmp_path / "run"
    work.mkdir()
    shutil.copytree(first / "registry", work / "registry")
    registry = ModelRegistry(work / "registry")
    started = time.monotonic()
    retrainer, lines = start_retrainer(first, registry.folder)
    feed = f"replay:{first / 'replay.parquet'}@{speed()}"
    live = subprocess.run(
        [script("sentio"), "live", "--registry", str(registry.folder),
         "--bar-store", str(work / "store"), "--feed", feed,
         "--audit", str(work / "live.db"), "--state", str(work / "state"), "--json"],
        capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    replay_s = time.monotonic() - started
    stop_retrainer(retrainer, lines)
    assert live.returncode == 0, live.stderr
    final = json.loads(live.stdout.splitlines()[-1])["final"]
    verify = subprocess.run([script("saudit"), "verify", "--db", str(work / "live.db")],
                            capture_output=True, text=True, timeout=300)  # fmt: skip
    total_s = time.monotonic() - started
    retrains = [line for _, line in lines.lines if line.startswith("retrain ")]
    swapped = sum(p["ok"] for _, _, p in audit_events(work / "live.db", "swap"))
    print(f"\nreplay with a retrainer: {replay_s:.1f} s, {final['bars']} bars; "
          f"{len(retrains)} retrainings, {swapped} swaps; "
          f"with saudit verify {total_s:.1f} s")  # fmt: skip
    for line in retrains:
        print("  ", line[:160])

    assert verify.returncode == 0, verify.stdout + verify.stderr
    promoted = {e["version"]: e["gate"] for e in registry.history()
                if e["action"] == "promote" and e["gate"]}  # fmt: skip
    assert len(promoted) >= 2  # gated promotions, every number recorded
    for gate in promoted.values():
        assert gate["promote"] and gate["samples"] > 0 and gate["margin"] == 1.0
        for side in ("candidate", "incumbent"):
            assert set(gate[side]) == {"log_loss", "auc", "auc_ci95", "net_return_pct"}
    swaps = [(t, p) for t, _, p in audit_events(work / "live.db", "swap")]
    gated = [(t, p) for t, p in swaps if p["ok"] and p["gate"]]
    assert len(gated) >= 2, swaps
    bars = [t for t, _, _ in audit_events(work / "live.db", "bar")]
    assert len(bars) == final["bars"]
    for t, p in gated:
        assert p["gate"] == promoted[p["version"]]  # the swap carries the registry's numbers
        assert p["from_manifest"] != p["to_manifest"]
        assert t in bars and bars[-1] > t  # decided by the new model, and trading went on
    assert [p["ok"] for _, p in swaps] == [True] * len(swaps)


def test_the_loop_is_not_blocked_by_a_retraining(first, tmp_path):
    """The live loop (in this process, profiled as bench/live.py does: arrival -> orders sent)
    replays while the retrainer process trains after each stored session. Each training lasts
    the time its line reports and ends when the line arrives; no bar decided meanwhile may have
    waited that long. A session's first bar is counted apart: it writes the session before to
    the bar store (the loop's own work, whether a retrainer runs or not)."""
    from sentio.backtest.strattest import StrattestConfig
    from sentio.live.config import LiveConfig
    from sentio.live.loop import LiveLoop

    work = tmp_path / "run"
    work.mkdir()
    shutil.copytree(first / "registry", work / "registry")
    retrainer, lines = start_retrainer(first, work / "registry")
    decided: list[tuple[float, str]] = []  # (monotonic, ts) per decided minute
    config = LiveConfig(
        trading=StrattestConfig(cache_dir=None),
        feed=f"replay:{first / 'replay.parquet'}@{speed()}",
        registry=work / "registry",
        bar_store=work / "store",
    )
    loop = LiveLoop(config, profile=True,
                    on_bar=lambda s: decided.append((time.monotonic(), s["ts"])))  # fmt: skip
    try:
        loop.run()
    finally:
        stop_retrainer(retrainer, lines)
    latency = np.array(loop.profile)[:, 4]  # arrival -> orders sent, seconds
    assert len(latency) == len(decided)
    at = np.array([t for t, _ in decided])
    day = new_york_dates(pd.Series([ts for _, ts in decided]))
    opens = np.r_[False, day[1:] != day[:-1]]  # each writes the session before to the store
    spans = []  # (start, end) of each training: its line's time less the time it reports
    for end, line in lines.lines:
        took = re.search(r"^retrain \d+: .* \(([0-9.]+) s\)$", line)
        if took:
            spans.append((end - float(took.group(1)), end))
    during = np.zeros(len(at), dtype=bool)
    for begin, end in spans:
        inside = (at > begin) & (at < end) & ~opens  # a first bar's store write is the loop's
        during |= inside
        if inside.any():  # no bar waited for the training it overlapped
            assert latency[inside].max() < end - begin, (latency[inside].max(), end - begin)
    assert during.sum() >= 10 and (~during).sum() >= 10
    swapped = loop.counts.get("swaps", 0)
    print(f"\n{len(spans)} retrainings of {np.mean([e - b for b, e in spans]):.2f} s on average "
          f"each, {swapped} swaps; arrival -> orders sent:")  # fmt: skip
    rows_of = {"during a retraining": during, "without one": ~during & ~opens,
               "a session's first bar": opens}  # fmt: skip
    for name, rows in rows_of.items():
        ms = latency[rows] * 1e3
        print(f"  {name:22s} {rows.sum():5d} bars  p50 {np.percentile(ms, 50):7.3f} ms  "
              f"p99 {np.percentile(ms, 99):7.3f} ms  max {ms.max():7.3f} ms")  # fmt: skip
