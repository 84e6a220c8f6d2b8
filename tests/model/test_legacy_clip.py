"""metadata.json is the identity for the original C++ ModelRegistryTS (issue 12 section 5).

That loader reads ``mean``, ``std`` and ``clip`` (two floats) and computes, per feature,
``clip((x - mean) / std, lo, hi)`` in float32 before handing the window to the network. The
network normalises inside its own graph, so this must leave every feature value unchanged.
The oracle is the raw feature matrix itself: identity means bit-for-bit equality.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

pytest.importorskip("torch", reason="the tiny artifact is trained (train extra)")

from sentio.core.hashing import sha256_file
from sentio.features import FeatureEngine
from sentio.features.inputs import as_input
from sentio.model import LEGACY_CLIP, MANIFEST, load_verified, verify
from tests.conftest import real_file


def original_loader(x: np.ndarray, legacy: dict) -> np.ndarray:
    """ModelRegistryTS's normalisation as it is written: float32 throughout."""
    mean = np.asarray(legacy["mean"], dtype=np.float32)
    std = np.asarray(legacy["std"], dtype=np.float32)
    lo, hi = (np.float32(v) for v in legacy["clip"])
    return np.clip((x.astype(np.float32) - mean) / std, lo, hi)


@pytest.fixture(scope="module")
def real_features():
    from sentio.data import import_files

    bars, _ = import_files([real_file("ibkr/QQQ_1min.csv")])
    frame = bars.of("QQQ")
    computed = FeatureEngine("feature_spec_55_minimal").compute(as_input(frame))
    return computed.values  # every row, warm-up rows included


def same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and bool((a.view(np.uint32) == b.view(np.uint32)).all())


def test_metadata_json_leaves_every_real_feature_row_unchanged(tiny_artifact, real_features):
    legacy = json.loads((tiny_artifact / "metadata.json").read_text())
    assert legacy["clip"] == [-LEGACY_CLIP, LEGACY_CLIP]
    assert np.isfinite(np.float32(LEGACY_CLIP))  # a finite float32, as the original reads it
    x = real_features.astype(np.float32)
    assert len(x) > 10_000 and x.shape[1] == 55
    assert same_bits(original_loader(x, legacy), x)


def test_the_old_clip_would_have_changed_the_rows(tiny_artifact, real_features):
    """The same check fails for the clip artifacts had before: it can fail."""
    legacy = json.loads((tiny_artifact / "metadata.json").read_text())
    legacy["clip"] = [-10.0, 10.0]
    x = real_features.astype(np.float32)
    changed = (original_loader(x, legacy) != x).any(axis=0)
    assert not same_bits(original_loader(x, legacy), x)
    assert changed.sum() >= 40  # close, EMAs, ...: the issue counted 43 of 55 columns


def test_verify_fails_an_old_binding_clip_and_loaders_still_load(tmp_path, tiny_artifact):
    old = tmp_path / "old"
    shutil.copytree(tiny_artifact, old)
    legacy = json.loads((old / "metadata.json").read_text())
    legacy["clip"] = [-10.0, 10.0]
    (old / "metadata.json").write_text(json.dumps(legacy))
    manifest = json.loads((old / MANIFEST).read_text())
    manifest["files"]["metadata.json"] = sha256_file(old / "metadata.json")
    (old / MANIFEST).write_text(json.dumps(manifest))
    failed = [c for c in verify(old) if not c.passed]
    assert [c.name for c in failed] == ["legacy metadata.json"]
    assert "binds" in failed[0].detail and "retrain" in failed[0].detail
    assert load_verified(old)["expects"]["seq_len"] == 8  # Sentio's loaders never read the clip
