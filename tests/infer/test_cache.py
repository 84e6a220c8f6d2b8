"""The probability cache is never trusted on its name: a poisoned, truncated, foreign or
unreadable file is recomputed (and counted), giving exactly what no cache gives; and a parity
run that compares zero bars fails instead of reporting "identical"."""

from __future__ import annotations

import contextlib
import hashlib
import json
import shutil
import subprocess

import numpy as np
import pytest

from sentio.core.errors import ParityError
from sentio.data.synth.generate import SynthConfig, generate
from sentio.infer import SequenceContext, compare
from sentio.infer.parity import tally


@pytest.fixture(scope="module")
def bars():
    return generate(SynthConfig(seed=21, days=15)).bars["QQQ"].of("QQQ")


@pytest.fixture(scope="module")
def truth(artifact, bars):
    """The probabilities with no cache at all: the oracle every cached run must equal."""
    return SequenceContext(artifact).calculate_probability(bars)


def cached_file(tmp_path, artifact, bars):
    SequenceContext(artifact, cache_dir=tmp_path).calculate_probability(bars)
    (path,) = tmp_path.glob("*.prob")
    return path


def poison(path):
    """Set every probability to 0.99 in place, keeping the header: what the issue's attacker
    did to the old .npy (exposure 47 % -> 97 %)."""
    blob = path.read_bytes()
    end = blob.index(b"\n") + 1
    values = np.frombuffer(blob[end:], "<f8").copy()
    values[~np.isnan(values)] = 0.99
    path.write_bytes(blob[:end] + values.tobytes())


def rehashed(change):
    """Rewrite the values with ``change(values)`` and recompute the header's sha256, as an
    attacker who knows the format would (issue 12 round 2: 5.0 or NaN everywhere passed)."""

    def damage(path):
        blob = path.read_bytes()
        end = blob.index(b"\n")
        header = json.loads(blob[:end])
        values = np.frombuffer(blob[end + 1 :], "<f8").copy()
        change(values)
        header["sha256"] = hashlib.sha256(values.tobytes()).hexdigest()
        path.write_bytes(json.dumps(header, sort_keys=True).encode() + b"\n" + values.tobytes())

    damage.__name__ = f"rehashed_{change.__name__}"
    return damage


def above_one(values):  # the NaN pattern kept, so only the range can tell
    values[~np.isnan(values)] = 5.0


def all_missing(values):
    values[:] = np.nan


def one_infinite(values):
    values[np.flatnonzero(~np.isnan(values))[-1]] = np.inf


def filled_warm_up(values):  # a value where the model has no window (warm-up): 0.5 is made up
    values[np.isnan(values)] = 0.5


def truncate(path):
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def header_only(path):
    blob = path.read_bytes()
    path.write_bytes(blob[: blob.index(b"\n") + 1])


def not_ours(path):
    np.save(path.with_suffix(".x.npy"), np.full(10, 0.99))  # an old-style .npy put in place
    path.with_suffix(".x.npy").replace(path)


def directory(path):
    path.unlink()
    path.mkdir()


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (poison, "sha256"),
        (truncate, "truncated"),
        (header_only, "truncated"),
        (not_ours, "header"),
        (directory, "cannot be read"),
        (rehashed(above_one), "outside [0, 1]"),
        (rehashed(one_infinite), "outside [0, 1]"),
        (rehashed(all_missing), "no probability on"),
        (rehashed(filled_warm_up), "without a window"),
    ],
    ids=lambda v: v.__name__ if callable(v) else None,
)
def test_a_damaged_cache_file_is_recomputed_and_counted(
    tmp_path, artifact, bars, truth, damage, reason
):
    path = cached_file(tmp_path, artifact, bars)
    damage(path)
    context = SequenceContext(artifact, cache_dir=tmp_path)
    got = context.calculate_probability(bars)
    assert np.array_equal(got, truth, equal_nan=True)
    assert context.cache_hits == 0 and len(context.cache_rejected) == 1
    assert reason in context.cache_rejected[0], context.cache_rejected
    if damage is directory:  # a directory in the way cannot be replaced: counted, not fatal
        assert len(context.cache_unwritten) == 1
        return
    # the file was replaced by a sound one: the next run uses it
    again = SequenceContext(artifact, cache_dir=tmp_path)
    assert np.array_equal(again.calculate_probability(bars), truth, equal_nan=True)
    assert again.cache_hits == 1 and again.cache_rejected == []


def test_a_file_of_another_key_renamed_into_place_is_refused(tmp_path, artifact, bars, truth):
    path = cached_file(tmp_path, artifact, bars)
    other = bars.assign(close=bars["close"] * 1.01)  # other bars: another key, another file
    SequenceContext(artifact, cache_dir=tmp_path).calculate_probability(other)
    (foreign,) = set(tmp_path.glob("*.prob")) - {path}
    foreign.replace(path)  # its header and checksum are sound, but for the other bars
    context = SequenceContext(artifact, cache_dir=tmp_path)
    assert np.array_equal(context.calculate_probability(bars), truth, equal_nan=True)
    assert context.cache_hits == 0 and "another model, data or spec" in context.cache_rejected[0]


def test_a_cache_in_a_read_only_directory_is_reported_not_fatal(tmp_path, artifact, bars, truth):
    (tmp_path / "src").mkdir()
    mount = tmp_path / "ro"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "--bind", "-o", "ro", str(tmp_path / "src"), str(mount)], capture_output=True
    )
    if done.returncode != 0 or shutil.which("umount") is None:
        pytest.skip(f"cannot make a read-only bind mount here: {done.stderr!r}")
    try:
        context = SequenceContext(artifact, cache_dir=mount)
        assert np.array_equal(context.calculate_probability(bars), truth, equal_nan=True)
        assert len(context.cache_unwritten) == 1 and "Read-only" in context.cache_unwritten[0]
        report = context.cache_report()
        assert json.loads(json.dumps(report))["unwritten"] == context.cache_unwritten
    finally:
        with contextlib.suppress(Exception):
            subprocess.run(["umount", str(mount)], check=True)


def test_parity_over_zero_bars_fails_instead_of_saying_identical(artifact, bars):
    # 20 bars: fewer than the spec's warm-up plus the window, so neither path has a probability
    with pytest.raises(ParityError, match="compared 0 bars: of 20 bars, 20 have no probability"):
        compare(artifact, bars.iloc[:20])
    # one path alone having probabilities is no comparison either
    with pytest.raises(ParityError, match="compared 0 bars: of 2 bars, 0 have no probability"):
        tally(np.array([0.4, np.nan]), np.array([np.nan, 0.6]))
    report = tally(np.array([0.4, np.nan]), np.array([0.4, np.nan]))
    assert report.compared == 1 and report.identical
