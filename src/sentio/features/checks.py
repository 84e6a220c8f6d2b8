"""The engine's proofs, runnable on anyone's bars (``sentio features check``).

- stream == batch: every bar through ``StreamState.update_row`` equals the batch row, bit for bit;
- prefix: the batch over bars[:t+1] ends with the full batch's row t (no look-ahead);
- warm-up: a batch that starts k bars later agrees with the full batch from its declared
  warm-up on, within a tolerance derived from ``SEED_WEIGHT`` (recursive ops remember their
  seed with weight below it) and float32 rounding;
- restore: a stream saved to JSON midway and restored continues exactly as one never stopped.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sentio.core.errors import OptionError, excerpt
from sentio.core.seeding import MAX_SEED, rng_for
from sentio.features.engine import FeatureEngine
from sentio.features.inputs import BarInput
from sentio.features.ops.base import SEED_WEIGHT
from sentio.features.state import StreamState

F32_EPS = float(np.finfo(np.float32).eps)
# As ``data synth --seed``: seeds are recorded in JSON that other tools read as int64.


@dataclass(frozen=True)
class CheckResult:
    """One check: its name, whether it passed, and what was compared or where it broke."""

    name: str
    passed: bool
    detail: str


def same_bits(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Elementwise bit equality of float32 arrays (NaN equals the same NaN)."""
    return np.asarray(a, np.float32).view(np.int32) == np.asarray(b, np.float32).view(np.int32)


def stream_rows(
    engine: FeatureEngine,
    data: BarInput,
    start: int = 0,
    stop: int | None = None,
    stream: StreamState | None = None,
) -> np.ndarray:
    """Feed rows ``start:stop`` through a stream (a fresh one unless given), one at a time."""
    stream = stream or engine.stream()
    stop = len(data) if stop is None else stop
    out = np.empty((stop - start, len(engine.names)), dtype=np.float32)
    for r in range(start, stop):
        out[r - start] = stream.update_row(data.rows[r], int(data.segment[r]))
    return out


def check_stream(engine: FeatureEngine, data: BarInput, batch: np.ndarray) -> CheckResult:
    streamed = stream_rows(engine, data)
    equal = same_bits(streamed, batch)
    if equal.all():
        return CheckResult("stream == batch", True, f"{equal.size:,} values bit-identical")
    r, f = np.argwhere(~equal)[0]
    return CheckResult(
        "stream == batch",
        False,
        f"{int((~equal).sum()):,} values differ; first at row {r}, feature "
        f"{engine.names[f]!r}: stream {streamed[r, f]!r}, batch {batch[r, f]!r}",
    )


def check_prefix(
    engine: FeatureEngine, data: BarInput, batch: np.ndarray, samples: int, seed: int
) -> CheckResult:
    n = len(data)
    ends = np.unique(rng_for(seed, "features.check.prefix").integers(0, n, size=samples))
    for t in ends:
        row = engine.batch(data.slice(0, int(t) + 1))[-1]
        bad = ~same_bits(row, batch[t])
        if bad.any():
            f = int(np.flatnonzero(bad)[0])
            return CheckResult(
                "prefix (no look-ahead)",
                False,
                f"row {t}, feature {engine.names[f]!r}: prefix {row[f]!r}, full {batch[t, f]!r}",
            )
    return CheckResult("prefix (no look-ahead)", True, f"{len(ends)} random ends bit-identical")


