"""A live run killed with SIGKILL at random bars and started again ends as an uninterrupted
run: the same fills, equity and metrics, no client order id sent twice, one audit chain that
verifies (with a ``restart`` event per kill)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

import numpy as np
import pytest

from sentio.audit.store import AuditStore
from sentio.audit.verify import verify_run
from sentio.backtest.strattest import StrattestConfig
from sentio.live.config import LiveConfig
from sentio.live.loop import LiveLoop
from tests.cli.badinput import run_script, script
from tests.live.conftest import audit_events


def live_args(model: Path, folder: Path) -> list[str]:
    return [
        "live",
        "--model", str(model),
        "--feed", "replay:builtin@max",
        "--rule", "adaptive",
        "--audit", str(folder / "audit.db"),
        "--state", str(folder / "state"),
        "--json",
    ]  # fmt: skip


def kill_after(args: list[str], lines: int, cwd: Path) -> bool:
    """Start ``sentio`` and SIGKILL it once it printed ``lines`` bar lines; False if it ended
    first (then it ran to completion)."""
    proc = subprocess.Popen(
        [script("sentio"), *args], cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    seen = 0
    for line in proc.stdout:
        if line.startswith('{"ts"'):
            seen += 1
        if seen >= lines:
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=60)
            return True
    proc.wait(timeout=60)
    assert proc.returncode == 0, proc.stderr.read()
    return False


def fills_of(db: Path) -> list[tuple]:
    return [
        (t, f["symbol"], f["side"], f["qty"], f["price"], f["fees"])
        for t, _, f in audit_events(db, "fill")
    ]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory, tiny_artifact) -> tuple[dict, list[tuple]]:
    folder = tmp_path_factory.mktemp("whole")
    done = run_script("sentio", *live_args(tiny_artifact, folder), cwd=folder)
    assert done.returncode == 0, done.stderr
    final = json.loads(done.stdout.strip().splitlines()[-1])["final"]
    assert final["fills"] > 10  # the run trades, so a kill can hit between orders and fills
    return final, fills_of(folder / "audit.db")


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_sigkill_at_random_bars_then_restart_equals_an_uninterrupted_run(
    tmp_path, tiny_artifact, uninterrupted, seed
):
    whole, whole_fills = uninterrupted
    rng = np.random.default_rng(seed)
    args = live_args(tiny_artifact, tmp_path)
    kills = 0
    for _ in range(3):  # up to three kills, each at a random bar of what is left
        if not kill_after(args, int(rng.integers(1, 200)), tmp_path):
            break
        kills += 1
    done = run_script("sentio", *args, cwd=tmp_path)  # the last start runs to the end
    assert done.returncode == 0, done.stderr
    final = json.loads(done.stdout.strip().splitlines()[-1])["final"]
    assert kills >= 1
    db = tmp_path / "audit.db"
    assert fills_of(db) == whole_fills
    assert final["equity"] == pytest.approx(whole["equity"], abs=0.005)
    assert final["metrics"] == whole["metrics"]
    assert final["counts"].get("restarts") == kills
    client_ids = [o["client_id"] for _, _, o in audit_events(db, "order")]
    assert len(client_ids) == len(set(client_ids)) > 0
    assert len(audit_events(db, "restart")) == kills
    verify = run_script("saudit", "verify", "--db", str(db), cwd=tmp_path)
    assert verify.returncode == 0, verify.stdout + verify.stderr


def test_a_kill_between_the_state_and_the_audit_is_repaired(tmp_path, tiny_artifact):
    """The state is written before the audit events of its bar: a loop that dies between the
    two leaves the events in the state, and the restart appends them (nothing lost, nothing
    twice)."""
    config = LiveConfig(
        trading=StrattestConfig(model=tiny_artifact, cache_dir=None), feed="replay:builtin"
    )

    def run(folder: Path, die_at: int | None) -> dict | None:
        folder.mkdir(exist_ok=True)
        store = AuditStore(folder / "audit.db")
        loop = LiveLoop(config, state_dir=folder / "state", store=store)
        if die_at is not None:
            calls, append = [0], store.append

            def dying(run_id, events):
                calls[0] += 1
                if calls[0] == die_at:
                    raise KeyboardInterrupt("killed between the state and the audit")
                append(run_id, events)

            store.append = dying
        try:
            return loop.run()
        except KeyboardInterrupt:
            return None
        finally:
            store.close()

    whole = run(tmp_path / "whole", None)
    folder = tmp_path / "killed"
    assert run(folder, die_at=40) is None
    state = json.loads((folder / "state" / "state.json").read_text())
    assert state["audit"]["pending"]  # the events the audit never got
    resumed = run(folder, None)
    assert resumed["equity"] == whole["equity"] and resumed["metrics"] == whole["metrics"]
    store = AuditStore(folder / "audit.db", create=False)
    try:
        verdict = verify_run(store, resumed["run_id"], stream=False)
    finally:
        store.close()
    assert verdict.ok, verdict.problem
    assert fills_of(folder / "audit.db") == fills_of(tmp_path / "whole" / "audit.db")


def test_a_restart_with_another_model_is_refused_unless_asked(
    tmp_path, tiny_artifact, retrained_artifact
):
    args = live_args(tiny_artifact, tmp_path)
    assert kill_after(args, 5, tmp_path)
    moved = [*args]  # the same recipe, another seed: another model
    moved[moved.index("--model") + 1] = str(retrained_artifact)
    done = run_script("sentio", *moved, cwd=tmp_path)
    assert done.returncode == 2 and "--allow-model-change" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
    assert os.path.exists(tmp_path / "state" / "state.json")
