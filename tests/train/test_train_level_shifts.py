"""`sentio train` warns of a volume level shift between its --data files (issue 16 section 2):
the built-in market cut into two files at a session boundary, the second one's volume x75 (the
scale of IBKR 1-minute volume against the consolidated tape, docs/data.md). Oracle: the cut and
the factor are ours; the same bars without the factor give no warning."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from sentio.data import Bars, write_bars
from sentio.data.synth.generate import SynthConfig, generate
from sentio.features.inputs import clock_columns
from tests.conftest import tiny_run


@pytest.mark.parametrize("factor", [75.0, 1.0])
def test_training_records_a_level_shift_between_its_files(tmp_path, factor):
    pytest.importorskip("torch", reason="training needs the train extra")
    from sentio.train.pipeline import run_training

    bars = generate(SynthConfig(seed=3, days=12)).bars["QQQ"]
    session = clock_columns(bars.frame["ts"].to_numpy(np.int64))[1]
    cut = session >= np.unique(session)[6]
    early, late = bars.frame[~cut].copy(), bars.frame[cut].copy()
    late["volume"] = late["volume"] * factor
    files = [tmp_path / "early.parquet", tmp_path / "late.parquet"]
    for frame, path in zip((early, late), files, strict=True):
        write_bars(Bars(frame.reset_index(drop=True), bars.meta), path)
    run = dataclasses.replace(tiny_run(tmp_path / "tfa", epochs=1), data=[str(f) for f in files])
    metrics = run_training(run)
    if factor == 1.0:
        assert metrics["level_shifts"] == []
        return
    (shift,) = metrics["level_shifts"]
    assert "volume" in shift and "early.parquet" in shift and "late.parquet" in shift
    ratio = float(shift.split("(x")[1].split(",")[0])
    assert 60 < ratio < 90  # x75 of the medians of two neighbouring sessions of one market
