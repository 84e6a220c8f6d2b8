"""Out-of-distribution inputs: the scored bars whose features leave what the model was trained on.

A network answers every input, even one far from anything it saw. Issue 16: the built-in market
(QQQ near $385) scored by models trained on real QQQ near $600 put the price-level features at
the +/-10 clip on every bar, and two different models gave byte-identical, always-long results;
nothing warned. So every inference path counts, per scored bar (a bar that got a probability;
its own feature row, the last row of its window):

- **outside the training range**: some feature below its ``min`` or above its ``max`` over the
  rows the training windows covered (``model.meta.json`` ``feature_ranges``, recorded by
  ``sentio train``; artifacts trained before it have none, and then only the clip is counted);
- **beyond the clip**: some feature with ``|(x - mean) / std| > clip``, the normalisation the
  graph applies (``normalization``; float32 as the graph computes it): the network sees the clip,
  not the value, so it cannot tell such bars apart.

The warning rule is on the second count (:data:`WARN_SHARE`, :data:`MIN_BARS`, measured in
docs/inference.md): new highs push some price-level feature outside the training range on many
bars of ordinary later data, while a share of bars beyond the clip separates data the model was
trained for from data it was not.

>>> limits = Limits(("a", "b"), np.zeros(2, np.float32), np.ones(2, np.float32), 10.0,
...                 low=np.array([-1.0, -1.0]), high=np.array([1.0, 1.0]))
>>> counter = RangeCounter(limits)
>>> counter.update(np.array([[0.5, 0.0], [2.0, 0.0], [0.0, 11.0]], np.float32))
>>> r = counter.get()
>>> r.bars, r.outside_training, r.beyond_clip, r.top_features
(3, 2, 1, (('b', 1),))
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from sentio.infer.registry import LoadedModel
from sentio.model.artifact import read_json

# Measured (docs/inference.md): on data a model was trained for, at most 0.27 % of a session's
# scored bars and at most 1 of any 100 consecutive ones are beyond the clip; on the built-in
# market scored by a model trained on real QQQ (and the reverse) 100 %, on 2022-2024 QQQ 88 %.
WARN_SHARE = 0.05  # more than this share of the scored bars beyond the clip: warn
MIN_BARS = 100  # ... once at least this many bars are scored (one bar of 20 would be 5 %)
TOP = 5  # features named in a report
CHUNK = 65_536  # rows checked at once


@dataclass(frozen=True)
class Limits:
    """What the model was trained on, per feature (spec order): the normalisation the graph
    applies and, when recorded, the training range (``low``/``high``; None when not)."""

    names: tuple[str, ...]
    mean: np.ndarray  # (F,) float32
    std: np.ndarray  # (F,) float32
    clip: float
    low: np.ndarray | None = None  # (F,) float64
    high: np.ndarray | None = None

    @classmethod
    def from_meta(cls, meta: dict, names: tuple[str, ...]) -> Limits | None:
        """The limits ``model.meta.json`` records; None when it has no
        ``normalization``. The loader has checked both (``model.metadata``: finite numbers,
        one per feature, every min <= max) before any context reads them."""
        norm = meta.get("normalization")
        if not isinstance(norm, dict):
            return None
        ranges = meta.get("feature_ranges")
        low = high = None
        if ranges is not None:
            low = np.asarray(ranges["min"], dtype=np.float64)
            high = np.asarray(ranges["max"], dtype=np.float64)
        return cls(
            tuple(names),
            np.asarray(norm["mean"], dtype=np.float32),
            np.asarray(norm["std"], dtype=np.float32),
            float(norm["clip"]),
            low,
            high,
        )

    @property
    def ranges_recorded(self) -> bool:
        return self.low is not None

    def flags(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(outside, beyond): (n, F) bool masks of the raw feature ``rows`` (n, F) outside the
        training range (all False when it was not recorded) and beyond the clip."""
        rows = np.asarray(rows, dtype=np.float32)
        z = (rows - self.mean) / self.std  # float32, as the graph normalises
        beyond = np.abs(z) > np.float32(self.clip)
        if self.low is None:
            return np.zeros_like(beyond), beyond
        wide = rows.astype(np.float64)
        return (wide < self.low) | (wide > self.high), beyond


def limits_of(model: LoadedModel) -> Limits | None:
    """The limits of a loaded artifact (its ``model.meta.json``, which the loader verified
    against the manifest)."""
    meta = read_json(model.directory, "model.meta.json")
    return Limits.from_meta(meta, model.feature_names)


