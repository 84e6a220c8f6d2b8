"""Artifacts for the inference tests: two tiny models on one spec, one on another."""

from __future__ import annotations

import pytest

pytest.importorskip("torch", reason="training the test artifacts needs the train extra")

from sentio.train.pipeline import run_training  # noqa: E402
from tests.conftest import tiny_run  # noqa: E402


@pytest.fixture(scope="session")
def artifact(tiny_artifact):
    return tiny_artifact


@pytest.fixture(scope="session")
def sibling(tmp_path_factory):
    """Same spec and T, other seed: a model the stream context may switch to."""
    out = tmp_path_factory.mktemp("infer") / "b"
    run_training(tiny_run(out, seed=11))
    return out


@pytest.fixture(scope="session")
def other_spec(tmp_path_factory):
    out = tmp_path_factory.mktemp("infer") / "c"
    run = tiny_run(out)
    run.feature_spec = "intraday_default"
    run.builtin = type(run.builtin)(seed=3, days=20)  # REL_VOLUME: 11 sessions
    run_training(run)
    return out
