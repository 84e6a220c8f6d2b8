"""What a report's sources must hold, checked where they are read, before anything is drawn.

A run folder's files and an audit's payloads can be edited by hand (an audit's only with its
chain rehashed). Each reader (``sources`` for a strattest or walk-forward folder, ``audited``
for an audited run) passes what it read through one :class:`Source`, so a field of the wrong
type, a table without a block, a return that is not a finite number, an equity that is not
positive or a probability outside [0, 1] is one OptionError line naming the file (or the
audited run), the field and the rule: never a Traceback, nor a numpy warning, when the page is
drawn. A NaN probability is allowed: the warm-up bars have none.

>>> Source("summary.json", "--run").number({"config": {"capital": 5}}, "config.capital")
5.0
>>> Source("summary.json", "--run").mapping({"config": "x"}, "config")
Traceback (most recent call last):
...
sentio.core.errors.OptionError: --run: summary.json: config must be an object, not a string; \
was it written by another sentio version, or edited?
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, NoReturn

import numpy as np
import pandas as pd

from sentio.core.errors import OptionError
from sentio.report.data import BLOCK_COLUMNS, SYMBOLS

EDITED = "was it written by another sentio version, or edited?"
TYPES = {dict: "an object", list: "a list", str: "a string", bool: "true/false"}
BLOCK_NUMBERS = [c for c in BLOCK_COLUMNS if c not in ("start", "end")] + ["single_return_pct"]
BAR_NUMBERS = (
    "ts",
    "block",
    "probability",
    "exposure",
    "equity",
    *(f"close_{s}" for s in SYMBOLS),
    *(f"shares_{s}" for s in SYMBOLS),
)
_ABSENT = object()


@dataclass(frozen=True)
class Source:
    """One file (or audited run) being read: ``where`` names it in every message, ``flag`` is
    the flag that named it (``--run``, ``--audit``). A field is a dotted path in a JSON
    document (``config.strategy``)."""

    where: str
    flag: str

    def refuse(self, field: str, rule: str) -> NoReturn:
        raise OptionError(f"{self.where}: {field} {rule}; {EDITED}", flag=self.flag)

    def value(self, doc: dict, path: str, optional: bool = False) -> Any:
        """The value at ``path``; None when it is absent or null and ``optional``."""
        value: Any = doc
        for part in path.split("."):
            value = value.get(part, _ABSENT) if isinstance(value, dict) else _ABSENT
            if value is _ABSENT:
                if optional:
                    return None
                self.refuse(path, "is missing")
        if value is None and not optional:
            self.refuse(path, "is null")
        return value

    def typed(self, doc: dict, path: str, kind, optional: bool = False) -> Any:
        """The value at ``path``, an instance of ``kind`` (true/false is not a number)."""
        value = self.value(doc, path, optional)
        wrong = not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool)
        if value is not None and wrong:
            self.refuse(path, f"must be {TYPES.get(kind, 'a number')}, not {_kind(value)}")
        return value

    def mapping(self, doc: dict, path: str, optional: bool = False) -> dict | None:
        return self.typed(doc, path, dict, optional)

    def text(self, doc: dict, path: str, optional: bool = False) -> str | None:
        return self.typed(doc, path, str, optional)

    def number(self, doc: dict, path: str, *, positive: bool = False) -> float:
        """A finite number (> 0 with ``positive``)."""
        value = float(self.typed(doc, path, int | float))
        if not math.isfinite(value) or (positive and value <= 0):
            kind = "a positive finite number" if positive else "a finite number"
            self.refuse(path, f"must be {kind}, not {value}")
        return value

    def numbers(self, doc: dict, path: str, count: int) -> list[float]:
        """A list of ``count`` numbers (the bands rule's four levels)."""
        values = self.typed(doc, path, list)
        if len(values) != count or not all(_number(v) for v in values):
            self.refuse(path, f"must be a list of {count} numbers")
        return [float(v) for v in values]

    def strings(self, doc: dict, path: str) -> list[str]:
        """A list of strings (absent or null: empty)."""
        values = self.typed(doc, path, list, optional=True) or []
        if not all(isinstance(v, str) for v in values):
            self.refuse(path, "must be a list of strings")
        return values

    def records(self, doc: dict, path: str, key: str) -> list[dict]:
        """A list of objects, each with ``key`` (a walk-forward run's folds)."""
        values = self.typed(doc, path, list)
        for i, record in enumerate(values):
            if not isinstance(record, dict) or key not in record:
                self.refuse(f"{path}[{i}]", f"must be an object with {key!r}")
        return values

    def figures(self, doc: dict, path: str, optional: bool = False) -> dict[str, dict]:
        """Run name -> its figures (summary, costs)."""
        runs = self.mapping(doc, path, optional) or {}
        self.runs(runs, path)
        return runs

    def runs(self, runs: Any, field: str) -> None:
        """``runs``: run name -> figures, each a number, null, true/false, a string or a list
        of them (an interval); ``days`` a number."""
        if not isinstance(runs, dict):
            self.refuse(field, f"must be an object, not {_kind(runs)}")
        for name, figures in runs.items():
            if not isinstance(figures, dict):
                self.refuse(f"{field}.{name}", f"must be an object, not {_kind(figures)}")
            for key, value in figures.items():
                if not _scalar(value) and not (
                    isinstance(value, list) and all(_scalar(v) for v in value)
                ):
                    self.refuse(f"{field}.{name}.{key}", f"must be a figure, not {_kind(value)}")
            if not (figures.get("days") is None or _number(figures["days"])):
                self.refuse(f"{field}.{name}.days", "must be a number")

    def verdict(self, doc: dict, path: str) -> dict | None:
        """None, or a verdict (``metrics.Verdict.to_dict``): its text, mean and interval."""
        judged = self.mapping(doc, path, optional=True)
        if judged is None:
            return None
        self.text(doc, f"{path}.text", optional=True)
        self.figure(doc, f"{path}.mean_pct")
        interval = self.typed(doc, f"{path}.ci95_pct", list, optional=True)
        if interval is not None and (len(interval) != 2 or not all(map(_figure, interval))):
            self.refuse(f"{path}.ci95_pct", "must be a list of two numbers (or nulls)")
        return judged

    def figure(self, doc: dict, path: str) -> float | None:
        """A number or null (absent: null)."""
        value = self.value(doc, path, optional=True)
        if not _figure(value):
            self.refuse(path, f"must be a number or null, not {_kind(value)}")
        return value

    def regimes(self, doc: dict, path: str) -> dict | None:
        """None, or ``strattest --by-regime``'s report: regime -> run -> figures."""
        report = self.mapping(doc, path, optional=True)
        if report is None:
            return None
        self.mapping(doc, f"{path}.labeller", optional=True)
        for name, runs in (self.mapping(doc, f"{path}.regimes", optional=True) or {}).items():
            self.runs(runs, f"{path}.regimes.{name}")
        return report

    def blocks(self, frame: pd.DataFrame, unit: str = "block") -> pd.DataFrame:
        """A block table (``report.data.BLOCK_COLUMNS``): at least one row, numbers where
        numbers belong, every return finite."""
        if frame.empty:
            self.refuse(f"the {unit} table", f"holds no {unit} (a run trades at least one)")
        self.columns(frame, ["block", "return_pct"], BLOCK_NUMBERS)
        if not frame["block"].is_unique:
            self.refuse("column block", f"names a {unit} twice")
        self.rule(frame, "return_pct", np.isfinite, "must be a finite number")
        for column in BLOCK_NUMBERS:
            if column in frame:
                self.rule(frame, column, lambda v: ~np.isinf(v), "must not be infinite")
        return frame

    def bars(self, frame: pd.DataFrame) -> pd.DataFrame:
        """A per-bar table (strattest's bars.parquet columns, ``p_stream`` optional): at least
        one bar, a positive equity and closes, a probability in [0, 1] or NaN."""
        if frame.empty:
            self.refuse("the bar table", "holds no bar")
        self.columns(frame, BAR_NUMBERS, [*BAR_NUMBERS, "p_stream"])
        for column in ("ts", "block"):
            if not pd.api.types.is_integer_dtype(frame[column]):
                self.refuse(f"column {column}", "must hold whole numbers")
        positive = ("equity", *(f"close_{s}" for s in SYMBOLS))
        for column in positive:
            self.rule(frame, column, lambda v: np.isfinite(v) & (v > 0), "must be positive")
        for column in ("exposure", *(f"shares_{s}" for s in SYMBOLS)):
            self.rule(frame, column, np.isfinite, "must be a finite number")
        for column in ("probability", "p_stream"):
            if column in frame:
                self.rule(frame, column, _probability, "must lie in [0, 1] (or be empty)")
        return frame

    def columns(self, frame: pd.DataFrame, required, numeric) -> None:
        """The ``required`` columns present; the ``numeric`` ones that are, numbers."""
        for column in required:
            if column not in frame:
                self.refuse(f"column {column}", "is missing")
        for column in numeric:
            if column in frame and not _numeric(frame[column]):
                self.refuse(f"column {column}", f"must hold numbers, not {frame[column].dtype}")

    def rule(self, frame: pd.DataFrame, column: str, ok, what: str) -> None:
        """Refuse the first row of ``column`` where ``ok(values)`` is false."""
        values = frame[column].to_numpy(np.float64)
        bad = np.flatnonzero(~ok(values))
        if len(bad):
            row = int(bad[0])
            self.refuse(f"column {column}", f"{what} (row {row}: {float(values[row])})")


def _probability(values: np.ndarray) -> np.ndarray:
    """In [0, 1], or NaN: a warm-up bar has no probability."""
    return np.isnan(values) | ((values >= 0) & (values <= 1))


def _scalar(value) -> bool:
    return value is None or isinstance(value, int | float | str | bool)


def _figure(value) -> bool:
    return value is None or _number(value)


def _number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _numeric(series: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)


def _kind(value) -> str:
    if value is None:
        return "null"
    return next((name for kind, name in TYPES.items() if isinstance(value, kind)), "a number")


__all__ = ["EDITED", "Source"]
