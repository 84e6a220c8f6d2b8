"""strattest's command-line values -> checked config pieces, each refusal naming its flag.

The command (``sentio strattest``) holds no logic: it hands its resolved settings (the flags,
or a ``--config`` file's values named as the flags) to ``StrattestConfig.from_settings`` and
``from_flags``, which use these helpers so that every bad value fails before any work, as one
line that names the flag, the rule and the value given (issue 12: ``--rule fited``, ``--fill
clos``, ``--half-spread-bp QQQ`` and ``--capital -5`` printed tracebacks).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from sentio.core.errors import OptionError, excerpt

# Config field (pydantic's error location, dotted) -> the flag that sets it.
FLAG_OF = {
    "model": "--model",
    "data": "--data",
    "blocks": "--blocks",
    "block_size": "--block-size",
    "capital": "--capital",
    "fill": "--fill",
    "seed": "--seed",
    "allow_in_sample": "--allow-in-sample",
    "cache_dir": "--cache/--no-cache",
    "strategy.rule": "--rule",
    "costs.commission_per_share": "--commission-per-share",
    "costs.commission_min": "--commission-min",
    "costs.sec_fee_per_million": "--sec-fee-per-million",
    "costs.taf_per_share": "--taf-per-share",
    "costs.half_spread_bp": "--half-spread-bp",
}
MAX_HALF_SPREAD_BP = 1000.0  # 10 %: a wider half-spread is a typo, not a market
# strattest --mode walk-forward's settings (its flags without dashes) -> the keyword of
# WalkForwardConfig.from_flags that takes it
WALK_FORWARD_SAME = (  # named alike in both
    "train_window retrain_every warm_start shadow_sessions gate_margin epochs sequence_length "
    "d_model nhead num_layers horizon learning_rate batch_size threads feature_spec builtin_days "
    "signal_strength signal_flip_every cpu_capability"
)
WALK_FORWARD = {
    **{name: name for name in WALK_FORWARD_SAME.split()},
    "preset": "preset_name",
    "label_deadzone_bp": "deadzone_bp",
}


def option_error(exc: ValidationError) -> OptionError:
    """The first failing field of a config as one line naming its flag.

    >>> from pydantic import BaseModel, Field
    >>> class C(BaseModel):
    ...     capital: float = Field(1.0, gt=0)
    >>> try:
    ...     C(capital=-5)
    ... except ValidationError as exc:
    ...     print(option_error(exc))
    --capital: Input should be greater than 0, got -5
    """
    first = exc.errors()[0]
    loc = [str(part) for part in first.get("loc", ())]
    flag = None
    for n in range(len(loc), 0, -1):  # the longest known prefix: costs.half_spread_bp.QQQ
        flag = FLAG_OF.get(".".join(loc[:n]))
        if flag:
            break
    more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    message = f"{first.get('msg', 'invalid')}, got {excerpt(first.get('input'))}{more}"
    return OptionError(message, flag=flag or ".".join(loc) or None)


def choice(flag: str, value: str, allowed: Iterable[str]) -> str:
    """``value`` if it is one of ``allowed``; else an OptionError listing them.

    >>> choice("--fill", "clos", ("next-open", "close"))
    Traceback (most recent call last):
    sentio.core.errors.OptionError: --fill: must be one of next-open, close; got 'clos'
    """
    allowed = tuple(allowed)
    if value not in allowed:
        raise OptionError(f"must be one of {', '.join(allowed)}; got {excerpt(value)}", flag=flag)
    return value


def half_spreads(items: list[str], symbols: tuple[str, ...]) -> dict[str, float] | None:
    """``--half-spread-bp SYMBOL=BP`` values -> {symbol: bp}, one for each of ``symbols``;
    None when none are given (the default model: half a tick at the median price).

    >>> half_spreads(["QQQ=0.5", "TQQQ=1", "PSQ=2", "SQQQ=1.5"], ("QQQ", "TQQQ", "PSQ", "SQQQ"))
    {'QQQ': 0.5, 'TQQQ': 1.0, 'PSQ': 2.0, 'SQQQ': 1.5}
    >>> half_spreads(["QQQ"], ("QQQ",))
    Traceback (most recent call last):
    sentio.core.errors.OptionError: --half-spread-bp: expected SYMBOL=BP (e.g. QQQ=0.5); got 'QQQ'
    """
    flag = "--half-spread-bp"
    if not items:
        return None
    spreads: dict[str, float] = {}
    for item in items:
        symbol, sep, text = item.partition("=")
        if not sep or not symbol or not text.strip():
            raise OptionError(f"expected SYMBOL=BP (e.g. QQQ=0.5); got {excerpt(item)}", flag=flag)
        if symbol not in symbols:
            raise OptionError(
                f"unknown symbol {excerpt(symbol)}; give one of {', '.join(symbols)}", flag=flag
            )
        if symbol in spreads:
            raise OptionError(f"{symbol} is given twice", flag=flag)
        try:
            value = float(text)
        except ValueError:
            raise OptionError(
                f"{symbol}: the basis points must be a number; got {excerpt(text)}", flag=flag
            ) from None
        if not math.isfinite(value) or not 0 <= value <= MAX_HALF_SPREAD_BP:
            raise OptionError(
                f"{symbol}: must be between 0 and {MAX_HALF_SPREAD_BP:g} bp; got {excerpt(text)}",
                flag=flag,
            )
        spreads[symbol] = value
    missing = [s for s in symbols if s not in spreads]
    if missing:
        raise OptionError(
            f"give all of {', '.join(symbols)} (the allocation may trade each); "
            f"missing {', '.join(missing)}",
            flag=flag,
        )
    return spreads


def exists(path: Path, flag: str) -> bool:
    """Whether ``path`` exists; a name the system refuses to look up (longer than its limit)
    is refused in one short line naming ``flag``.

    >>> exists(Path("x" * 5000), "--model")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    sentio.core.errors.OptionError: --model: 'xxx...x... (5002 characters): File name too long
    """
    try:
        return path.exists()
    except OSError as exc:
        raise OptionError(f"{excerpt(str(path))}: {exc.strerror or exc}", flag=flag) from None


def model_dir(path: Path | None) -> Path | None:
    """``--model``: an existing artifact directory (one with a manifest.json), or None."""
    if path is None:
        return None
    if not exists(path, "--model"):
        raise OptionError(f"{path} does not exist; give an artifact directory", flag="--model")
    if not path.is_dir():
        raise OptionError(f"{path} is not a directory; give an artifact directory", flag="--model")
    if not (path / "manifest.json").is_file():
        raise OptionError(
            f"{path} has no manifest.json, so it is not a model artifact "
            "(train one with `sentio train`)",
            flag="--model",
        )
    return path


def data_files(items: list[str]) -> tuple[str, ...]:
    """``--data``: ``builtin`` alone, or existing files (each at most once)."""
    if not items or list(items) == ["builtin"]:
        return ("builtin",)
    if "builtin" in items:
        raise OptionError(
            "builtin (the model's own market) cannot be mixed with files; give one or the other",
            flag="--data",
        )
    for item in items:
        path = Path(item)
        if not exists(path, "--data"):
            raise OptionError(f"{excerpt(item, 1000)} does not exist", flag="--data")
        if not path.is_file():
            raise OptionError(
                f"{excerpt(item, 1000)} is not a file; give canonical Parquet files", flag="--data"
            )
        if items.count(item) > 1:
            raise OptionError(f"{excerpt(item)} is given twice", flag="--data")
    return tuple(items)


def walk_forward_flags(settings: Mapping[str, Any]) -> dict[str, Any]:
    """The walk-forward settings given, as WalkForwardConfig.from_flags's keywords (an unset
    one, None, or ``warm_start = false``, is not given: the run's default).

    >>> walk_forward_flags({"preset": "quick", "label_deadzone_bp": 2.0, "warm_start": False,
    ...                     "epochs": None, "capital": 5e4})
    {'preset_name': 'quick', 'deadzone_bp': 2.0}
    """
    return {
        WALK_FORWARD[name]: value
        for name, value in settings.items()
        if name in WALK_FORWARD and value is not None and value is not False
    }


def walk_forward_flag(name: str) -> str:
    """The flag of a walk-forward setting (or of from_flags's keyword for it).

    >>> walk_forward_flag("deadzone_bp"), walk_forward_flag("preset_name")
    ('--label-deadzone-bp', '--preset')
    """
    setting = next((k for k, v in WALK_FORWARD.items() if v == name), name)
    return "--" + setting.replace("_", "-")


__all__ = [
    "FLAG_OF",
    "WALK_FORWARD",
    "choice",
    "data_files",
    "exists",
    "half_spreads",
    "model_dir",
    "option_error",
    "walk_forward_flag",
    "walk_forward_flags",
]
