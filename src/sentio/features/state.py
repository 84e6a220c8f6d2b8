"""The streaming driver: one engine state advanced bar by bar, saved and restored as JSON.

``update`` runs the same compiled driver as the batch (``program.run_part``, over one row), so
a stream and a batch over the same bars agree bit for bit. The state is one float64 vector
(program.py); it is saved as base64 bytes inside a JSON document with the spec hash and a
checksum, never pickled.
"""

from __future__ import annotations

import base64
import json
from typing import TYPE_CHECKING

import numpy as np

from sentio.core.domain import Bar
from sentio.core.errors import SpecError, StateError, excerpt
from sentio.core.hashing import sha256_hex
from sentio.data.trading_calendar import locate
from sentio.features.inputs import minutes_since_open
from sentio.features.ops.base import H_N, H_SESSIONS, HEADER
from sentio.features.program import ROW_WIDTH, run_part

if TYPE_CHECKING:
    from sentio.features.engine import FeatureEngine
    from sentio.features.inputs import BarInput

STATE_FORMAT = "sentio.feature-state/1"


class StreamState:
    """Feature state of one instrument, advanced bar by bar.

    ``update(bar)`` returns the (F,) float32 features of that bar; a bar whose ``segment``
    differs from the previous one restarts every feature first (docs/features.md).
    """

    def __init__(self, engine: FeatureEngine) -> None:
        self.engine = engine
        program = engine.program
        self._codes, self._fparams, self._init = program.codes, program.fparams, program.init
        self._state = program.init.copy()
        self._segment: int | None = None
        self._session: tuple[int, int, int] | None = None  # (open_ns, close_ns, number)
        self._row = np.empty((1, ROW_WIDTH), dtype=np.float64)
        # The driver's arguments for one row, made once: the header advanced in place (a view
        # of the state, which is only ever written in place), the row's segment (one row holds
        # no segment change) and no warm-up counters.
        self._header = self._state[:HEADER]
        self._one_segment = np.zeros(1, dtype=np.int64)
        self._no_counters = np.empty((0, 2), dtype=np.int64)
        self._emit_from = engine.spec.emit_from
        self._pad = np.float32(engine.spec.pad_value)
        self._warm = (  # the longest warm-up, for all_ready
            int(program.warm_bars.max(initial=0)),
            int(program.warm_sessions.max(initial=0)),
        )

    def update(self, bar: Bar) -> np.ndarray:
        """Advance every feature by ``bar``; returns a new (F,) float32 array."""
        row = self._row[0]
        row[0], row[1], row[2], row[3], row[4] = bar.open, bar.high, bar.low, bar.close, bar.volume
        if bar.ts is None:
            if self.engine.program.clock:
                raise _no_clock([f.name for f in self.engine.spec.features if f.op.clock])
            row[5], row[6] = np.nan, -1.0
        else:
            row[5], row[6] = self._clock(bar.ts)
        return self._advance(self._row, bar.segment)

    def update_row(self, row: np.ndarray, segment: int) -> np.ndarray:
        """Advance by one engine input row (inputs.BarInput layout)."""
        self._row[0] = row
        return self._advance(self._row, segment)

    def _advance(self, rows: np.ndarray, segment: int) -> np.ndarray:
        if self._segment is not None and segment != self._segment:
            self._state[:] = self.engine.program.init
        self._segment = segment
        out = np.empty((1, len(self._codes)), dtype=np.float32)
        run_part(
            self._codes,
            self._fparams,
            0,
            len(self._codes),
            self._init,
            self._state,
            self._header,
            rows,
            self._one_segment,
            0,
            1,
            out,
            self._no_counters,
            self._emit_from,
            self._pad,
            self.engine.compat,
        )
        return out[0]

    def catch_up(self, history: BarInput) -> None:
        """Advance over many bars at once: one call of the batch driver, which runs the same
        ``advance`` as :meth:`update`, so the state ends as the same bits as bar-by-bar
        updates would leave it (tests/features). A segment change restarts it as usual."""
        if not len(history):
            return
        if self._segment is not None and int(history.segment[0]) != self._segment:
            self._state[:] = self.engine.program.init
        self.engine._run(history, self._state)
        self._segment = int(history.segment[-1])
        self._session = None

    def preview(self, bars: BarInput) -> tuple[np.ndarray, np.ndarray]:
        """(values (N, F) float32, ready (N,) bool) of ``bars`` following this state, by the
        batch driver in one call, leaving this state as it is: the sequence path's features
        from a stream's point (the live loop checks each session with it). ``ready`` is
        :attr:`all_ready` at each row, from the driver's warm-up counters."""
        state = self._state.copy()
        if self._segment is not None and len(bars) and int(bars.segment[0]) != self._segment:
            state[:] = self.engine.program.init
        values, counters, _ = self.engine._run(bars, state)
        warm_bars, warm_sessions = self._warm
        return values, (counters[:, 0] >= warm_bars) & (counters[:, 1] >= warm_sessions)

    def copy(self) -> StreamState:
        """An independent stream in the same state."""
        other = StreamState(self.engine)
        other._state[:] = self._state
        other._segment = self._segment
        return other

    @property
    def segment(self) -> int | None:
        """The segment of the last bar seen (None before the first)."""
        return self._segment

    @property
    def rows_seen(self) -> int:
        """Bars seen in the current segment."""
        return int(self._state[H_N])

    @property
    def ready(self) -> np.ndarray:
        """(F,) bool: each feature is past its warm-up at the last bar."""
        program = self.engine.program
        row = self.rows_seen - 1
        sessions = int(self._state[H_SESSIONS])
        return (row >= program.warm_bars) & (sessions >= program.warm_sessions)

    @property
    def all_ready(self) -> bool:
        """Every feature is past its warm-up at the last bar (``ready.all()``, cheaper)."""
        bars, sessions = self._warm
        return int(self._state[H_N]) - 1 >= bars and int(self._state[H_SESSIONS]) >= sessions

    def _clock(self, ts: int) -> tuple[float, float]:
        """(minute since the open, session number), the calendar looked up once a session."""
        cached = self._session
        if cached is None or not cached[0] <= ts < cached[1]:
            inside, number, open_ns, close_ns = locate(np.array([ts], dtype=np.int64))
            if not inside[0]:
                self._session = None
                return np.nan, -1.0
            cached = self._session = (int(open_ns[0]), int(close_ns[0]), int(number[0]))
        return minutes_since_open(ts, cached[0]), float(cached[2])

    def to_json(self) -> str:
        """The state as a JSON document (no pickle): restore it with :meth:`from_json`."""
        blob = self._state.astype("<f8").tobytes()
        return json.dumps(
            {
                "format": STATE_FORMAT,
                "spec_hash": self.engine.content_hash,
                "compat": self.engine.compat,
                "segment": self._segment,
                "state": base64.b64encode(blob).decode("ascii"),
                "state_sha256": sha256_hex(blob),
            },
            sort_keys=True,
        )

    @classmethod
    def from_json(cls, engine: FeatureEngine, text: str) -> StreamState:
        """Restore a state saved by :meth:`to_json` for the same spec and mode."""
        try:
            doc = json.loads(text)
            blob = base64.b64decode(doc["state"], validate=True)
        except (ValueError, KeyError, TypeError) as exc:
            raise StateError(f"not a saved feature state ({exc})") from exc
        if doc.get("format") != STATE_FORMAT:
            raise StateError(f"format {excerpt(doc.get('format'))}, expected {STATE_FORMAT!r}")
        if doc.get("spec_hash") != engine.content_hash:
            raise StateError(
                f"state belongs to spec {doc.get('spec_hash')}, this engine runs "
                f"{engine.content_hash}"
            )
        if bool(doc.get("compat")) != engine.compat:
            raise StateError(
                f"state saved with compat={doc.get('compat')}, engine has compat={engine.compat}"
            )
        if sha256_hex(blob) != doc.get("state_sha256"):
            raise StateError("state bytes do not match their checksum (damaged file)")
        values = np.frombuffer(blob, dtype="<f8").astype(np.float64)
        if len(values) != len(engine.program.init):
            raise StateError(
                f"state has {len(values)} slots, engine needs {len(engine.program.init)}"
            )
        stream = cls(engine)
        stream._state[:] = values
        stream._segment = doc.get("segment")
        return stream


def _no_clock(names: list[str]) -> SpecError:
    return SpecError(f"features {names} need bar times; this bar has ts=None")


__all__ = ["STATE_FORMAT", "StreamState"]
