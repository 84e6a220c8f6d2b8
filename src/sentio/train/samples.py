"""Training samples: label each decision bar, keep the ones whose window is valid, split them.

A sample is a decision bar t: its window is the feature rows t-T+1..t (an index view into the
feature matrix, never a copy), its label the sign of the forward h-bar log return of QQQ from
the close of t. Rules (docs/model.md, "Samples"), each counted in :class:`SampleReport`:
- window: all T rows in t's segment and past every feature's warm-up;
- label: t+h in the same segment and the same session (never across a session end or a gap);
- deadzone: |return| <= deadzone -> no label (excluded from the loss, reported).
Split chronologically by session into train / validation / test, with an embargo of at least
h + T bars between parts (no window or label of one part touches another).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from sentio.core.errors import SentioError
from sentio.model.windows import valid_windows, windows  # the rule lives below train and infer


class SampleError(SentioError):
    """Data that cannot give the requested samples (too short, no labels, ...)."""


@dataclass(frozen=True)
class LabelSpec:
    """What is predicted: sign of log(C[t+h] / C[t]) beyond a deadzone."""

    horizon: int = 5  # bars ahead
    deadzone_bp: float = 1.0  # |return| <= this many basis points is not labelled

    @property
    def deadzone(self) -> float:
        return self.deadzone_bp * 1e-4


@dataclass
class SampleReport:
    """How many decision bars each rule removed, and the class balance of what is left."""

    bars: int = 0
    removed: dict[str, int] = field(default_factory=dict)
    samples: int = 0
    positive: int = 0

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Samples:
    """Decision rows ``rows`` (into the feature matrix) and their 0/1 ``labels``."""

    rows: np.ndarray  # (S,) int64
    labels: np.ndarray  # (S,) float32
    forward_return: np.ndarray  # (S,) float64 log return used for the label


def label_bars(
    close: np.ndarray, segment: np.ndarray, session: np.ndarray, spec: LabelSpec
) -> tuple[np.ndarray, np.ndarray]:
    """(forward log return, labellable mask) per bar: NaN/False where t+h leaves the segment or
    the session.

    >>> close = np.array([100.0, 101.0, 102.0, 103.0])
    >>> r, ok = label_bars(close, np.zeros(4, int), np.array([0, 0, 0, 1]), LabelSpec(horizon=1))
    >>> ok.tolist(), round(float(r[0]), 6)
    ([True, True, False, False], 0.00995)
    """
    n, h = len(close), spec.horizon
    ret = np.full(n, np.nan)
    ok = np.zeros(n, dtype=bool)
    if n > h:
        ahead = slice(h, n)
        same = (segment[:-h] == segment[ahead]) & (session[:-h] == session[ahead])
        ok[:-h] = same & (session[:-h] >= 0)
        ret[:-h] = np.where(ok[:-h], np.log(close[ahead] / close[:-h]), np.nan)
    return ret, ok


def outside_deadzone(ret: np.ndarray, spec: LabelSpec) -> np.ndarray:
    """True where a forward return is labelled: beyond the dead zone (a NaN return is not).

    >>> outside_deadzone(np.array([0.0002, -0.00005, np.nan]), LabelSpec(deadzone_bp=1.0)).tolist()
    [True, False, False]
    """
    return np.abs(np.nan_to_num(ret)) > spec.deadzone


def select_samples(
    close: np.ndarray,
    segment: np.ndarray,
    session: np.ndarray,
    ready: np.ndarray,
    seq_len: int,
    spec: LabelSpec,
) -> tuple[Samples, SampleReport]:
    """Every decision bar with a full valid window and a label outside the deadzone."""
    n = len(close)
    report = SampleReport(bars=n)
    window_ok = valid_windows(segment, ready, seq_len)
    ret, label_ok = label_bars(close, segment, session, spec)
    report.removed["window not valid (warm-up, segment start)"] = int((~window_ok).sum())
    keep = window_ok.copy()
    report.removed["label crosses a session end, a segment or the data end"] = int(
        (keep & ~label_ok).sum()
    )
    keep &= label_ok
    inside = keep & ~outside_deadzone(ret, spec)
    report.removed[f"inside the deadzone (|r| <= {spec.deadzone_bp:g} bp)"] = int(inside.sum())
    keep &= ~inside
    chosen = np.flatnonzero(keep)
    labels = (ret[chosen] > 0).astype(np.float32)
    report.samples, report.positive = len(chosen), int(labels.sum())
    return Samples(chosen.astype(np.int64), labels, ret[chosen]), report


@dataclass(frozen=True)
class Split:
    """Row indices (into the samples) of train / validation / test, and what was embargoed."""

    train: np.ndarray
    validation: np.ndarray
    test: np.ndarray
    embargoed: int


def split_by_session(
    samples: Samples,
    session: np.ndarray,
    fractions: tuple[float, float, float],
    embargo_bars: int,
) -> Split:
    """Chronological split by session; the first ``embargo_bars`` bars after a part's last
    decision bar are dropped from the next part.

    >>> s = Samples(np.arange(100), np.zeros(100, np.float32), np.zeros(100))
    >>> parts = split_by_session(s, np.repeat(np.arange(10), 10), (0.7, 0.15, 0.15), 3)
    >>> [len(parts.train), len(parts.validation), len(parts.test), parts.embargoed]
    [70, 7, 17, 6]
    """
    sessions = np.unique(session[samples.rows])
    need = int(np.ceil(1 / min(fractions)))
    if len(sessions) < need:
        raise SampleError(
            f"{len(sessions)} session(s) have samples; a {fractions} split needs at least {need} "
            "(give more data, or a shorter --sequence-length / feature warm-up)"
        )
    cuts = np.round(np.cumsum(fractions)[:2] * len(sessions)).astype(int)
    cuts = np.clip(cuts, 1, len(sessions) - 1)
    part_of = np.searchsorted(sessions[cuts], session[samples.rows], side="right")
    parts, embargoed, last_row = [], 0, None
    for p in range(3):
        members = np.flatnonzero(part_of == p)
        if last_row is not None:
            clear = samples.rows[members] - last_row > embargo_bars
            embargoed += int((~clear).sum())
            members = members[clear]
        if len(members) == 0:
            raise SampleError(f"the {('train', 'validation', 'test')[p]} part has no samples")
        parts.append(members)
        last_row = samples.rows[members[-1]]
    return Split(parts[0], parts[1], parts[2], embargoed)


__all__ = [
    "LabelSpec",
    "SampleError",
    "SampleReport",
    "Samples",
    "Split",
    "label_bars",
    "outside_deadzone",
    "select_samples",
    "split_by_session",
    "valid_windows",
    "windows",
]