def warmup_deviation(
    engine: FeatureEngine, data: BarInput, batch: np.ndarray, offset: int
) -> tuple[np.ndarray, np.ndarray, int]:
    """(largest deviation, tolerance) per feature of a run starting ``offset`` bars later, over
    the rows past its declared warm-up, and how many rows were compared."""
    later = engine.compute(data.slice(offset, len(data)))
    full = batch[offset:]
    names = engine.names
    worst = np.zeros(len(names))
    tol = np.zeros(len(names))
    compared = 0
    ends = np.append(later.segment_starts[1:], len(full))
    anchored = np.array([w.anchored for w in engine.program.warmups])
    for s, end in enumerate(ends):
        for f in range(len(names)):
            first = int(later.valid_from[s, f])
            if first < 0:
                continue
            a = full[first:end, f].astype(np.float64)
            b = later.values[first:end, f].astype(np.float64)
            if anchored[f]:  # a running total: only its changes are start-independent
                a, b = np.diff(a), np.diff(b)
            if len(a) == 0:
                continue
            scale = float(np.max(np.abs(full[first:end, f])))
            spread = float(np.ptp(full[first:end, f]))
            # A seed that decayed below SEED_WEIGHT moves a value by at most that share of the
            # series' spread; float32 rounding adds a few ulps of the largest value.
            tol[f] = max(tol[f], SEED_WEIGHT * spread + 8 * F32_EPS * scale)
            worst[f] = max(worst[f], float(np.max(np.abs(a - b))))
            compared = max(compared, end - first)
    return worst, tol, compared


def check_warmup(
    engine: FeatureEngine, data: BarInput, batch: np.ndarray, offsets: tuple[int, ...]
) -> CheckResult:
    margin, margin_name = 0.0, ""
    for offset in offsets:
        if offset >= len(data):
            continue
        worst, tol, compared = warmup_deviation(engine, data, batch, offset)
        bad = np.flatnonzero(worst > tol)
        if len(bad):
            f = int(bad[0])
            return CheckResult(
                "warm-up",
                False,
                f"start +{offset}: feature {engine.names[f]!r} deviates by {worst[f]:.3g} after "
                f"its warm-up (tolerance {tol[f]:.3g})",
            )
        ratio = worst / np.where(tol > 0, tol, np.inf)
        if ratio.max() >= margin:
            margin, margin_name = float(ratio.max()), engine.names[int(ratio.argmax())]
    shown = ", ".join(f"+{k}" for k in offsets if k < len(data))
    return CheckResult(
        "warm-up",
        True,
        f"starts {shown}: largest deviation {margin:.2g} of its tolerance ({margin_name})",
    )


def check_restore(engine: FeatureEngine, data: BarInput, batch: np.ndarray) -> CheckResult:
    half = len(data) // 2
    first = engine.stream()
    stream_rows(engine, data, 0, half, first)
    restored = StreamState.from_json(engine, first.to_json())
    rest = stream_rows(engine, data, half, len(data), restored)
    ok = bool(same_bits(rest, batch[half:]).all())
    detail = f"saved at row {half}, restored, continued to {len(data)}"
    return CheckResult("save / restore", ok, detail if ok else detail + ": values differ")


def check_seed(seed: int) -> None:
    """Refuse a ``--seed`` the generator cannot take (negative) or JSON readers cannot hold.

    >>> check_seed(-1)
    Traceback (most recent call last):
    ...
    sentio.core.errors.OptionError: --seed: must be 0 to 2**63 - 1, got -1
    """
    if not 0 <= seed <= MAX_SEED:
        raise OptionError(f"must be 0 to 2**63 - 1, got {excerpt(seed)}", flag="--seed")


def run_checks(
    engine: FeatureEngine,
    data: BarInput,
    *,
    samples: int = 20,
    offsets: tuple[int, ...] = (1, 97, 1500),
    seed: int = 0,
) -> list[CheckResult]:
    """All four checks on ``data`` (the prefix ends are drawn from ``seed``)."""
    check_seed(seed)
    batch = engine.batch(data)
    return [
        check_stream(engine, data, batch),
        check_prefix(engine, data, batch, samples, seed),
        check_warmup(engine, data, batch, offsets),
        check_restore(engine, data, batch),
    ]


__all__ = ["CheckResult", "check_seed", "run_checks", "same_bits", "stream_rows"]