@dataclass(frozen=True)
class RangeReport:
    """The counts over the scored bars and the warning rule's verdict (``to_dict`` for JSON)."""

    bars: int
    outside_training: int  # bars with some feature outside the training range
    beyond_clip: int  # bars with some feature beyond the clip
    share_outside_training: float | None  # of ``bars``; None when no bar or no ranges
    share_beyond_clip: float | None
    threshold_share: float  # WARN_SHARE
    min_bars: int
    warn: bool
    rule: str
    top_features: tuple[tuple[str, int], ...]  # most often beyond the clip, count > 0
    top_outside_training: tuple[tuple[str, int], ...]  # most often outside the range
    ranges_recorded: bool
    clip: float

    def to_dict(self) -> dict:
        doc = asdict(self)
        doc["top_features"] = [list(x) for x in self.top_features]
        doc["top_outside_training"] = [list(x) for x in self.top_outside_training]
        return doc


def rule_text(clip: float) -> str:
    """The warning rule in one line."""
    return (
        f"warn when more than {WARN_SHARE:.0%} of the scored bars (at least {MIN_BARS}) have a "
        f"feature beyond the +/-{clip:g} clip"
    )


def passes(bars: int, beyond_clip: int) -> bool:
    """The warning rule on the counts.

    >>> passes(100, 6), passes(100, 5), passes(99, 99)
    (True, False, False)
    """
    return bars >= MIN_BARS and beyond_clip > WARN_SHARE * bars


class RangeCounter:
    """Counts scored bars as they come: ``update(rows)`` with the raw feature rows (n, F) of
    the bars that got a probability, ``get()`` the report; ``warn`` without building it."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        width = len(limits.names)
        self.bars = self.outside = self.beyond = 0
        self.outside_by_feature = np.zeros(width, dtype=np.int64)
        self.beyond_by_feature = np.zeros(width, dtype=np.int64)

    def update(self, rows: np.ndarray) -> None:
        for start in range(0, len(rows), CHUNK):  # bounded temporaries on long series
            outside, beyond = self.limits.flags(rows[start : start + CHUNK])
            self.bars += len(outside)
            self.outside += int(outside.any(axis=1).sum())
            self.beyond += int(beyond.any(axis=1).sum())
            self.outside_by_feature += outside.sum(axis=0)
            self.beyond_by_feature += beyond.sum(axis=0)

    @property
    def warn(self) -> bool:
        return passes(self.bars, self.beyond)

    def get(self) -> RangeReport:
        recorded, n = self.limits.ranges_recorded, self.bars
        return RangeReport(
            bars=n,
            outside_training=self.outside,
            beyond_clip=self.beyond,
            share_outside_training=self.outside / n if n and recorded else None,
            share_beyond_clip=self.beyond / n if n else None,
            threshold_share=WARN_SHARE,
            min_bars=MIN_BARS,
            warn=self.warn,
            rule=rule_text(self.limits.clip),
            top_features=_top(self.limits.names, self.beyond_by_feature),
            top_outside_training=_top(self.limits.names, self.outside_by_feature),
            ranges_recorded=recorded,
            clip=self.limits.clip,
        )


def describe(report: dict) -> str:
    """A range report (``RangeReport.to_dict``) as one line for a console: the counts, the
    features most often beyond the clip and, past the rule, a plain warning.

    >>> describe({"bars": 200, "beyond_clip": 190, "share_beyond_clip": 0.95,
    ...           "outside_training": 200, "share_outside_training": 1.0, "warn": True,
    ...           "ranges_recorded": True, "top_features": [["close_z", 190]],
    ...           "rule": "warn when ..."})  # doctest: +NORMALIZE_WHITESPACE
    'WARNING inputs out of distribution: 190 of 200 scored bars (95.0%) have a feature beyond
    the clip (close_z 190), 200 (100.0%) outside the training range; warn when ...'
    """
    bars, beyond = report["bars"], report["beyond_clip"]
    share = report["share_beyond_clip"]
    text = f"{beyond:,} of {bars:,} scored bars ({_pct(share)}) have a feature beyond the clip"
    if report["top_features"]:
        text += " (" + ", ".join(f"{name} {n:,}" for name, n in report["top_features"]) + ")"
    if report["ranges_recorded"]:
        outside = report["outside_training"]
        text += (
            f", {outside:,} ({_pct(report['share_outside_training'])}) outside the training range"
        )
    else:
        text += "; the artifact records no training ranges"
    head = "WARNING inputs out of distribution" if report["warn"] else "inputs"
    return f"{head}: {text}; {report['rule']}"


def _pct(share: float | None) -> str:
    return "-" if share is None else f"{100 * share:.1f}%"


def _top(names: tuple[str, ...], counts: np.ndarray) -> tuple[tuple[str, int], ...]:
    """The TOP features by count (ties in spec order), those with a count only."""
    order = np.argsort(-counts, kind="stable")[:TOP]
    return tuple((names[i], int(counts[i])) for i in order if counts[i] > 0)


__all__ = [
    "MIN_BARS",
    "WARN_SHARE",
    "Limits",
    "RangeCounter",
    "RangeReport",
    "limits_of",
    "passes",
    "rule_text",
]
