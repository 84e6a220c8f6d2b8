"""The window rule: which bars have a model input, and the (T, F) window of each.

Training (``sentio.train.samples``) and both inference paths (``sentio.infer``) use it, so it
lives below both: a sample is only ever built, and a probability only ever computed, for a bar
whose rows t-T+1..t lie in t's segment and past every feature's warm-up.
"""

from __future__ import annotations

import numpy as np


def valid_windows(segment: np.ndarray, ready: np.ndarray, seq_len: int) -> np.ndarray:
    """(N,) bool: the window of rows t-T+1..t lies in t's segment and past every feature's
    warm-up (readiness only grows within a segment, so its first row decides). The one rule for
    training samples and both inference paths.

    >>> valid_windows(np.array([0, 0, 0, 1, 1]), np.array([0, 1, 1, 1, 1], bool), 2).tolist()
    [False, False, True, False, True]
    """
    start = np.arange(len(segment)) - seq_len + 1
    first = np.maximum(start, 0)
    return (start >= 0) & ready[first] & (segment[first] == segment)


def windows(features: np.ndarray, rows: np.ndarray, seq_len: int) -> np.ndarray:
    """(len(rows), T, F) float32 windows ending at ``rows``, gathered for one batch.

    >>> windows(np.arange(10.0).reshape(5, 2), np.array([2, 4]), 2)[1].tolist()
    [[6.0, 7.0], [8.0, 9.0]]
    """
    index = rows[:, None] + np.arange(1 - seq_len, 1)[None, :]  # (B, T) row numbers
    return np.ascontiguousarray(features[index], dtype=np.float32)  # (B, T, F) float32


__all__ = ["valid_windows", "windows"]
