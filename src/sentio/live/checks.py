"""The live loop's session check: at the end of each session the sequence path runs over the
session's bars from the stream context's state before the first (``infer.seq.probabilities_after``:
batch features, the window rule, ONNX Runtime over all windows), and both paths' probabilities
are recorded in a ``session_check`` audit event, which ``saudit verify`` checks bit for bit."""

from __future__ import annotations

import numpy as np
import pandas as pd

from sentio.features.inputs import as_input
from sentio.infer import StreamContext
from sentio.infer.seq import probabilities_after
from sentio.live.types import FeedBar


class SessionCheck:
    """The bars of one session as the loop decided them, and the stream context's state
    before the first: at the session's end the sequence path runs over them
    (``infer.seq.probabilities_after``). After a restart it covers the bars since then."""

    def __init__(self) -> None:
        self.session: int | None = None
        self.snapshot = None
        self.rows: list[tuple] = []
        self.p: list[float] = []

    def start(self, stream: StreamContext, session: int) -> None:
        self.session, self.snapshot = session, stream.snapshot()
        self.rows, self.p = [], []

    def add(self, ts: int, q: FeedBar, segment: int, p: float) -> None:
        self.rows.append((ts, q.open, q.high, q.low, q.close, q.volume, segment))
        self.p.append(p)

    def result(self, model) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """(bar times, p from the sequence path, p the loop decided on), or None if empty."""
        if not self.rows:
            return None
        frame = pd.DataFrame(
            self.rows, columns=["ts", "open", "high", "low", "close", "volume", "segment"]
        )
        p_seq = probabilities_after(model, self.snapshot, as_input(frame))
        ts = frame["ts"].to_numpy(np.int64)
        self.rows, self.p, p_stream = [], [], np.array(self.p, dtype=np.float64)
        return ts, p_seq, p_stream


__all__ = ["SessionCheck"]
