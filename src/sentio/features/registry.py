"""The op registry: every op the engine knows, its inputs, parameters, warm-up and doc.

``sentio features list`` and docs/ops.md are generated from here (architecture rule 4).

>>> REGISTRY["EMA"].params
{'window': 20}
>>> resolve_source("hlc")
'close'
"""

from __future__ import annotations

from sentio.features.ops import oscillators, prices, regime, session, volatility, volume
from sentio.features.ops.base import Op, Warmup

OPS: tuple[Op, ...] = tuple(
    sorted(
        [
            *prices.OPS,
            *volatility.OPS,
            *oscillators.OPS,
            *volume.OPS,
            *session.OPS,
            *regime.OPS,
        ],
        key=lambda op: op.code,
    )
)
REGISTRY: dict[str, Op] = {op.name: op for op in OPS}
if len(REGISTRY) != len(OPS) or len({op.code for op in OPS}) != len(OPS):
    raise RuntimeError("two ops share a name or a code")  # a programming error, caught by tests

# Sources a feature may read (docs/ops.md, conventions); index = slot in the engine step.
SOURCES: tuple[str, ...] = ("open", "high", "low", "close", "volume", "logret")
# The original's aliases: each means `close`.
SOURCE_ALIASES: dict[str, str] = {
    alias: "close" for alias in ("hlc", "hl", "ohlc", "ohlcv", "close_volume", "hlcv")
}
DEFAULT_SOURCE = "close"
# First valid row of each source: `logret` is 0 by definition at row 0.
SOURCE_WARMUP: dict[str, int] = {name: (1 if name == "logret" else 0) for name in SOURCES}


def resolve_source(source: str | None) -> str | None:
    """The canonical source for a spec's ``source`` value (None when it is not a source)."""
    if source is None:
        return DEFAULT_SOURCE
    if source in SOURCES:
        return source
    return SOURCE_ALIASES.get(source)


def warmup_text(warm: Warmup) -> str:
    """A warm-up in words, for tables and docs.

    >>> warmup_text(Warmup(20, sessions=1))
    'row 20, 1 session start'
    """
    parts = [f"row {warm.bars}"]
    if warm.sessions:
        parts.append(f"{warm.sessions} session start{'s' if warm.sessions > 1 else ''}")
    if warm.anchored:
        parts.append("level depends on the segment start")
    return ", ".join(parts)


EXAMPLE_WINDOW = 10  # shown for ops whose window has no default
FIELD_LETTERS = {"o": "open", "h": "high", "l": "low", "c": "close", "v": "volume"}


def _inputs_text(inputs: str) -> str:
    """The bar fields an op reads, in words.

    >>> _inputs_text("hlc")
    'high, low, close'
    """
    if inputs == "src":
        return "source (default close)"
    if inputs == "clock":
        return "bar time"
    return ", ".join(FIELD_LETTERS[letter] for letter in inputs)


def describe_ops() -> list[dict[str, str]]:
    """One row per op for `sentio features list` and docs/ops.md: inputs, parameters (with
    defaults), the rows the op writes as 0, and from which row it is valid at its defaults."""
    rows = []
    for op in OPS:
        params = {k: (EXAMPLE_WINDOW if v is None else v) for k, v in op.params.items()}
        shown = ", ".join(
            f"{k}={v}" if v is not None else f"{k} (required)" for k, v in op.params.items()
        )
        source = "close" if op.inputs == "src" else None
        warm = op.warmup(params, SOURCE_WARMUP[source] if source else 0)
        example = (
            ""
            if all(v is not None for v in op.params.values())
            else (f" (window {EXAMPLE_WINDOW})")
        )
        rows.append(
            {
                "op": op.name,
                "inputs": _inputs_text(op.inputs),
                "parameters": shown or "-",
                "zeros": op.zeros,
                "valid_from": warmup_text(warm) + example,
                "origin": op.origin,
                "definition": op.doc,
            }
        )
    return rows


__all__ = [
    "DEFAULT_SOURCE",
    "EXAMPLE_WINDOW",
    "OPS",
    "REGISTRY",
    "SOURCES",
    "SOURCE_ALIASES",
    "SOURCE_WARMUP",
    "Op",
    "Warmup",
    "describe_ops",
    "resolve_source",
    "warmup_text",
]
