"""Reading an artifact's JSON files safely, and the rules every value of model.meta.json obeys.

Every JSON file of an artifact goes through :func:`load_json`: bounded in size and nesting, UTF-8
text, and every string (keys included) valid text, so that a hostile file is one error naming
it, never a ``RecursionError`` or a ``UnicodeEncodeError`` at print time (issue 12).
:func:`meta_problems` then checks the values the loaders and the strategy read: a NaN threshold
or a zero horizon is refused, not run.

>>> text_problem({"a": ["ok", "T\\ud800"]})
"'a[1]': holds U+D800, a lone surrogate or control character; strings must be plain text"
>>> meta_problems({"thresholds": {"long": 0.4, "short": 0.6}}, only=("thresholds",))
['thresholds: short 0.6 must not exceed long 0.4 (short if p <= short, long if p >= long)']
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from pathlib import Path

import pandas as pd

from sentio.core.errors import ArtifactError, excerpt
from sentio.core.hashing import DuplicateKeyError, unique_keys
from sentio.model.config import LIMITS

MAX_JSON_BYTES = 16 << 20  # the largest real file (model.meta.json) is ~100 KB
MAX_JSON_DEPTH = 32  # the deepest real path is 5 levels (thresholds.validation_range.first_ts)
MAX_FEATURES = 10_000
# lone surrogates (a JSON "\ud800" escape), C0/C1 control characters and DEL: none is text
_NOT_TEXT = re.compile("[\ud800-\udfff\x00-\x1f\x7f-\x9f]")


def load_json(path: Path) -> object:
    """The JSON document in ``path``; ArtifactError naming the file if it is larger than
    ``MAX_JSON_BYTES``, not UTF-8, not JSON, nested deeper than ``MAX_JSON_DEPTH`` or holds a
    string that is not text."""
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_JSON_BYTES + 1)
    except OSError as exc:
        raise ArtifactError(f"cannot read ({exc.strerror or exc})", file=str(path)) from exc
    if len(raw) > MAX_JSON_BYTES:
        raise ArtifactError(
            f"is larger than {MAX_JSON_BYTES >> 20} MiB; an artifact's JSON files are small",
            file=str(path),
        )
    try:
        doc = json.loads(raw.decode("utf-8"), object_pairs_hook=unique_keys)
    except DuplicateKeyError as exc:
        raise ArtifactError(
            f"key {excerpt(str(exc), 80)} is written twice (JSON would keep the last silently)",
            file=str(path),
        ) from None
    except UnicodeDecodeError as exc:
        raise ArtifactError(
            f"not readable JSON (not UTF-8 text: byte {exc.start})", file=str(path)
        ) from None
    except RecursionError:
        raise ArtifactError(
            f"not readable JSON (nested deeper than {MAX_JSON_DEPTH} levels)", file=str(path)
        ) from None
    except ValueError as exc:
        raise ArtifactError(
            f"not readable JSON ({excerpt(str(exc), 120)})", file=str(path)
        ) from None
    problem = text_problem(doc)
    if problem:
        raise ArtifactError(problem, file=str(path))
    return doc


def _walk(doc: object) -> Iterator[tuple[str, int, object]]:
    """(path, depth, value) of every value and key, without recursion (depth is bounded by
    the caller, not by Python's stack)."""
    stack = [("", 0, doc)]
    while stack:
        path, depth, value = stack.pop()
        yield path, depth, value
        if isinstance(value, dict):
            for key, child in value.items():
                yield f"{path}.{key}" if path else str(key), depth + 1, key
                stack.append((f"{path}.{key}" if path else str(key), depth + 1, child))
        elif isinstance(value, list):
            stack.extend((f"{path}[{i}]", depth + 1, v) for i, v in enumerate(value))


def text_problem(doc: object) -> str | None:
    """Why ``doc`` is not plain data (too deep, a string that is not text), or None."""
    for path, depth, value in _walk(doc):
        where = excerpt(path, 80) if path else "the document"
        if depth > MAX_JSON_DEPTH:
            return f"not readable JSON (nested deeper than {MAX_JSON_DEPTH} levels at {where})"
        if isinstance(value, str):
            bad = _NOT_TEXT.search(value)
            if bad:
                return (
                    f"{where}: holds U+{ord(bad.group()):04X}, a lone surrogate or control "
                    "character; strings must be plain text"
                )
    return None


# --- the values of model.meta.json ------------------------------------------------------------


def is_number(value: object) -> bool:
    """A JSON number (a bool is not one, though Python counts it as an int)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def finite(value: object) -> bool:
    """A JSON number that is finite as a float (NaN, Infinity and 10**400 are not)."""
    try:
        return is_number(value) and math.isfinite(float(value))
    except OverflowError:
        return False


def _int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _time(value: object) -> bool:
    """An ISO 8601 time with an offset (what model info converts to New York)."""
    if not isinstance(value, str):
        return False
    try:
        return pd.Timestamp(value).tzinfo is not None
    except (ValueError, OverflowError):
        return False


def _shape(meta: dict) -> list[str]:
    problems = []
    highs = {
        "feature_count": MAX_FEATURES,
        "sequence_length": LIMITS["seq_len"],
        "d_model": LIMITS["d_model"],
        "nhead": LIMITS["nhead"],
        "num_layers": LIMITS["num_layers"],
    }
    for key, high in highs.items():
        if not 1 <= meta[key] <= high:
            problems.append(f"{key} must be in [1, {high}], got {excerpt(meta[key])}")
    if not problems and meta["d_model"] % meta["nhead"]:
        problems.append(f"d_model {meta['d_model']} is not divisible by nhead {meta['nhead']}")
    config = meta.get("config")
    if config is not None:
        pairs = {"d_model": "d_model", "nhead": "nhead", "num_layers": "num_layers"}
        pairs["sequence_length"] = "seq_len"
        if not isinstance(config, dict) or any(
            config.get(ours) != meta[key] for key, ours in pairs.items()
        ):
            problems.append("config disagrees with d_model, nhead, num_layers, sequence_length")
    if not 0 <= meta["seed"] < 2**63:
        problems.append(f"seed must be in [0, 2**63), got {excerpt(meta['seed'])}")
    if not _time(meta["saved_at"]):
        problems.append(
            f"saved_at must be an ISO time with an offset, got {excerpt(meta['saved_at'])}"
        )
    return problems


def _expects(meta: dict) -> list[str]:
    expects, problems = meta["expects"], []
    if expects["dtype"] != "float32":
        problems.append(f"expects.dtype must be 'float32', got {excerpt(expects['dtype'])}")
    if expects["output"] != "logit":
        problems.append(f"expects.output must be 'logit', got {excerpt(expects['output'])}")
    if (
        expects["input_dim"] != meta["feature_count"]
        or len(expects["feature_names"]) != (meta["feature_count"])
    ):
        problems.append("expects.input_dim and expects.feature_names disagree with feature_count")
    if expects["seq_len"] != meta["sequence_length"]:
        problems.append("expects.seq_len disagrees with sequence_length")
    return problems


def _label(meta: dict) -> list[str]:
    label, problems = meta["label"], []
    horizon, deadzone = label.get("horizon_bars"), label.get("deadzone_bp")
    if not _int(horizon) or not 1 <= horizon <= 100_000:
        problems.append(f"label.horizon_bars must be an integer >= 1, got {excerpt(horizon)}")
    if not finite(deadzone) or deadzone < 0:
        problems.append(f"label.deadzone_bp must be a finite number >= 0, got {excerpt(deadzone)}")
    return problems


def _thresholds(meta: dict) -> list[str]:
    """The fitted rule's thresholds (sentio.strategy.signal): probabilities, short <= long."""
    thresholds, problems = meta["thresholds"], []
    long_at, short_at = thresholds.get("long"), thresholds.get("short")
    for name, value in (("long", long_at), ("short", short_at)):
        if not finite(value) or not 0 <= value <= 1:
            problems.append(
                f"thresholds.{name} must be a probability in [0, 1], got {excerpt(value)}"
            )
    if not problems and short_at > long_at:
        problems.append(
            f"thresholds: short {short_at:g} must not exceed long {long_at:g} "
            "(short if p <= short, long if p >= long)"
        )
    return problems


def _splits(meta: dict) -> list[str]:
    """train < validation < test in time, each first <= last (strattest starts after the
    validation end; model info prints each part)."""
    splits = meta["data"].get("splits")
    if not isinstance(splits, dict):
        return [f"data.splits must be an object, got {excerpt(splits)}"]
    spans = []
    for part in ("train", "validation", "test"):
        r = splits.get(part)
        ok = isinstance(r, dict) and all(_int(r.get(k)) for k in ("first_ts", "last_ts", "samples"))
        if not ok or not all(_time(r.get(k)) for k in ("first_time", "last_time")):
            return [
                f"data.splits.{part} must hold first_ts, last_ts, samples, first_time, last_time"
            ]
        spans.append((part, r["first_ts"], r["last_ts"]))
    ends = [bound for _, first, last in spans for bound in (first, last)]
    if ends != sorted(ends) or spans[0][2] == spans[1][1] or spans[1][2] == spans[2][1]:
        return ["data.splits: train, validation and test must follow each other in time"]
    return []


def _normalization(meta: dict) -> list[str]:
    norm = meta.get("normalization")
    if norm is None:
        return []
    count = meta["feature_count"]
    mean = norm.get("mean") if isinstance(norm, dict) else None
    std = norm.get("std") if isinstance(norm, dict) else None
    ok = isinstance(mean, list) and isinstance(std, list) and len(mean) == len(std) == count
    if not ok or not all(finite(v) for v in mean) or not all(finite(v) and v > 0 for v in std):
        return [f"normalization.mean/std must be {count} finite numbers each, every std > 0"]
    clip = norm.get("clip")
    if not finite(clip) or not 0 < clip <= 1e6:  # TFAConfig.clip's range
        return [f"normalization.clip must be in (0, 1e6], got {excerpt(clip)}"]
    return []


def _feature_ranges(meta: dict) -> list[str]:
    """Each feature's training min and max (serving counts bars whose features leave them;
    artifacts trained before issue 16 have none)."""
    ranges = meta.get("feature_ranges")
    if ranges is None:
        return []
    count = meta["feature_count"]
    low = ranges.get("min") if isinstance(ranges, dict) else None
    high = ranges.get("max") if isinstance(ranges, dict) else None
    ok = isinstance(low, list) and isinstance(high, list) and len(low) == len(high) == count
    if not ok or not all(
        finite(a) and finite(b) and a <= b for a, b in zip(low, high, strict=True)
    ):
        return [f"feature_ranges.min/max must be {count} finite numbers each, every min <= max"]
    return []


RULES = {
    "shape": _shape,
    "expects": _expects,
    "label": _label,
    "thresholds": _thresholds,
    "splits": _splits,
    "normalization": _normalization,
    "feature_ranges": _feature_ranges,
}


def meta_problems(meta: dict, only: tuple[str, ...] = tuple(RULES)) -> list[str]:
    """What is wrong with the values of model.meta.json (its keys and their JSON types are
    already checked); empty when nothing is."""
    return [problem for name in only for problem in RULES[name](meta)]


__all__ = [
    "MAX_JSON_BYTES",
    "MAX_JSON_DEPTH",
    "finite",
    "is_number",
    "load_json",
    "meta_problems",
    "text_problem",
]
