"""Feature specs in the original Sentio JSON format: load, validate, name, hash.

A spec in the original format is accepted unchanged (docs/features.md): ``schema_version``
(``"1.0"``), ``features[]`` (``name``, ``op``, ``source``, ``window``, ``k``, ``fast``, ``slow``,
``signal``, ``d_period``), ``alignment_policy`` (``emit_from_index``, ``pad_value``), ``dtype``
and ``content_hash``; our extensions are a top-level ``description`` and a ``regimes`` block
(``sentio.features.regimes``: its REGIME columns come last). Any other key, a
parameter the op does not take, or a key written twice is refused: a typo such as ``"windw"``
otherwise left the default window in force without a word (issue 12, round 2). A feature without
``name`` is called ``op_source_window_k`` with absent parts empty. The hash is ``sha256:`` +
sha256 of the canonical JSON of the spec without ``content_hash``.

>>> spec = load_spec("feature_spec_55_minimal")
>>> len(spec.features), spec.names[:3], spec.emit_from
(55, ('close', 'logret', 'ema_2'), 64)
>>> spec.content_hash[:15]
'sha256:035c5227'
"""

from __future__ import annotations

import difflib
import json
import unicodedata
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, ValidationError

from sentio.core.errors import SpecError, excerpt
from sentio.core.hashing import DuplicateKeyError, content_hash, unique_keys
from sentio.features.regimes import RegimeBlock
from sentio.features.registry import REGISTRY, SOURCE_ALIASES, SOURCES, Op, resolve_source

SHIPPED = ("feature_spec_55_minimal", "intraday_default")
INTEGER_PARAMS = ("window", "fast", "slow", "signal", "d_period")
# Bounds on every size a spec controls, checked before anything is allocated (issue 12: an EMA
# window of 1e12 ran for 12 minutes, 2**64 crashed, a file nested 100,000 deep overflowed the
# parser). A window of 100,000 bars is 256 sessions of minute bars: a year; the state of an op
# grows with its window, so a larger one would cost memory without a use.
MAX_WINDOW = 100_000
MAX_FEATURES = 1_000  # the original specs have 22 and 55
MAX_DEPTH = 16  # of JSON nesting; a spec is 4 deep (spec, features, feature, value)
MAX_NAME = 200  # characters of a feature name
MAX_SPEC_BYTES = 1_000_000  # the shipped 55-feature spec is 5 kB
# A Bollinger k beyond 100 standard deviations never touches the price; <= 0 inverts the band.
K_RANGE = (0.0, 100.0)
# Values are float32 (``dtype``): a larger pad_value would become infinity.
MAX_PAD = float(np.finfo(np.float32).max)
SCHEMA_VERSIONS = ("1.0",)
# Every key a spec may hold; anything else is a typo or a format we do not read.
SPEC_KEYS = (
    "schema_version",
    "features",
    "alignment_policy",
    "dtype",
    "content_hash",
    "description",
    "regimes",
)
FEATURE_KEYS = ("name", "op", "source", *INTEGER_PARAMS, "k")
POLICY_KEYS = ("emit_from_index", "pad_value")
# Columns `features compute` writes beside the features: a feature of that name would overwrite
# one (a feature named "ts" replaced the bar times with EMA prices).
RESERVED_NAMES = ("ts", "symbol", "segment", "ready")
# Unicode categories a name may not hold: control, surrogate (cannot be written as UTF-8),
# format (invisible), line and paragraph separators (names are printed one per line).
_BAD_NAME_CATEGORIES = {"Cc", "Cs", "Cf", "Zl", "Zp"}


