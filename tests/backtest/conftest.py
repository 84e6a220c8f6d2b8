"""A tiny trained artifact for the backtest tests."""

from __future__ import annotations

import pytest

pytest.importorskip("torch", reason="training the test artifact needs the train extra")

from sentio.train.pipeline import run_training  # noqa: E402
from tests.model.conftest import tiny_run  # noqa: E402


@pytest.fixture(scope="session")
def artifact(tmp_path_factory):
    out = tmp_path_factory.mktemp("bt") / "tfa"
    run_training(tiny_run(out))
    return out
