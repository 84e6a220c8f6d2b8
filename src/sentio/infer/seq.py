"""The sequence context (``calculate_probability``): a whole series in batch.

Features over the series (the engine's batch), a window for every bar whose rows t-T+1..t are
valid (the training rule, ``sentio.model.windows.valid_windows``), ONNX Runtime over the windows
in batches, probability = sigmoid(logit); NaN ("missing"), never a fake 0.5, where no valid
window exists. A causal model runs its compiled step over every row of the series instead
(``CausalNet.series``), the very code the stream context runs one row at a time.
Probabilities are cached on disk under (manifest hash, data hash, spec hash),
each file checked against its key and checksum before it is used (``sentio.infer.cache``).

After each call, :meth:`SequenceContext.range_report` counts the scored bars whose features left
the training range or passed the clip (``sentio.infer.ranges``). It is computed from the features,
which every call computes, cache hit or not, so a cached run reports exactly what a cold one does
and the cache files hold probabilities only.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from sentio.core.errors import OutputError
from sentio.features.inputs import BarInput, as_input
from sentio.infer.cache import ProbabilityCache, cache_key
from sentio.infer.ranges import RangeCounter, limits_of
from sentio.infer.registry import LoadedModel, load_model
from sentio.model.windows import valid_windows, windows

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
    """``calculate_probability(bars) -> (N,) float64`` with NaN before the first valid window.

    With a ``cache_dir``, counts what the cache did: ``cache_hits`` (files used),
    ``cache_rejected`` (files found but not trusted, with the reason; recomputed and
    overwritten) and ``cache_unwritten`` (files that could not be written; the run goes on).
    ``range_report()``: the out-of-distribution counts of the last call's scored bars.
    """

    def __init__(self, artifact: str | Path | LoadedModel, cache_dir: str | Path | None = None):
        self.model = artifact if isinstance(artifact, LoadedModel) else load_model(artifact)
        self.cache = ProbabilityCache(cache_dir) if cache_dir else None
        self.cache_hits = 0
        self.cache_rejected: list[str] = []
        self.cache_unwritten: list[str] = []
        self.limits = limits_of(self.model)
        self._scored: tuple[np.ndarray, np.ndarray] | None = None  # the last call's features
        self._report: dict | None = None

    def calculate_probability(self, bars, symbol: str | None = None) -> np.ndarray:
        data = as_input(bars, symbol)
        # the features are computed even on a cache hit: they say which bars have a window, so
        # which bars a cached file must give a probability (and NaN on the rest); the engine is
        # a small part of a cold run (measured: 0.01 s of 0.1 s on 34,000 bars, tiny model)
        frame = self.model.engine.compute(data)
        valid = valid_windows(data.segment, frame.ready, self.model.seq_len)
        self._scored = (frame.values, valid)  # counted when range_report() asks (35 ms on
        self._report = None  # 33,255 bars), so a cache hit stays as fast as it was
        if self.cache is None:
            return self._compute(frame.values, valid, frame.ready, data.segment)
        hashes = (self.model.manifest_hash, data_hash(data), self.model.spec_hash)
        key = cache_key(*hashes)
        cached, why = self.cache.load(key, valid)
        if cached is not None:
            self.cache_hits += 1
            return cached
        if why is not None:
            self.cache_rejected.append(f"{self.cache.path(key)} {why}")
        out = self._compute(frame.values, valid, frame.ready, data.segment)
        try:
            self.cache.store(key, out, hashes)
        except OutputError as exc:  # a cache is an optimisation: report it, do not fail the run
            self.cache_unwritten.append(str(exc))
        return out

    def cache_report(self) -> dict:
        """What the cache did, for a command's output (JSON-ready)."""
        return {
            "directory": None if self.cache is None else str(self.cache.directory),
            "hits": self.cache_hits,
            "rejected": list(self.cache_rejected),
            "unwritten": list(self.cache_unwritten),
        }

    def range_report(self, rows: np.ndarray | None = None) -> dict | None:
        """Out-of-distribution counts (``sentio.infer.ranges.RangeReport.to_dict``) over the
        bars the last ``calculate_probability`` scored, or only those of them in ``rows`` (a
        boolean mask of its bars: the bars a command actually traded or scored); None before a
        call, or for an artifact that records no normalisation."""
        if self.limits is None or self._scored is None:
            return None
        values, valid = self._scored
        if rows is not None:
            counter = RangeCounter(self.limits)
            counter.update(values[valid & np.asarray(rows, dtype=bool)])
            return counter.get().to_dict()
        if self._report is None:
            counter = RangeCounter(self.limits)
            counter.update(values[valid])  # each scored bar's own row
            self._report = counter.get().to_dict()
        return dict(self._report)

    def _compute(self, features, valid, ready, segment) -> np.ndarray:
        model = self.model
        out = np.full(len(valid), np.nan)
        if model.causal:
            logits = model.net.series(features, ready, segment)
            out[valid] = probability(logits[valid])
            return out
        rows = np.flatnonzero(valid)
        for start in range(0, len(rows), BATCH):
            chunk = rows[start : start + BATCH]
            logits = model.onnx.logits(windows(features, chunk, model.seq_len))
            out[chunk] = probability(logits)
        return out


def probabilities_after(
    model: LoadedModel, snapshot, bars: BarInput, batch: int = 64
) -> np.ndarray:
    """The sequence path over ``bars`` that follow a stream context's ``snapshot``
    (``StreamContext.snapshot()``: its feature state, window ring, valid-row count and
    segment, taken before them): features by the batch driver from that state, the window
    rule over the ring's rows and the new ones, ONNX Runtime over all windows in batches.
    NaN where no valid window exists. The live loop runs it at each session's end and records
    both paths' probabilities (they must agree bit for bit)."""
    features, ring, filled, segment, state = snapshot
    values, ready = features.preview(bars)
    if model.causal:  # the caches carry on from the snapshot's
        return probability(model.net.series(values, ready, bars.segment, state.copy(), segment))
    t = model.seq_len
    k = t - 1
    ring = ring[len(ring) - t :]  # a ring longer than T (kept for a causal model): its tail
    prefix_ready = np.arange(k) >= k - min(filled, k)  # the ring's trailing valid rows
    prefix_segment = np.full(k, -1 if segment is None else segment, dtype=np.int64)
    rows = np.vstack([ring[len(ring) - k :], values]) if k else values
    valid = valid_windows(
        np.r_[prefix_segment, bars.segment.astype(np.int64)], np.r_[prefix_ready, ready], t
    )
    out = np.full(len(rows), np.nan)
    chosen = np.flatnonzero(valid)
    for start in range(0, len(chosen), batch):  # small batches: ONNX Runtime keeps its arena
        chunk = chosen[start : start + batch]
        out[chunk] = probability(model.onnx.logits(windows(rows, chunk, t)))
    return out[k:]


__all__ = ["SequenceContext", "data_hash", "probabilities_after", "probability"]
