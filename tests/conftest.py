"""Shared test fixtures: where the real data lives, and a skip when it does not."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
SHARED_GOLDEN = REPO.parent / "shared" / "golden"


@pytest.fixture(autouse=True)
def _no_signing_key(monkeypatch):
    """A signing key in the developer's shell would make every loader refuse the unsigned test
    artifacts; tests that sign set their own key."""
    for name in ("SENTIO_SIGNING_KEY", "SENTIO_SIGNING_KEY_FILE"):
        monkeypatch.delenv(name, raising=False)


def real_file(relative: str) -> Path:
    """Path of a file in ../shared/data, skipping the test (with the reason) when absent."""
    path = SHARED_DATA / relative
    if not path.exists():
        pytest.skip(f"real data not available: {path} is absent (../shared/data is not shipped)")
    return path


def tiny_run(output: Path, **train_overrides):
    """12 built-in sessions, a 1-layer d=16 network on 8-row windows, 3 epochs."""
    from sentio.data.synth.generate import SynthConfig
    from sentio.model.config import TFAConfig
    from sentio.train.pipeline import TrainRun
    from sentio.train.samples import LabelSpec
    from sentio.train.trainer import TrainConfig

    train = {"epochs": 3, "batch_size": 128, "learning_rate": 1e-3, "patience": 10, "seed": 3}
    train.update(train_overrides)
    return TrainRun(
        data=["builtin"],
        output=output,
        model=TFAConfig(d_model=16, nhead=2, num_layers=1, seq_len=8),
        train=TrainConfig(**train),
        label=LabelSpec(horizon=3),
        builtin=SynthConfig(seed=3, days=12),
    )


def real_qqq_config(tmp: Path, artifact: Path):
    """strattest on the real IBKR QQQ 1-minute file (imported to Parquet under ``tmp``), 5
    blocks, no cache, the adaptive rule: the tiny model's probabilities are only informative
    relative to each other, so it trades there."""
    from sentio.backtest.strattest import StrattestConfig
    from sentio.data import import_files, write_bars
    from sentio.strategy import StrategyConfig

    bars, _ = import_files([real_file("ibkr/QQQ_1min.csv")])
    path = tmp / "qqq.parquet"
    write_bars(bars, path)
    return StrattestConfig(
        model=artifact,
        data=(str(path),),
        blocks=5,
        cache_dir=None,
        strategy=StrategyConfig(rule="adaptive"),
    )


@pytest.fixture(scope="session")
def tiny_artifact(tmp_path_factory) -> Path:
    """One trained tiny artifact for every test that only reads it (model, infer, backtest)."""
    pytest.importorskip("torch", reason="training the test artifact needs the train extra")
    from sentio.train.pipeline import run_training

    out = tmp_path_factory.mktemp("art") / "tfa"
    run_training(tiny_run(out))
    return out


@pytest.fixture(scope="session")
def retrained_artifact(tmp_path_factory) -> Path:
    """The tiny recipe trained again with another seed (4): the same spec and window, another
    manifest, for every test that needs "another model" (registry, gate, live restarts)."""
    pytest.importorskip("torch", reason="training the test artifact needs the train extra")
    from sentio.train.pipeline import run_training

    out = tmp_path_factory.mktemp("retrained") / "tfa"
    run_training(tiny_run(out, seed=4))
    return out


@pytest.fixture
def ray_calls(monkeypatch) -> list[int]:
    """The number of items of every ``cluster.run_on_ray`` call (the calls still go to Ray): a
    test reads it to know that work went to Ray as tasks."""
    from sentio.backtest import cluster

    calls: list[int] = []
    original = cluster.run_on_ray

    def spy(fn, items, address=None, **kw):
        calls.append(len(items))
        return original(fn, items, address, **kw)

    monkeypatch.setattr(cluster, "run_on_ray", spy)
    return calls


def compare_without_torch(artifact: Path) -> tuple[bool, int]:
    """(identical, bars compared) of both inference paths over 4 built-in sessions, run in a
    process where importing torch fails (production inference must not need it)."""
    code = f"""
import sys
class NoTorch:
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ImportError("torch is blocked in this test")
sys.meta_path.insert(0, NoTorch())
from sentio.data.synth.generate import SynthConfig, generate
from sentio.infer import compare
frame = generate(SynthConfig(seed=5, days=4)).bars["QQQ"].of("QQQ")
report, _, _ = compare({str(artifact)!r}, frame)
assert "torch" not in sys.modules
print(report.identical, report.compared)
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    identical, compared = done.stdout.split()
    return identical == "True", int(compared)
