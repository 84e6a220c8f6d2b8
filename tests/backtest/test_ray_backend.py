"""``--backend ray`` (issue 14 section 4) against a real local Ray (``ray.init(num_cpus=2)``
through ``sentio.backtest.cluster``), never a mock: the tasks' results come back in order,
from workers that import this source tree and get this process's environment; a walk-forward
run whose folds are Ray tasks writes the same bytes as the local backend (the oracle: the
local run's files, compared byte for byte); the errors a user can cause are one line.

The walk-forward recipe is the tiny one of /tests/backtest/test_walkforward.py's kind: a 1-layer
d=32 network on 16-row windows, 2 epochs, 8-session windows, 5 folds; horizon 3 bars, where a
worker with another BLAS thread count than this process writes other last bits into the
artifact's metrics (the case the env hand-over exists for).
"""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path

import pytest

ray = pytest.importorskip(
    "ray", reason="the ray extra (pip install 'sentio[ray]') is not installed"
)
pytest.importorskip("torch", reason="torch is a train extra")

import sentio  # noqa: E402
from sentio.backtest import cluster  # noqa: E402
from sentio.backtest.strattest import StrattestConfig  # noqa: E402
from sentio.backtest.walkforward import WalkForwardConfig, run_walkforward  # noqa: E402
from sentio.core.errors import OptionError  # noqa: E402
from sentio.data.synth.generate import SynthConfig  # noqa: E402
from sentio.model.config import TFAConfig  # noqa: E402
from sentio.train.config import TrainConfig  # noqa: E402
from sentio.train.policy import RetrainPolicy  # noqa: E402
from sentio.train.samples import LabelSpec  # noqa: E402


def recipe() -> WalkForwardConfig:
    return WalkForwardConfig(
        policy=RetrainPolicy(train_window=8, retrain_every=5, shadow_sessions=2),
        strattest=StrattestConfig(cache_dir=None),
        model=TFAConfig(d_model=32, nhead=4, num_layers=1, seq_len=16),
        train=TrainConfig(epochs=2, learning_rate=1e-3, seed=7),
        label=LabelSpec(horizon=3, deadzone_bp=0.0),
        feature_spec="intraday_default",
        builtin=SynthConfig(seed=11, days=45, signal_strength=0.3),
    )


def files_of(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_address_is_one_line_naming_the_flag():
    assert not ray.is_initialized()  # (before the module's Ray: a running one is reused)
    port = free_port()  # bound and released: nothing listens there
    with pytest.raises(OptionError) as caught:
        cluster.run_on_ray(lambda x: x, [1], address=f"127.0.0.1:{port}")
    message = str(caught.value)
    assert message.startswith("--ray-address: no Ray cluster answers at 127.0.0.1:")
    assert "\n" not in message


def test_missing_ray_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now raises ImportError
    with pytest.raises(OptionError) as caught:
        cluster.import_ray()
    assert str(caught.value).startswith("--backend: the Ray backend needs the ray extra")
    assert "pip install 'sentio[ray]'" in str(caught.value)


def test_tasks_in_order_same_tree_same_env_and_ray_shut_down(monkeypatch):
    """run_on_ray starts its own local Ray (2 CPUs), runs the tasks in other processes and
    shuts it down; the workers import sentio from this source tree and see the variables a
    result depends on."""
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1234")
    assert not ray.is_initialized()

    def where(item: int) -> tuple:  # a local function: Ray ships it by value
        import os

        import sentio as imported

        return item * item, imported.__file__, os.environ.get("SOURCE_DATE_EPOCH"), os.getpid()

    out = cluster.run_on_ray(where, [3, 1, 2, 5], num_cpus=2)
    assert [o[0] for o in out] == [9, 1, 4, 25]  # input order
    assert {o[1] for o in out} == {sentio.__file__}  # this source tree
    assert {o[2] for o in out} == {"1234"}
    assert os.getpid() not in {o[3] for o in out}  # ran in Ray workers
    assert not ray.is_initialized()  # what it started, it shut down


@pytest.fixture(scope="module")
def local_ray():
    """One local Ray (2 CPUs) for the tests below; run_on_ray reuses it and leaves it up."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SOURCE_DATE_EPOCH", "0")  # artifacts stamped alike in both runs
        with cluster.ray_session(num_cpus=2):
            yield


def test_walk_forward_on_ray_writes_the_same_bytes_as_local(
    local_ray, tmp_path, monkeypatch, ray_calls
):
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "0")
    calls = ray_calls
    local = run_walkforward(recipe(), tmp_path / "local")
    assert calls == []
    on_ray = run_walkforward(recipe(), tmp_path / "ray", backend="ray")
    assert calls == [len(on_ray.folds)] and len(on_ray.folds) >= 3  # every fold a task
    a, b = files_of(tmp_path / "local"), files_of(tmp_path / "ray")
    assert sorted(a) == sorted(b)
    assert "walkforward.json" in a and any(n.endswith("model/model.onnx") for n in a)
    different = [name for name in a if a[name] != b[name]]
    assert different == []
    hashes = [f["candidate_manifest_sha256"] for f in local.per_fold]
    assert hashes == [f["candidate_manifest_sha256"] for f in on_ray.per_fold]
    assert len(set(hashes)) == len(hashes)  # each fold its own model


def test_a_task_error_comes_back_as_itself(local_ray):
    def refuse(item: int) -> int:
        from sentio.core.errors import OptionError

        raise OptionError(f"cannot use {item}", flag="--something")

    with pytest.raises(OptionError, match=r"^--something: cannot use 1$"):
        cluster.run_on_ray(refuse, [1, 2, 3])  # the first failing item's error, every time
