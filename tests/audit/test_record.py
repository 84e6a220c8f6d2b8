"""strattest --audit end to end (in one process): the replay from fills reproduces
strattest's own figures on a real file, identical runs share a chain head, and the stream
path agrees with the sequence path on every block bar."""

from __future__ import annotations

import json

import numpy as np
import pytest

from sentio.audit import AuditError, AuditStore, audited_strattest, verify_run
from sentio.audit.read import flow, load
from sentio.backtest.strattest import StrattestConfig, historical_plan
from sentio.core.environment import environment
from sentio.strategy import StrategyConfig
from tests.conftest import real_qqq_config

pytest.importorskip("torch", reason="training the test artifact needs the train extra")


@pytest.fixture(scope="module")
def real_run(tmp_path_factory, tiny_artifact):
    """5 audited blocks of the real IBKR QQQ 1-minute file."""
    tmp = tmp_path_factory.mktemp("audit")
    config = real_qqq_config(tmp, tiny_artifact)
    store = AuditStore(tmp / "audit.db")
    result, run_id = audited_strattest(historical_plan(config), store)
    return store, result, run_id


def test_replayed_metrics_equal_strattest_to_the_cent_on_a_real_file(real_run):
    store, result, run_id = real_run
    verdict = verify_run(store, run_id)
    assert verdict.ok, verdict.problem
    assert result.blocks_run == 5 and len(result.fills) >= 20
    checked = verdict.checked
    assert checked["bars"] == len(result.per_bar) == 5 * 480
    assert checked["fills"] == len(result.fills)
    # the replay (cash, shares and equity rebuilt from the fills and closes, then the
    # metrics code) against what strattest itself returned, not against the recording
    replayed, reported = checked["metrics"], result.summary["strategy"].to_dict()
    for name, value in reported.items():
        got = replayed[name]
        if isinstance(value, tuple):
            assert np.allclose(got, value, rtol=0, atol=5e-3), name
        elif np.isnan(value):
            assert np.isnan(got), name
        else:
            assert abs(got - value) < 5e-3, (name, got, value)
    # every block's final equity, in dollars, to the cent
    ends = [e.payload["equity_end"] for e in load(store, run_id) if e.kind == "block_end"]
    expected = 1e5 * (1 + result.per_block["return_pct"].to_numpy() / 100)
    assert np.allclose(ends, expected, rtol=0, atol=5e-3)


def test_both_inference_paths_agree_on_every_block_bar_of_a_real_file(real_run):
    store, result, run_id = real_run
    rows = flow(load(store, run_id))
    p_seq = np.array([np.nan if r["p_seq"] is None else r["p_seq"] for r in rows])
    p_stream = np.array([np.nan if r["p_stream"] is None else r["p_stream"] for r in rows])
    assert len(rows) == 2400 and not np.isnan(p_seq).any()
    assert np.array_equal(p_seq, result.per_bar["probability"].to_numpy())
    assert np.array_equal(p_stream, p_seq)  # bit for bit
    assert all(r["diff"] == 0.0 for r in rows)
    # the recorded signal is the side of the exposure strattest traded
    sides = np.sign(result.per_bar["exposure"].to_numpy())
    assert [r["signal"] for r in rows] == [
        {1.0: "long", -1.0: "short", 0.0: "flat"}[s] for s in sides
    ]


def test_run_start_names_what_the_run_depends_on(real_run):
    store, result, run_id = real_run
    start = load(store, run_id)[0]
    assert start.kind == "run_start" and start.seq == 0
    payload = start.payload
    assert payload["model"]["manifest_hash"] and payload["model"]["spec_hash"].startswith("sha256:")
    (file,) = payload["data"]["files"]
    assert len(file["sha256"]) == 64
    assert payload["seed"] == 7 and payload["versions"]["onnxruntime"]
    assert json.loads(result.config.model_dump_json()) == payload["config"]
    # the machine it ran on (issue 12): the same fingerprint this process reads
    assert payload["environment"] == json.loads(json.dumps(environment()))
    assert isinstance(payload["environment"]["cpu_isa"], list)


def test_a_run_that_does_not_follow_from_its_probabilities_fails_at_recording(
    tmp_path, tiny_artifact, monkeypatch
):
    """The recorder verifies its own run before it returns: probabilities that are not the
    model's (a poisoned cache, here a shifted sequence path) make the stream path disagree,
    and the run is refused instead of ending with exit 0."""
    from sentio.backtest import strattest

    real = strattest.SequenceContext.calculate_probability

    def poisoned(self, bars):
        return real(self, bars) + 1e-6

    monkeypatch.setattr(strattest.SequenceContext, "calculate_probability", poisoned)
    config = StrattestConfig(model=tiny_artifact, blocks=1, cache_dir=None)
    with pytest.raises(AuditError, match="fails its own verification at seq .*inference paths"):
        audited_strattest(historical_plan(config), AuditStore(tmp_path / "a.db"))


def test_identical_runs_share_a_chain_head(tmp_path, tiny_artifact):
    config = StrattestConfig(model=tiny_artifact, blocks=1, cache_dir=None)
    heads, ids = [], []
    for name in ("a.db", "b.db"):
        store = AuditStore(tmp_path / name)
        _, run_id = audited_strattest(historical_plan(config), store)
        heads.append(store.head(run_id))
        ids.append(run_id)
    assert heads[0] == heads[1] and ids[0] == ids[1]
    # the same run again in the same database is another run: its own id, genesis, head
    store = AuditStore(tmp_path / "a.db")
    _, again = audited_strattest(historical_plan(config), store)
    assert again == f"{ids[0]}-2" and store.head(again) != heads[0]
    # another seed is another run
    other = config.model_copy(update={"seed": 8})
    _, third = audited_strattest(historical_plan(other), AuditStore(tmp_path / "c.db"))
    assert third != ids[0] and AuditStore(tmp_path / "c.db").head(third) != heads[0]


def test_close_fills_replay_too(tmp_path, tiny_artifact):
    """With --fill close an order's fills follow its bar in the chain; the replay still
    rebuilds every bar's equity after them and the metrics."""
    config = StrattestConfig(
        model=tiny_artifact,
        blocks=2,
        fill="close",
        allow_in_sample=True,
        cache_dir=None,
        strategy=StrategyConfig(rule="adaptive"),
    )
    store = AuditStore(tmp_path / "a.db")
    result, run_id = audited_strattest(historical_plan(config), store)
    assert len(result.fills) > 0
    kinds = [e.kind for e in load(store, run_id)]
    first_fill = kinds.index("fill")
    assert kinds[first_fill - 1] == "order"  # the fill follows its own order at that close
    verdict = verify_run(store, run_id)
    assert verdict.ok, verdict.problem
    assert verdict.checked["fills"] == len(result.fills)
