"""Nested run documents (model.meta.json, summary.json, walkforward.json, an audit's run_start)
as one level of dotted keys: what a config table, a comparison and MLflow params and metrics
are made of.

>>> flatten({"model": {"d_model": 16, "nhead": 2}, "data": ["builtin"], "seed": 3})
{'model.d_model': 16, 'model.nhead': 2, 'data': ['builtin'], 'seed': 3}
>>> numbers({"strategy": {"mean_rpb_pct": -0.5, "rpb_ci95_pct": [-0.9, -0.1], "ok": True}})
{'strategy.mean_rpb_pct': -0.5, 'strategy.rpb_ci95_pct.low': -0.9, 'strategy.rpb_ci95_pct.high': -0.1}
"""  # noqa: E501

from __future__ import annotations

import json
import math
from typing import Any


def flatten(doc: dict, prefix: str = "") -> dict[str, Any]:
    """Nested dicts as dotted keys; lists and scalars are kept whole as values (a list of
    values is one setting, such as ``data`` or ``bands``)."""
    out: dict[str, Any] = {}
    for key, value in doc.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            out.update(flatten(value, f"{name}."))
        else:
            out[name] = value
    return out


def is_number(value: object) -> bool:
    """A finite int or float that is not a bool.

    >>> is_number(1.5), is_number(True), is_number(float("nan")), is_number("1")
    (True, False, False, False)
    """
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return math.isfinite(value)


def numbers(doc: dict, prefix: str = "") -> dict[str, float]:
    """Every finite number in ``doc`` under its dotted key; an interval (a list of two
    numbers) as ``.low`` and ``.high``, a longer list of numbers by position. Text, booleans,
    None (an undefined figure in JSON) and NaN are left out."""
    out: dict[str, float] = {}
    for key, value in flatten(doc, prefix).items():
        if is_number(value):
            out[key] = value
        elif isinstance(value, list | tuple) and value and all(map(is_number, value)):
            names = ("low", "high") if len(value) == 2 else map(str, range(len(value)))
            out.update({f"{key}.{n}": v for n, v in zip(names, value, strict=False)})
    return out


def text(value: Any, limit: int | None = None) -> str:
    """A value as one short line: a list or dict as compact JSON, None as ``-``; cut to
    ``limit`` characters (ending ``...``) when given.

    >>> text([0.3, 0.45]), text(None), text("x" * 10, limit=6)
    ('[0.3,0.45]', '-', 'xxx...')
    """
    if value is None:
        shown = "-"
    elif isinstance(value, list | tuple | dict):
        shown = json.dumps(value, separators=(",", ":"), sort_keys=True, default=str)
    else:
        shown = str(value)
    if limit is not None and len(shown) > limit:
        shown = shown[: limit - 3] + "..."
    return shown


__all__ = ["flatten", "is_number", "numbers", "text"]
