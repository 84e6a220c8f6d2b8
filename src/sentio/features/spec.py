"""Feature specs in the original Sentio JSON format: load, validate, name, hash.

A spec is accepted unchanged (docs/features.md): ``schema_version``, ``features[]``
(``name``, ``op``, ``source``, ``window``, ``k``, ``fast``, ``slow``, ``signal``, ``d_period``),
``alignment_policy`` (``emit_from_index``, ``pad_value``) and ``dtype``; other keys are kept
and hashed but not interpreted. A feature without ``name`` is called ``op_source_window_k``
with absent parts empty. The hash is ``sha256:`` + sha256 of the canonical JSON of the spec
without ``content_hash``.

>>> spec = load_spec("feature_spec_55_minimal")
>>> len(spec.features), spec.names[:3], spec.emit_from
(55, ('close', 'logret', 'ema_2'), 64)
>>> spec.content_hash[:15]
'sha256:035c5227'
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from sentio.core.errors import SpecError, excerpt
from sentio.core.hashing import content_hash
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


class _FeatureModel(BaseModel):
    """One entry of ``features[]`` as the original wrote it (types only; rules below)."""

    model_config = ConfigDict(extra="allow", strict=True)

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
    model_config = ConfigDict(extra="allow", strict=True)

    emit_from_index: int = 0
    pad_value: float | int = 0.0


class _SpecModel(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)

    schema_version: str = "1.0"
    features: list[_FeatureModel]
    alignment_policy: _PolicyModel = _PolicyModel()
    dtype: str = "float32"
    content_hash: str | None = None


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

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.features)

    @property
    def content_hash(self) -> str:
        return spec_hash(self.raw)

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
        raise SpecError("is not a file (a directory?); give a spec JSON file", file=str(path))
    if path.stat().st_size > MAX_SPEC_BYTES:
        raise SpecError(
            f"is {path.stat().st_size:,} bytes; a spec is at most {MAX_SPEC_BYTES:,}",
            file=str(path),
        )
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
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
    try:
        model = _SpecModel.model_validate(raw)
    except ValidationError as exc:
        raise _from_pydantic(exc, origin) from None
    if model.dtype != "float32":
        raise SpecError(
            f"dtype must be 'float32', got {excerpt(model.dtype)}", file=origin, field="dtype"
        )
    if not model.features:
        raise SpecError("'features' is empty", file=origin, field="features")
    policy = model.alignment_policy
    if not 0 <= policy.emit_from_index <= MAX_WINDOW:
        raise SpecError(
            f"alignment_policy.emit_from_index must be 0 to {MAX_WINDOW:,}, "
            f"got {excerpt(policy.emit_from_index)}",
            file=origin,
            field="alignment_policy.emit_from_index",
        )
    if not math.isfinite(policy.pad_value):
        raise SpecError(
            f"alignment_policy.pad_value must be finite, got {policy.pad_value}",
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
    return FeatureSpec(
        raw=raw,
        features=tuple(features),
        emit_from=policy.emit_from_index,
        pad_value=float(policy.pad_value),
        origin=origin,
    )


def _resolve(entry: dict[str, Any], index: int, origin: str) -> Feature:
    op = REGISTRY.get(entry["op"])
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
        if key == "k" and not math.isfinite(value):
            raise SpecError(
                f"'k' must be finite, got {value}", file=origin, feature=index, field="k"
            )
        params[key] = value
    if op.name.startswith("MACD") and params["fast"] >= params["slow"]:
        raise SpecError(
            f"MACD needs fast < slow, got fast {params['fast']} and slow {params['slow']}",
            file=origin,
            feature=index,
            field="fast",
        )
    name = entry.get("name") or default_name(entry)
    if len(name) > MAX_NAME:
        raise SpecError(
            f"a name is at most {MAX_NAME} characters, got {len(name):,}",
            file=origin,
            feature=index,
            field="name",
        )
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
    "SHIPPED",
    "Feature",
    "FeatureSpec",
    "default_name",
    "json_depth",
    "load_spec",
    "parse_spec",
]
