"""Bars shared by the feature tests: a synthetic market (always) and real files (when present)."""

from __future__ import annotations

import pytest

from sentio.data import import_files
from sentio.data.synth.generate import SynthConfig, generate
from sentio.features.inputs import as_input
from tests.conftest import real_file


@pytest.fixture(scope="session")
def synthetic_qqq():
    """15 sessions of the built-in synthetic QQQ (one segment, with a clock)."""
    return generate(SynthConfig(seed=11, days=15)).bars["QQQ"]


@pytest.fixture(scope="session")
def tqqq_polygon():
    """The real Polygon TQQQ file, imported (regular session only, with segments)."""
    bars, _ = import_files([real_file("polygon/TQQQ_RTH_NH.csv")])
    return bars


@pytest.fixture(params=["synthetic", "polygon_tqqq"])
def oracle_bars(request):
    """The bars each oracle test runs on: the first 6,000 of the synthetic and the real set."""
    bars = request.getfixturevalue(
        "synthetic_qqq" if request.param == "synthetic" else "tqqq_polygon"
    )
    frame = bars.frame.iloc[:6000].reset_index(drop=True)
    return frame, as_input(frame)