class _FeatureModel(BaseModel):
    """One entry of ``features[]`` as the original wrote it (types only; rules below)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    name: str | None = None
    op: str
    source: str | None = None
    window: int | None = None
    k: float | int | None = None
    fast: int | None = None
    slow: int | None = None
    signal: int | None = None
    d_period: int | None = None


class _PolicyModel(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    emit_from_index: int = 0
    pad_value: float | int = 0.0


class _SpecModel(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    schema_version: str = "1.0"
    features: list[_FeatureModel]
    alignment_policy: _PolicyModel = _PolicyModel()
    dtype: str = "float32"
    content_hash: str | None = None
    description: str | None = None
    regimes: dict | None = None


@dataclass(frozen=True)
class Feature:
    """One resolved feature: its op, canonical source and every parameter (defaults filled)."""

    name: str
    op: Op
    source: str
    params: dict[str, float | int]


@dataclass(frozen=True)
class FeatureSpec:
    """A validated spec. ``raw`` is the JSON as given; ``content_hash`` is computed from it."""

    raw: dict[str, Any]
    features: tuple[Feature, ...]
    emit_from: int
    pad_value: float
    origin: str
    regimes: RegimeBlock | None = None  # the regime columns' labeller (features/regimes.py)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.features)

    @property
    def content_hash(self) -> str:
        return spec_hash(self.raw)

    def with_regimes(self, block: RegimeBlock | None) -> FeatureSpec:
        """This spec with ``block`` as its ``regimes`` block (None: without one)."""
        raw = {k: v for k, v in self.raw.items() if k not in ("content_hash", "regimes")}
        if block is not None:
            raw["regimes"] = block.to_json_dict()
        return parse_spec(raw, origin=self.origin)

    def to_json(self) -> str:
        """The spec as written into artifacts: the raw JSON plus its ``content_hash``."""
        body = {k: v for k, v in self.raw.items() if k != "content_hash"}
        body["content_hash"] = self.content_hash
        return json.dumps(body, indent=2, sort_keys=True) + "\n"


def spec_hash(raw: dict[str, Any]) -> str:
    """``sha256:`` + hex sha256 of the canonical JSON of ``raw`` without ``content_hash``."""
    return content_hash({k: v for k, v in raw.items() if k != "content_hash"})


def default_name(entry: dict[str, Any]) -> str:
    """``op_source_window_k`` with absent parts empty (docs/features.md).

    >>> default_name({"op": "EMA", "source": "close", "window": 20})
    'EMA_close_20_'
    >>> default_name({"op": "BOLLINGER_UPPER", "window": 20, "k": 2.5})
    'BOLLINGER_UPPER__20_2.5'
    """
    parts = [entry.get("op"), entry.get("source"), entry.get("window"), entry.get("k")]
    return "_".join(
        "" if p is None else format(p, "g") if isinstance(p, float) else str(p) for p in parts
    )


def load_spec(spec: str | Path) -> FeatureSpec:
    """Load a spec from a JSON file, or a shipped one by name (see ``SHIPPED``)."""
    path = Path(spec)
    name = path.name.removesuffix(".json")
    if not path.exists() and name in SHIPPED and path.parent == Path("."):
        text = resources.files("sentio.features").joinpath(f"specs/{name}.json").read_text()
        return parse_spec(json.loads(text), origin=f"{name} (shipped)")
    if not path.exists():
        raise SpecError(
            f"no such spec file; shipped specs are {', '.join(SHIPPED)}", file=str(path)
        )
    if not path.is_file():
        raise SpecError(
            "is not a file (a directory, FIFO or device); give a spec JSON file", file=str(path)
        )
    if path.stat().st_size > MAX_SPEC_BYTES:
        raise SpecError(
            f"is {path.stat().st_size:,} bytes; a spec is at most {MAX_SPEC_BYTES:,}",
            file=str(path),
        )
    try:
        raw = json.loads(path.read_text(encoding="utf-8-sig"), object_pairs_hook=unique_keys)
    except DuplicateKeyError as exc:
        raise SpecError(
            f"key {excerpt(exc.args[0])} is written twice in one object; JSON readers disagree "
            "on which one counts: keep one",
            file=str(path),
        ) from None
    # ValueError covers JSONDecodeError and an integer beyond Python's 4,300-digit limit.
    except (UnicodeDecodeError, ValueError) as exc:
        raise SpecError(f"not valid JSON ({excerpt(str(exc), 120)})", file=str(path)) from exc
    except RecursionError as exc:  # the C parser gives up near 1,000 levels
        raise SpecError(
            f"JSON nested too deeply; a spec is at most {MAX_DEPTH} levels", file=str(path)
        ) from exc
    return parse_spec(raw, origin=str(path))


def json_depth(value: Any) -> int:
    """Nesting depth of parsed JSON, without recursion (so any depth can be measured).

    >>> json_depth({"features": [{"op": "EMA"}]}), json_depth(3)
    (3, 0)
    """
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, depth)
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
    return deepest


def parse_spec(raw: Any, origin: str = "<spec>") -> FeatureSpec:
    """Validate a spec given as parsed JSON; every broken rule raises :class:`SpecError`."""
    if not isinstance(raw, dict):
        raise SpecError("a spec is a JSON object with a 'features' list", file=origin)
    depth = json_depth(raw)
    if depth > MAX_DEPTH:
        raise SpecError(
            f"JSON nested {depth} levels deep; a spec is at most {MAX_DEPTH}", file=origin
        )
    if isinstance(raw.get("features"), list) and len(raw["features"]) > MAX_FEATURES:
        raise SpecError(
            f"{len(raw['features']):,} features; a spec has at most {MAX_FEATURES:,}",
            file=origin,
            field="features",
        )
    _check_keys(raw, origin)
    try:
        model = _SpecModel.model_validate(raw)
    except ValidationError as exc:
        raise _from_pydantic(exc, origin) from None
    if model.schema_version not in SCHEMA_VERSIONS:
        raise SpecError(
            f"schema_version {excerpt(model.schema_version)} is not one this version reads "
            f"({', '.join(SCHEMA_VERSIONS)})",
            file=origin,
            field="schema_version",
        )
    if model.dtype != "float32":
        raise SpecError(
            f"dtype must be 'float32', got {excerpt(model.dtype)}", file=origin, field="dtype"
        )
    if not model.features and model.regimes is None:
        raise SpecError("'features' is empty", file=origin, field="features")
    policy = model.alignment_policy
    if not 0 <= policy.emit_from_index <= MAX_WINDOW:
        raise SpecError(
            f"alignment_policy.emit_from_index must be 0 to {MAX_WINDOW:,}, "
            f"got {excerpt(policy.emit_from_index)}",
            file=origin,
            field="alignment_policy.emit_from_index",
        )
    if not abs(policy.pad_value) <= MAX_PAD:  # also refuses NaN
        raise SpecError(
            f"alignment_policy.pad_value must be finite and fit float32 (|x| <= {MAX_PAD:.4g}), "
            f"got {policy.pad_value}",
            file=origin,
            field="alignment_policy.pad_value",
        )
    if raw.get("content_hash") is not None and raw["content_hash"] != spec_hash(raw):
        raise SpecError(
            f"content_hash {excerpt(raw['content_hash'])} does not match the spec "
            f"({spec_hash(raw)}); "
            "the file was edited after it was hashed: remove content_hash or restore the spec",
            file=origin,
            field="content_hash",
        )
    features, seen = [], {}
    for index, entry in enumerate(raw["features"]):
        feature = _resolve(entry, index, origin)
        if feature.name in seen:
            raise SpecError(
                f"duplicate name {excerpt(feature.name)} (also feature {seen[feature.name]})",
                file=origin,
                feature=index,
                field="name",
            )
        seen[feature.name] = index
        features.append(feature)
    block = _regimes(model.regimes, origin)
    if block is not None:
        for column in block.columns:
            if column in seen:
                raise SpecError(
                    f"feature {excerpt(column)} has the name of a column the regimes block adds; "
                    "rename it",
                    file=origin,
                    feature=seen[column],
                    field="name",
                )
            features.append(Feature(column, REGISTRY["REGIME"], "close", block.params))
    return FeatureSpec(
        raw=raw,
        features=tuple(features),
        emit_from=policy.emit_from_index,
        pad_value=float(policy.pad_value),
        origin=origin,
        regimes=block,
    )


def _regimes(raw: dict | None, origin: str) -> RegimeBlock | None:
    """The validated ``regimes`` block, or a SpecError naming its first broken field."""
    if raw is None:
        return None
    try:
        return RegimeBlock.model_validate(raw)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(p) for p in ("regimes", *error["loc"]))
        raise SpecError(error["msg"], file=origin, field=where) from None


def _check_keys(raw: dict[str, Any], origin: str) -> None:
    """Refuse a key the format does not define, suggesting the one it resembles."""
    _known(raw, SPEC_KEYS, origin, None, "")
    if isinstance(raw.get("alignment_policy"), dict):
        _known(raw["alignment_policy"], POLICY_KEYS, origin, None, "alignment_policy.")
    for index, entry in enumerate(raw.get("features") or []):
        if isinstance(entry, dict):
            _known(entry, FEATURE_KEYS, origin, index, "")


def _known(obj: dict[str, Any], keys: tuple[str, ...], origin, feature, prefix: str) -> None:
    for key in obj:
        if key not in keys:
            close = difflib.get_close_matches(str(key), keys, n=1, cutoff=0.6)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise SpecError(
                f"unknown key {excerpt(key)}{hint}; known keys: {', '.join(keys)}",
                file=origin,
                feature=feature,
                field=prefix + str(key)[:40],
            )


def _check_name(name: str, index: int, origin: str) -> None:
    """A name is a column in Parquet, a line in tables and a key in JSON: printable, bounded,
    and none of the columns ``features compute`` writes beside the features."""
    if len(name) > MAX_NAME:
        problem = f"a name is at most {MAX_NAME} characters, got {len(name):,}"
    elif name in RESERVED_NAMES:
        problem = (
            f"{name!r} is reserved: `features compute` writes a column of that name "
            f"({', '.join(RESERVED_NAMES)}); rename the feature"
        )
    elif any(unicodedata.category(c) in _BAD_NAME_CATEGORIES for c in name):
        problem = f"a name holds no control or surrogate characters, got {excerpt(name)}"
    else:
        return
    raise SpecError(problem, file=origin, feature=index, field="name")


def _resolve(entry: dict[str, Any], index: int, origin: str) -> Feature:
    op = REGISTRY.get(entry["op"])
    if entry["op"] == "REGIME":
        raise SpecError(
            "REGIME columns come from the spec's 'regimes' block, not from 'features' "
            "(docs/regimes.md)",
            file=origin,
            feature=index,
            field="op",
        )
    if op is None:
        raise SpecError(
            f"unknown op {excerpt(entry['op'])}; known ops: {', '.join(sorted(REGISTRY))}",
            file=origin,
            feature=index,
            field="op",
        )
    source = resolve_source(entry.get("source"))
    if source is None:
        known = ", ".join([*SOURCES, *SOURCE_ALIASES])
        raise SpecError(
            f"unknown source {excerpt(entry['source'])}; known sources: {known}",
            file=origin,
            feature=index,
            field="source",
        )
    for key in (*INTEGER_PARAMS, "k"):
        if key in entry and key not in op.params:
            takes = ", ".join(op.params) or "no parameters"
            raise SpecError(
                f"op {op.name} does not take '{key}' (it takes {takes}); remove it",
                file=origin,
                feature=index,
                field=key,
            )
    params: dict[str, float | int] = {}
    for key, default in op.params.items():
        value = entry.get(key, default)
        if value is None:
            raise SpecError(
                f"op {op.name} needs '{key}' (a positive integer); it has no default",
                file=origin,
                feature=index,
                field=key,
            )
        if key in INTEGER_PARAMS and not 0 < value <= MAX_WINDOW:
            raise SpecError(
                f"'{key}' must be a positive integer up to {MAX_WINDOW:,} bars, "
                f"got {excerpt(value)}",
                file=origin,
                feature=index,
                field=key,
            )
        if key == "k" and not K_RANGE[0] < value <= K_RANGE[1]:  # also refuses NaN
            raise SpecError(
                f"'k' must be > {K_RANGE[0]:g} and at most {K_RANGE[1]:g} (standard deviations), "
                f"got {excerpt(value)}",
                file=origin,
                feature=index,
                field="k",
            )
        params[key] = value
    if op.name.startswith("MACD") and params["fast"] >= params["slow"]:
        raise SpecError(
            f"MACD needs fast < slow, got fast {params['fast']} and slow {params['slow']}",
            file=origin,
            feature=index,
            field="fast",
        )
    name = entry.get("name")
    if name == "":
        raise SpecError(
            "the name is empty; give one or leave 'name' out for the default "
            f"{excerpt(default_name(entry))}",
            file=origin,
            feature=index,
            field="name",
        )
    name = name or default_name(entry)
    _check_name(name, index, origin)
    return Feature(name=name, op=op, source=source, params=params)


def _from_pydantic(exc: ValidationError, origin: str) -> SpecError:
    """The first pydantic complaint as a SpecError naming the feature and the field."""
    error = exc.errors()[0]
    loc = list(error["loc"])
    feature = None
    if len(loc) >= 2 and loc[0] == "features" and isinstance(loc[1], int):
        feature = loc[1]
        loc = loc[2:]
    field = ".".join(str(part) for part in loc) or None
    value = error.get("input")
    shown = "" if isinstance(value, dict | list) else f", got {excerpt(value)}"
    return SpecError(f"{error['msg']}{shown}", file=origin, feature=feature, field=field)


__all__ = [
    "MAX_WINDOW",
    "RESERVED_NAMES",
    "SHIPPED",
    "Feature",
    "FeatureSpec",
    "default_name",
    "json_depth",
    "load_spec",
    "parse_spec",
]
