"""The stream context (``on_bar``): one window per arriving bar.

Keeps the feature engine's stream state and a ring of the last T feature rows; a window is
valid once T consecutive rows of the current segment are past their warm-up (the same rule as
the batch path, ``valid_windows``, since readiness only grows within a segment). One window
through ONNX Runtime on one thread gives the same bits as that window inside a batch, so the
two paths agree bit for bit (tests/infer). Loaded through the legacy ``metadata.json``.

A causal model (docs/model.md, "The causal presets") keeps its per-layer caches instead of
running a window: ``push`` feeds each ready row through one step of the causal runtime (the
same compiled step the sequence context loops over, so the paths agree bit for bit), and the
ring keeps the model's ``reach`` rows, from which a switched-to causal model rebuilds its
caches exactly.

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
from sentio.core.errors import ParityError, StateError, excerpt
from sentio.features.inputs import BarInput
from sentio.features.state import StreamState
from sentio.infer.ranges import RangeCounter, limits_of
from sentio.infer.registry import LoadedModel, load_model
from sentio.infer.seq import probability
from sentio.model.causal_runtime import CausalState

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
        rows, f = self.model.reach, len(self.model.feature_names)
        self.ring = np.zeros((rows, f), dtype=np.float32)  # the last ``reach`` feature rows
        self.filled = 0  # consecutive ready rows of this segment, capped at the ring's length
        self.segment: int | None = None
        self.net_state = self.model.net.state() if self.model.causal else None
        self.logit = np.float32(np.nan)  # a causal model's logit of the last pushed row
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
        cut = max(len(history) - model.reach, 0)
        features = model.engine.stream(history.slice(0, cut))
        return cls.resuming(model, features, history.slice(cut, len(history)))

    @classmethod
    def resuming(cls, model: LoadedModel, features: StreamState, tail: BarInput) -> StreamContext:
        """A context whose feature state has seen every bar before ``tail``; ``tail`` (its
        last ``reach`` bars fill the ring, and a causal model's caches) is pushed bar by bar."""
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
        """Advance the features and the window ring by one bar without running a window
        model (what a live loop does with history before it starts deciding); a causal model
        takes its one step here, as its caches must see every row."""
        new_segment = self.segment is not None and bar.segment != self.segment
        if new_segment:
            self.filled = 0
        self.segment = bar.segment
        row = self.features.update(bar)
        ready = self.features.all_ready
        self.ring[:-1] = self.ring[1:]
        self.ring[-1] = row
        self.filled = min(self.filled + 1, len(self.ring)) if ready else 0
        if self.net_state is not None:
            self.logit = self.model.net.step(self.net_state, self.ring[-1:], ready, new_segment)
        self._counted = False

    def predict(self) -> float:
        """The probability of the window ending at the last pushed bar (NaN if not valid);
        the bar's feature row is counted in ``ranges`` the first time it gets one."""
        if self.filled < self.model.seq_len:
            return float("nan")
        if not self._counted and self.ranges is not None:
            self.ranges.update(self.ring[-1:])
        self._counted = True
        if self.net_state is not None:
            return float(probability(self.logit))
        window = self.ring[len(self.ring) - self.model.seq_len :]
        return float(probability(self.model.onnx.logits(window[None])[0]))

    def range_report(self) -> dict | None:
        """Out-of-distribution counts over the bars this context gave a probability
        (``sentio.infer.ranges.RangeReport.to_dict``); None for an artifact that records no
        normalisation."""
        return None if self.ranges is None else self.ranges.get().to_dict()

    def snapshot(self) -> tuple:
        """(feature state copy, ring copy, valid rows, segment, causal state copy or None):
        what ``seq.probabilities_after`` needs to run the sequence path over the bars that
        follow."""
        net = None if self.net_state is None else self.net_state.copy()
        return self.features.copy(), self.ring.copy(), self.filled, self.segment, net

    def switch(self, artifact) -> None:
        """Serve another artifact from the next bar on, keeping the feature state; refused
        unless it uses the same feature spec and needs no more rows than the ring keeps (a
        causal model rebuilds its caches from them)."""
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
        if new.reach > len(self.ring):
            raise ParityError(
                f"cannot switch: the new model needs {new.reach} rows, this "
                f"context keeps {len(self.ring)}"
            )
        self.ring = self.ring[-new.reach :].copy()
        self.filled = min(self.filled, new.reach)
        self.model = new
        self.net_state, self.logit = self._rebuilt()
        self.ranges = self._counter()  # another model, other limits: counted afresh

    def _rebuilt(self) -> tuple[CausalState | None, np.float32]:
        """A causal model's state rebuilt from the ring's trailing ready rows (the model's
        reach, or all since its segment's ready rows began): bit for bit the state it would
        have had, had it seen the whole segment."""
        if not self.model.causal:
            return None, np.float32(np.nan)
        state = self.model.net.state()
        rows = self.ring[len(self.ring) - self.filled :] if self.filled else self.ring[:0]
        logits = self.model.net.run(state, rows)
        return state, logits[-1] if len(logits) else np.float32(np.nan)

    def to_json(self) -> str:
        """Feature state, ring and counters as JSON (no pickle)."""
        doc = {
            "format": STREAM_FORMAT,
            "manifest_hash": self.model.manifest_hash,
            "features": self.features.to_json(),
            "ring": _b64(self.ring),
            "filled": self.filled,
            "segment": self.segment,
        }
        if self.net_state is not None:  # a causal model's caches, clock and last logit
            doc["causal"] = {
                "keys": _b64(self.net_state.keys),
                "values": _b64(self.net_state.values),
                "clock": [int(v) for v in self.net_state.clock],
                "logit": _b64(np.array([self.logit])),
            }
        return json.dumps(doc, sort_keys=True)

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
        width, rows = len(model.feature_names), model.reach
        saved = ring.size // width
        if saved < rows:
            raise StateError(f"the saved window ring holds {saved} rows; this model needs {rows}")
        context.ring = ring.reshape(saved, width)[saved - rows :].astype(np.float32)
        context.filled = min(int(doc["filled"]), rows)
        context.segment = doc["segment"]
        mine = doc["manifest_hash"] == model.manifest_hash
        if model.causal and mine and isinstance(doc.get("causal"), dict):
            context.net_state, context.logit = _causal_state(doc["causal"], context.net_state)
        elif model.causal:  # saved under another model: its caches are rebuilt exactly
            context.net_state, context.logit = context._rebuilt()
        return context


def _b64(array: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(array, dtype="<f4").tobytes()).decode("ascii")


def _unb64(text: str, shape: tuple) -> np.ndarray:
    data = np.frombuffer(base64.b64decode(text), dtype="<f4")
    if data.size != int(np.prod(shape)):
        raise StateError(f"a saved causal cache holds {data.size} values, expected {shape}")
    return data.reshape(shape).astype(np.float32)


def _causal_state(doc: dict, empty: CausalState) -> tuple[CausalState, np.float32]:
    """The saved caches of a causal model, shaped as ``empty``, and its last logit
    (StateError if anything is missing, malformed or shaped otherwise)."""
    try:
        clock = np.array([int(v) for v in doc["clock"]], np.int64)
        keys = _unb64(doc["keys"], empty.keys.shape)
        values = _unb64(doc["values"], empty.values.shape)
        logit = _unb64(doc["logit"], (1,))[0]
    except (KeyError, TypeError, ValueError) as exc:  # binascii.Error is a ValueError
        raise StateError(f"the saved causal state is damaged ({excerpt(str(exc))})") from exc
    t = empty.keys.shape[2]
    if clock.shape != (2,) or not (0 <= clock[0] < t and 0 <= clock[1] <= t):
        raise StateError(f"the saved causal clock {clock.tolist()} is not one of T={t} slots")
    return CausalState(keys, values, clock), logit


__all__ = ["STREAM_FORMAT", "StreamContext"]
