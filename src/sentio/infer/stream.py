"""The stream context (``on_bar``): one window per arriving bar.

Keeps the feature engine's stream state and a ring of the last T feature rows; a window is
valid once T consecutive rows of the current segment are past their warm-up (the same rule as
the batch path, ``valid_windows``, since readiness only grows within a segment). One window
through ONNX Runtime on one thread gives the same bits as that window inside a batch, so the
two paths agree bit for bit (tests/infer). Loaded through the legacy ``metadata.json``.

Each bar that gets a probability is also checked against what the model was trained on (one
vectorised comparison of its feature row, ``sentio.infer.ranges``): ``range_report()`` gives the
same counts the sequence context gives over the same bars, counted since the context was made
or last switched to another model (a restored context starts from zero).
"""

from __future__ import annotations

import base64
import json

import numpy as np

from sentio.core.domain import Bar
from sentio.core.errors import ParityError, StateError
from sentio.features.inputs import BarInput
from sentio.features.state import StreamState
from sentio.infer.ranges import RangeCounter, limits_of
from sentio.infer.registry import LoadedModel, load_model
from sentio.infer.seq import probability

STREAM_FORMAT = "sentio.stream-context/1"


class StreamContext:
    """``on_bar(bar) -> probability`` (NaN before a valid window); ``on_bar`` is ``push``
    then ``predict``."""

    def __init__(self, artifact, *, state: StreamState | None = None) -> None:
        self.model = (
            artifact
            if isinstance(artifact, LoadedModel)
            else load_model(artifact, door="metadata.json")
        )
        self.features = state or self.model.engine.stream()
        t, f = self.model.seq_len, len(self.model.feature_names)
        self.ring = np.zeros((t, f), dtype=np.float32)
        self.filled = 0  # consecutive ready rows of this segment, capped at T
        self.segment: int | None = None
        self.ranges = self._counter()
        self._counted = True  # the last pushed bar is in ``ranges`` (or there is none)

    def _counter(self) -> RangeCounter | None:
        limits = limits_of(self.model)
        return None if limits is None else RangeCounter(limits)

    @classmethod
    def from_history(cls, artifact, history: BarInput) -> StreamContext:
        """A context that has seen every bar of ``history``: the features advanced over all but
        the last T bars in one call (``StreamState.catch_up``), then those T bars pushed one by
        one to fill the window ring, as a live loop starts from the day's bars."""
        model = (
            artifact
            if isinstance(artifact, LoadedModel)
            else load_model(artifact, door="metadata.json")
        )
        cut = max(len(history) - model.seq_len, 0)
        features = model.engine.stream(history.slice(0, cut))
        return cls.resuming(model, features, history.slice(cut, len(history)))

    @classmethod
    def resuming(cls, model: LoadedModel, features: StreamState, tail: BarInput) -> StreamContext:
        """A context whose feature state has seen every bar before ``tail``; ``tail`` (its
        last T bars fill the ring) is pushed bar by bar."""
        context = cls(model, state=features)
        context.segment = features.segment
        rows, ts = tail.rows, tail.ts
        for r in range(len(tail)):
            o, h, lo, c, v = (float(x) for x in rows[r, :5])
            stamp = None if ts is None else int(ts[r])
            context.push(Bar(stamp, o, h, lo, c, v, int(tail.segment[r])))
        return context

    def on_bar(self, bar: Bar) -> float:
        """Take the bar and return the probability of its window (NaN before a valid one)."""
        self.push(bar)
        return self.predict()

    def push(self, bar: Bar) -> None:
        """Advance the features and the window ring by one bar without running the model
        (what a live loop does with history before it starts deciding)."""
        if self.segment is not None and bar.segment != self.segment:
            self.filled = 0
        self.segment = bar.segment
        row = self.features.update(bar)
        ready = self.features.all_ready
        self.ring[:-1] = self.ring[1:]
        self.ring[-1] = row
        self.filled = min(self.filled + 1, self.model.seq_len) if ready else 0
        self._counted = False

    def predict(self) -> float:
        """The probability of the window ending at the last pushed bar (NaN if not valid);
        the bar's feature row is counted in ``ranges`` the first time it gets one."""
        if self.filled < self.model.seq_len:
            return float("nan")
        if not self._counted and self.ranges is not None:
            self.ranges.update(self.ring[-1:])
        self._counted = True
        return float(probability(self.model.onnx.logits(self.ring[None])[0]))

    def range_report(self) -> dict | None:
        """Out-of-distribution counts over the bars this context gave a probability
        (``sentio.infer.ranges.RangeReport.to_dict``); None for an artifact that records no
        normalisation."""
        return None if self.ranges is None else self.ranges.get().to_dict()

    def snapshot(self) -> tuple:
        """(feature state copy, ring copy, valid rows, segment): what
        ``seq.probabilities_after`` needs to run the sequence path over the bars that follow."""
        return self.features.copy(), self.ring.copy(), self.filled, self.segment

    def switch(self, artifact) -> None:
        """Serve another artifact from the next bar on, keeping the feature state; refused
        unless it uses the same feature spec and a window no longer than this one's."""
        new = (
            artifact
            if isinstance(artifact, LoadedModel)
            else load_model(artifact, door="metadata.json")
        )
        if new.spec_hash != self.model.spec_hash:
            raise ParityError(
                f"cannot switch: the new model's spec is {new.spec_hash}, the "
                f"feature state belongs to {self.model.spec_hash}"
            )
        if new.seq_len > self.model.seq_len:
            raise ParityError(
                f"cannot switch: the new model needs T={new.seq_len} rows, this "
                f"context keeps {self.model.seq_len}"
            )
        self.ring = self.ring[-new.seq_len :].copy()
        self.filled = min(self.filled, new.seq_len)
        self.model = new
        self.ranges = self._counter()  # another model, other limits: counted afresh

    def to_json(self) -> str:
        """Feature state, ring and counters as JSON (no pickle)."""
        return json.dumps(
            {
                "format": STREAM_FORMAT,
                "manifest_hash": self.model.manifest_hash,
                "features": self.features.to_json(),
                "ring": base64.b64encode(self.ring.astype("<f4").tobytes()).decode("ascii"),
                "filled": self.filled,
                "segment": self.segment,
            },
            sort_keys=True,
        )

    @classmethod
    def from_json(cls, artifact, text: str, *, other_model: bool = False) -> StreamContext:
        """Restore a context saved by :meth:`to_json`. With ``other_model`` a context saved
        under another artifact is taken by this one when it uses the same feature spec (the
        feature state checks it) and a window no longer than the saved ring (as
        :meth:`switch` does between bars)."""
        model = (
            artifact
            if isinstance(artifact, LoadedModel)
            else load_model(artifact, door="metadata.json")
        )
        doc = json.loads(text)
        if doc.get("format") != STREAM_FORMAT:
            raise StateError(f"format {doc.get('format')!r}, expected {STREAM_FORMAT!r}")
        if doc["manifest_hash"] != model.manifest_hash and not other_model:
            raise StateError(
                "saved stream context belongs to another artifact "
                f"(manifest {doc['manifest_hash'][:12]}...)"
            )
        context = cls(model, state=StreamState.from_json(model.engine, doc["features"]))
        ring = np.frombuffer(base64.b64decode(doc["ring"]), dtype="<f4")
        width, seq_len = len(model.feature_names), model.seq_len
        saved = ring.size // width
        if saved < seq_len:
            raise StateError(
                f"the saved window ring holds {saved} rows; this model needs {seq_len}"
            )
        context.ring = ring.reshape(saved, width)[saved - seq_len :].astype(np.float32)
        context.filled = min(int(doc["filled"]), seq_len)
        context.segment = doc["segment"]
        return context


__all__ = ["STREAM_FORMAT", "StreamContext"]
