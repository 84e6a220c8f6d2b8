"""Both inference paths over the same bars, compared bar by bar (``sentio model parity``)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from sentio.core.domain import Bar
from sentio.core.errors import ParityError
from sentio.infer.seq import SequenceContext
from sentio.infer.stream import StreamContext


@dataclass(frozen=True)
class ParityReport:
    """``decisions_flipped``: bars where one path is at or above 0.5 and the other below (or
    one is missing and the other not)."""

    bars: int
    compared: int  # bars where both paths give a probability
    missing_both: int
    max_abs_diff: float
    bars_differ: int
    decisions_flipped: int

    @property
    def identical(self) -> bool:
        return self.bars_differ == 0 and self.decisions_flipped == 0

    def to_dict(self) -> dict:
        return {**asdict(self), "identical": self.identical}


def bars_of(frame: pd.DataFrame) -> Iterator[Bar]:
    """One symbol's canonical rows as :class:`Bar` objects, in order."""
    columns = [
        frame[k].to_numpy() for k in ("ts", "open", "high", "low", "close", "volume", "segment")
    ]
    for ts, o, h, lo, c, v, seg in zip(*columns, strict=True):
        yield Bar(int(ts), float(o), float(h), float(lo), float(c), float(v), int(seg))


def stream_probabilities(context: StreamContext, frame: pd.DataFrame) -> np.ndarray:
    """``on_bar`` over one symbol's canonical rows, in order."""
    return np.array([context.on_bar(bar) for bar in bars_of(frame)], dtype=np.float64)


def tally(seq: np.ndarray, stream: np.ndarray) -> ParityReport:
    """Bar-by-bar comparison of the two paths' probabilities (NaN: no valid window).

    A comparison of zero bars proves nothing, so it is refused rather than reported as
    identical (issue 12: a NaN close gave "compared 0 ... identical True").

    >>> tally(np.array([0.5, np.nan]), np.array([0.5, np.nan])).identical
    True
    >>> try:
    ...     tally(np.array([np.nan]), np.array([np.nan]))
    ... except ParityError as exc:
    ...     print(str(exc)[:64])
    compared 0 bars: of 1 bars, 1 have no probability on either path
    """
    if len(seq) != len(stream):
        raise ParityError(f"the paths gave {len(seq)} and {len(stream)} probabilities")
    both = ~np.isnan(seq) & ~np.isnan(stream)
    if not both.any():
        neither = int((np.isnan(seq) & np.isnan(stream)).sum())
        raise ParityError(
            f"compared 0 bars: of {len(seq)} bars, {neither} have no probability on either path "
            f"and {len(seq) - neither} on one path only; give more bars than the model's warm-up "
            "and window, or data with valid prices"
        )
    either_missing = np.isnan(seq) != np.isnan(stream)
    diff = np.abs(seq[both] - stream[both])
    differ = int((seq[both].view(np.int64) != stream[both].view(np.int64)).sum())
    flipped = int(((seq[both] >= 0.5) != (stream[both] >= 0.5)).sum() + either_missing.sum())
    return ParityReport(
        bars=len(seq),
        compared=int(both.sum()),
        missing_both=int((np.isnan(seq) & np.isnan(stream)).sum()),
        max_abs_diff=float(diff.max()) if len(diff) else 0.0,
        bars_differ=differ + int(either_missing.sum()),
        decisions_flipped=flipped,
    )


def compare(
    artifact: str | Path, frame: pd.DataFrame
) -> tuple[ParityReport, np.ndarray, np.ndarray]:
    """(report, sequence probabilities, stream probabilities) over ``frame``."""
    seq = SequenceContext(artifact).calculate_probability(frame)
    stream = stream_probabilities(StreamContext(artifact), frame)
    report = tally(seq, stream)
    return report, seq, stream


__all__ = ["ParityReport", "bars_of", "compare", "stream_probabilities", "tally"]
