"""Tiny, fast training runs on the built-in market, shared by the model tests."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("torch", reason="torch is a train extra")

from sentio.data.synth.generate import SynthConfig  # noqa: E402
from sentio.model.config import TFAConfig  # noqa: E402
from sentio.train.pipeline import TrainRun, run_training  # noqa: E402
from sentio.train.samples import LabelSpec  # noqa: E402
from sentio.train.trainer import TrainConfig  # noqa: E402


def tiny_run(output: Path, **train_overrides) -> TrainRun:
    """12 built-in sessions, a 1-layer d=16 network on 8-row windows, 3 epochs."""
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


@pytest.fixture(scope="session")
def tiny_artifact(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("art") / "tfa"
    run_training(tiny_run(out))
    return out
