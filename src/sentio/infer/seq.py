"""The sequence context (``calculate_probability``): a whole series in batch.

Features over the series (the engine's batch), a window for every bar whose rows t-T+1..t are
valid (the training rule, ``sentio.train.samples.valid_windows``), ONNX Runtime over the windows
in batches, probability = sigmoid(logit); NaN ("missing"), never a fake 0.5, where no valid
window exists. Probabilities are cached on disk under (manifest hash, data hash, spec hash).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from sentio.features.inputs import BarInput, as_input
from sentio.infer.registry import LoadedModel, load_model
from sentio.train.samples import valid_windows, windows

BATCH = 1024


def probability(logit: np.ndarray | float) -> np.ndarray | float:
    """sigmoid of the float32 logit, in float64: the one formula of both paths.

    >>> float(probability(np.float32(0.0)))
    0.5
    """
    return 1.0 / (1.0 + np.exp(-np.float64(logit)))


def data_hash(data: BarInput) -> str:
    digest = hashlib.sha256(data.rows.tobytes())
    digest.update(data.segment.tobytes())
    if data.ts is not None:
        digest.update(data.ts.tobytes())
    return digest.hexdigest()


class SequenceContext:
    """``calculate_probability(bars) -> (N,) float64`` with NaN before the first valid window."""

    def __init__(self, artifact: str | Path | LoadedModel, cache_dir: str | Path | None = None):
        self.model = artifact if isinstance(artifact, LoadedModel) else load_model(artifact)
        self.cache_dir = Path(cache_dir) if cache_dir else None
        self.cache_hits = 0

    def calculate_probability(self, bars, symbol: str | None = None) -> np.ndarray:
        data = as_input(bars, symbol)
        path = self._cache_path(data)
        if path is not None and path.exists():
            self.cache_hits += 1
            return np.load(path, allow_pickle=False)
        model = self.model
        frame = model.engine.compute(data)
        valid = valid_windows(data.segment, frame.ready, model.seq_len)
        rows = np.flatnonzero(valid)
        out = np.full(len(data), np.nan)
        for start in range(0, len(rows), BATCH):
            chunk = rows[start : start + BATCH]
            logits = model.onnx.logits(windows(frame.values, chunk, model.seq_len))
            out[chunk] = probability(logits)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp.npy")
            np.save(tmp, out, allow_pickle=False)
            tmp.replace(path)
        return out

    def _cache_path(self, data: BarInput) -> Path | None:
        if self.cache_dir is None:
            return None
        key = hashlib.sha256(
            f"{self.model.manifest_hash}|{data_hash(data)}|{self.model.spec_hash}".encode()
        ).hexdigest()
        return self.cache_dir / f"{key}.npy"


__all__ = ["SequenceContext", "data_hash", "probability"]
