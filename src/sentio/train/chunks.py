"""Chunks for the causal presets: runs of consecutive feature rows in which every labelled row
gets its logit in one forward pass.

The causal network (``sentio.model.causal``) computes a row exactly as serving does (serving
remembers the whole segment) when the chunk holds the ``context - 1`` rows before it, or starts
where its segment's ready rows start (serving starts there too). So a chunk is: up to ``span``
consecutive target rows, preceded by ``context - 1`` rows of context (fewer where the ready
rows start), all in one run of ready rows. Context rows carry no loss.

>>> starts = run_starts(np.array([0, 0, 0, 0, 0, 1, 1]), np.array([0, 1, 1, 1, 1, 1, 1], bool))
>>> starts.tolist()
[-1, 1, 1, 1, 1, 5, 5]
>>> plan = plan_chunks(np.array([3, 4, 6]), starts, context=2, span=8)
>>> plan.bounds.tolist(), plan.chunk.tolist(), plan.position.tolist()
([[2, 5], [5, 7]], [0, 0, 1], [1, 2, 1])
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def run_starts(segment: np.ndarray, ready: np.ndarray) -> np.ndarray:
    """(N,) int64: each ready row's first row of its run of consecutive ready rows in its
    segment; -1 for a row that is not ready."""
    n = len(segment)
    index = np.arange(n)
    new = ready & np.r_[True, (segment[1:] != segment[:-1]) | ~ready[:-1]] if n else ready
    first = np.where(new, index, 0)
    first = np.maximum.accumulate(first) if n else first
    return np.where(ready, first, -1).astype(np.int64)


@dataclass(frozen=True)
class ChunkPlan:
    """``bounds`` (K, 2) [start, stop) row ranges; target i sits in chunk ``chunk[i]`` at
    ``position[i]`` (its row minus the chunk's start)."""

    bounds: np.ndarray  # (K, 2) int64
    chunk: np.ndarray  # (S,) int64
    position: np.ndarray  # (S,) int64

    @property
    def longest(self) -> int:
        return int((self.bounds[:, 1] - self.bounds[:, 0]).max()) if len(self.bounds) else 0


def plan_chunks(rows: np.ndarray, starts: np.ndarray, context: int, span: int) -> ChunkPlan:
    """Chunks covering the target ``rows`` (any order; each must be ready): consecutive
    targets of one run, at most ``span`` rows apart from the chunk's first target, share a
    chunk."""
    order = np.argsort(rows, kind="stable")
    chunk = np.empty(len(rows), np.int64)
    position = np.empty(len(rows), np.int64)
    bounds: list[list[int]] = []
    first = -1
    for i in order:
        row = int(rows[i])
        run = int(starts[row])
        if run < 0:
            raise ValueError(f"row {row} is not ready: it has no chunk")
        if not bounds or run != int(starts[first]) or row - first >= span:
            first = row
            bounds.append([max(run, row - (context - 1)), row + 1])
        bounds[-1][1] = row + 1
        chunk[i] = len(bounds) - 1
        position[i] = row - bounds[-1][0]
    return ChunkPlan(np.array(bounds, np.int64).reshape(-1, 2), chunk, position)


def gather(features: np.ndarray, bounds: np.ndarray) -> np.ndarray:
    """(K, C, F) float32 rows of the chunks ``bounds`` (K, 2), right-padded with zeros to the
    longest (a causal network never looks right, so padding changes no real row).

    >>> gather(np.arange(8.0).reshape(4, 2), np.array([[0, 2], [3, 4]]))[:, :, 0].tolist()
    [[0.0, 2.0], [6.0, 0.0]]
    """
    longest = int((bounds[:, 1] - bounds[:, 0]).max()) if len(bounds) else 0
    out = np.zeros((len(bounds), longest, features.shape[1]), np.float32)
    for k, (start, stop) in enumerate(bounds):
        out[k, : stop - start] = features[start:stop]
    return out


__all__ = ["ChunkPlan", "gather", "plan_chunks", "run_starts"]
