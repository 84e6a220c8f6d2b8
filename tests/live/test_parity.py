"""A replay through ``sentio live`` with the paper broker is strattest, to the cent.

The oracle is strattest itself: a vectorised run over the whole series (batch probabilities,
``run_strategy`` over each block, the numba ``simulate`` loop), against the live loop that
takes one bar at a time from the feed (stream probabilities, ``decide`` per bar, orders sent
to the paper broker, fills at the next bar's open). Both record an audit; both must verify.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from sentio.audit.record import audited_strattest
from sentio.audit.store import AuditStore
from sentio.audit.verify import verify_run
from sentio.backtest.strattest import StrattestConfig, historical_plan
from tests.cli.badinput import run_script
from tests.conftest import real_qqq_config
from tests.live.conftest import audit_events

CENT = 0.005


def live_run(tmp: Path, *args: str) -> tuple[dict, Path]:
    """``sentio live ... --json`` with an audit; (the final JSON, the audit file)."""
    db = tmp / "live.db"
    done = run_script("sentio", "live", *args, "--audit", str(db), "--json", cwd=tmp)
    assert done.returncode == 0, done.stderr
    final = json.loads(done.stdout.strip().splitlines()[-1])["final"]
    return final, db


def strattest_run(tmp: Path, config: StrattestConfig):
    store = AuditStore(tmp / "strattest.db")
    try:
        result, run_id = audited_strattest(historical_plan(config), store)
        verdict = verify_run(store, run_id, full=True)
    finally:
        store.close()
    assert verdict.ok, verdict.problem
    return result


def assert_same(result, final: dict, db: Path) -> None:
    """Orders, fills, per-bar equity and every metric of the live run equal strattest's."""
    orders = audit_events(db, "order")
    assert [
        (t, o["symbol"], o["qty"] if o["side"] == "buy" else -o["qty"], o["target"])
        for t, _, o in orders
    ] == [(int(r.ts), r.symbol, int(r.qty), int(r.target)) for r in result.orders.itertuples()]
    fills = audit_events(db, "fill")
    assert len(fills) == len(result.fills) > 0
    for (t, _, f), r in zip(fills, result.fills.itertuples(), strict=True):
        assert (t, f["symbol"], f["qty"]) == (int(r.ts), r.symbol, abs(int(r.qty)))
        assert abs(f["price"] - r.price) < 1e-9 and abs(f["fees"] - r.fees) < CENT
        assert abs(f["cash_after"] - r.cash_after) < CENT
    bars = audit_events(db, "bar")
    assert [t for t, _, _ in bars] == result.per_bar["ts"].tolist()
    equity = np.array([b["equity"] for _, _, b in bars])
    assert np.max(np.abs(equity - result.per_bar["equity"].to_numpy())) < CENT
    p_live = np.array([np.nan if b["p_stream"] is None else b["p_stream"] for _, _, b in bars])
    np.testing.assert_array_equal(p_live, result.per_bar["probability"].to_numpy())
    expected = result.summary["strategy"].to_dict()
    for name, value in expected.items():
        got = final["metrics"][name]
        if isinstance(value, tuple):
            assert got == pytest.approx(list(value), rel=1e-12, abs=1e-12), name
        elif value is None or value != value:
            assert got is None, name
        else:
            assert got == pytest.approx(value, rel=1e-12, abs=CENT if name == "fees" else 1e-12)
    assert final["fills"] == len(result.fills) and final["blocks"] == result.blocks_run


def test_a_replay_of_a_real_file_equals_strattest_to_the_cent(tmp_path, tiny_artifact):
    config = real_qqq_config(tmp_path, tiny_artifact)  # the real IBKR QQQ file, adaptive rule
    result = strattest_run(tmp_path, config)
    final, db = live_run(
        tmp_path,
        "--model",
        str(tiny_artifact),
        "--feed",
        f"replay:{config.data[0]}@max",
        "--blocks",
        str(config.blocks),
        "--rule",
        "adaptive",
    )
    assert_same(result, final, db)
    verify = run_script("saudit", "verify", "--db", str(db), "--full", cwd=tmp_path)
    assert verify.returncode == 0, verify.stdout + verify.stderr


@pytest.mark.parametrize("fill", ["next-open", "close"])
def test_a_replay_of_the_built_in_market_equals_strattest(tmp_path, tiny_artifact, fill):
    config = StrattestConfig(
        model=tiny_artifact, blocks=3, block_size=150, fill=fill, cache_dir=None
    )
    result = strattest_run(tmp_path, config)
    final, db = live_run(
        tmp_path,
        "--model",
        str(tiny_artifact),
        "--feed",
        "replay:builtin",
        "--blocks",
        "3",
        "--block-size",
        "150",
        "--fill",
        fill,
    )
    assert_same(result, final, db)
    verify = run_script("saudit", "verify", "--db", str(db), cwd=tmp_path)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    for view in ("list", "signal-flow", "trades", "positions", "summary"):  # read like any run
        shown = run_script("saudit", view, "--db", str(db), "--json", cwd=tmp_path)
        assert shown.returncode == 0 and shown.stdout.strip(), (view, shown.stderr)
    summary = json.loads(run_script("saudit", "summary", "--db", str(db), "--json").stdout)
    assert summary["parity"]["bars"] == len(result.per_bar)  # the session checks saw every bar
    assert summary["parity"]["bars_differ"] == 0
