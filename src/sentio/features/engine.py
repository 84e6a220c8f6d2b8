"""The feature engine: a spec compiled once, driven in batch or as a stream.

>>> import numpy as np
>>> from sentio.features.inputs import from_arrays
>>> engine = FeatureEngine("feature_spec_55_minimal")
>>> close = 100 + np.sin(np.arange(300) / 7)
>>> bars = from_arrays(close, close, close, close, np.full(300, 1e3))
>>> values = engine.batch(bars)
>>> values.shape, values.dtype
((300, 55), dtype('float32'))
>>> stream = engine.stream()
>>> rows = [stream.update_row(bars.rows[r], 0) for r in range(300)]
>>> bool((np.array(rows) == values).all())
True
"""

from __future__ import annotations

from dataclasses import dataclass
from numbers import Integral
from pathlib import Path

import numpy as np
import pandas as pd

from sentio.core.errors import OptionError, SpecError
from sentio.data.schema import Bars
from sentio.features.inputs import BarInput, as_input
from sentio.features.parallel import feature_threads, run_batch
from sentio.features.program import Program, compile_spec
from sentio.features.spec import FeatureSpec, load_spec
from sentio.features.state import StreamState


@dataclass(frozen=True)
class FeatureFrame:
    """Batch output: ``values`` (N, F) float32 and where each feature is valid.

    ``valid_from[s, f]`` is the first row (absolute index) of segment ``s`` at which feature
    ``f`` is past its warm-up, or -1 when the segment ends first.
    """

    values: np.ndarray
    names: tuple[str, ...]
    segment_starts: np.ndarray
    valid_from: np.ndarray
    ts: np.ndarray | None

    @property
    def ready(self) -> np.ndarray:
        """(N,) bool: every feature is past its warm-up at this row."""
        ready = np.zeros(len(self.values), dtype=bool)
        ends = np.append(self.segment_starts[1:], len(self.values))
        for s, (start, end) in enumerate(zip(self.segment_starts, ends, strict=True)):
            first = self.valid_from[s]
            if len(first) and (first >= 0).all():
                ready[max(int(first.max()), int(start)) : end] = True
        return ready

    def to_frame(self) -> pd.DataFrame:
        """One column per feature (float32), plus ``ts`` when the bars had times."""
        frame = pd.DataFrame(self.values, columns=list(self.names), copy=False)
        if self.ts is not None:
            frame.insert(0, "ts", self.ts)
        frame["ready"] = self.ready
        return frame


class FeatureEngine:
    """Compile ``spec`` once; ``batch``/``compute`` over a series, ``stream`` bar by bar.

    ``compat=True`` applies the spec's ``alignment_policy`` (rows before ``emit_from_index``
    of each segment become ``pad_value``, later non-finite values 0), as the original engine
    did before inference; the default returns the raw values and reports warm-up instead.
    ``threads``: how many threads a batch may split its features over (None: the
    environment's, ``parallel.feature_threads``); the values are the same bits whatever it is.
    """

    def __init__(
        self, spec: FeatureSpec | str | Path, *, compat: bool = False, threads: int | None = None
    ) -> None:
        self.spec = spec if isinstance(spec, FeatureSpec) else load_spec(spec)
        self.program: Program = compile_spec(self.spec)
        self.compat = compat
        if threads is not None and (
            isinstance(threads, bool) or not isinstance(threads, Integral) or threads < 1
        ):
            raise OptionError(f"threads must be a whole number >= 1, got {threads!r}")
        self.threads = None if threads is None else int(threads)

    @property
    def names(self) -> tuple[str, ...]:
        return self.program.names

    @property
    def content_hash(self) -> str:
        return self.spec.content_hash

    def batch(self, bars: BarInput | Bars | pd.DataFrame, symbol: str | None = None) -> np.ndarray:
        """(N, F) float32 feature values, one row per bar."""
        return self.compute(bars, symbol).values

    def compute(
        self, bars: BarInput | Bars | pd.DataFrame, symbol: str | None = None
    ) -> FeatureFrame:
        """Values and the warm-up report of every segment."""
        data = as_input(bars, symbol)
        values, counters, _ = self._run(data)
        starts = segment_starts(data.segment)
        return FeatureFrame(
            values=values,
            names=self.program.names,
            segment_starts=starts,
            valid_from=self._valid_from(counters, starts),
            ts=data.ts,
        )

    def stream(self, history: BarInput | pd.DataFrame | None = None) -> StreamState:
        """A stream: ``update(bar)`` advances every feature by one bar. With ``history``, a
        stream that has already seen those bars (``StreamState.catch_up``)."""
        stream = StreamState(self)
        if history is not None:
            stream.catch_up(as_input(history))
        return stream

    def _run(
        self, data: BarInput, state: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(values, warm-up counters, state after the last row) of the batch driver, from a
        fresh state or from ``state`` (advanced in place)."""
        self._require_clock(data)
        n, p = len(data), self.program
        values = np.empty((n, len(p.names)), dtype=np.float32)
        counters = np.empty((n, 2), dtype=np.int64)
        state = p.init.copy() if state is None else state
        if n:
            run_batch(
                p,
                state,
                np.ascontiguousarray(data.rows, dtype=np.float64),
                np.ascontiguousarray(data.segment, dtype=np.int64),
                values,
                counters,
                self.spec.emit_from,
                np.float32(self.spec.pad_value),
                self.compat,
                threads=feature_threads() if self.threads is None else self.threads,
            )
        return values, counters, state

    def _require_clock(self, data: BarInput) -> None:
        if self.program.clock and not data.has_clock:
            needs = [f.name for f in self.spec.features if f.op.clock]
            raise SpecError(
                f"features {needs} need bar times (ts) to find the session open; these bars "
                "have none (give a canonical table from `sentio data import`)",
                file=self.spec.origin,
            )

    def _valid_from(self, counters: np.ndarray, starts: np.ndarray) -> np.ndarray:
        """First row of each segment where each feature's warm-up is met (-1: never)."""
        bars, sessions = self.program.warm_bars, self.program.warm_sessions
        ends = np.append(starts[1:], len(counters))
        out = np.full((len(starts), len(bars)), -1, dtype=np.int64)
        for s, (start, end) in enumerate(zip(starts, ends, strict=True)):
            seen = counters[start:end, 1]
            by_sessions = np.searchsorted(seen, sessions, side="left")
            first = np.maximum(bars, by_sessions)
            out[s] = np.where(first < end - start, start + first, -1)
        return out


def segment_starts(segment: np.ndarray) -> np.ndarray:
    """Row index where each segment begins (a segment is a run of equal ids).

    >>> segment_starts(np.array([0, 0, 1, 1, 1, 3])).tolist()
    [0, 2, 5]
    """
    if len(segment) == 0:
        return np.zeros(0, dtype=np.int64)
    return np.flatnonzero(np.r_[True, segment[1:] != segment[:-1]]).astype(np.int64)


__all__ = ["FeatureEngine", "FeatureFrame", "segment_starts"]
