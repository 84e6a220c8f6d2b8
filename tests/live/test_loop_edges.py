"""Edges of a run's life found in review: a block replay that ended is not started again from
its state (its blocks would restart mid-way), and a loop killed between its exit and its
run_end only ends the run when started again (it never trades after its own exit)."""

from __future__ import annotations

import json

from sentio.audit.store import AuditStore
from sentio.audit.verify import verify_run
from sentio.backtest.strattest import StrattestConfig
from sentio.live.config import LiveConfig
from sentio.live.loop import LiveLoop
from tests.cli.badinput import assert_refused, run_script
from tests.live.conftest import audit_events


def test_an_ended_block_replay_is_not_started_again_from_its_state(tmp_path, tiny_artifact):
    args = ["live", "--model", str(tiny_artifact), "--feed", "replay:builtin", "--blocks", "2",
            "--block-size", "100", "--state", str(tmp_path / "st")]  # fmt: skip
    assert run_script("sentio", *args, cwd=tmp_path).returncode == 0
    before = (tmp_path / "st" / "state.json").read_bytes()
    assert_refused(run_script("sentio", *args, cwd=tmp_path), "block replay", "new --state")
    assert (tmp_path / "st" / "state.json").read_bytes() == before


def test_a_kill_between_the_exit_and_run_end_only_ends_the_run(tmp_path, tiny_artifact):
    config = LiveConfig(
        trading=StrattestConfig(model=tiny_artifact, cache_dir=None), feed="replay:builtin"
    )
    store = AuditStore(tmp_path / "audit.db")
    loop = LiveLoop(config, state_dir=tmp_path / "state", store=store)

    def killed(*args, **kwargs):
        raise KeyboardInterrupt("killed after the exit was committed")

    loop.end_run = killed
    try:
        loop.run()
    except KeyboardInterrupt:
        pass
    finally:
        store.close()
    saved = json.loads((tmp_path / "state" / "state.json").read_text())
    assert saved["exiting"] and not saved["ended"]
    store = AuditStore(tmp_path / "audit.db")
    try:
        result = LiveLoop(config, state_dir=tmp_path / "state", store=store).run()
        verdict = verify_run(store, result["run_id"], stream=False)
    finally:
        store.close()
    assert verdict.ok, verdict.problem
    kinds = [k for _, k, _ in audit_events(tmp_path / "audit.db")]
    assert kinds.count("exit") == 1 and kinds.count("bar") == saved["ledger"]["bars"]
    assert kinds[-3:] == ["block_end", "restart", "run_end"]
