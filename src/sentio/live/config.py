"""``sentio live``'s settings: flags and an optional config file -> one checked LiveConfig.

A config file (``--config FILE``, TOML or JSON) holds the same settings as the flags, named
as the flags without their dashes (``max_daily_loss = 3``, ``feed = "replay:bars.parquet"``);
a flag given on the command line wins over the file. An unknown name, or a value that breaks
its rule, is refused as one line naming the file (or the flag) and the setting. The file is
read by ``sentio.core.settings`` against :data:`SETTINGS` (every command's config files follow
the same rules, docs/config.md).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from sentio.backtest import flags
from sentio.backtest.strattest import FILLS, SYMBOLS, StrattestConfig
from sentio.core.errors import OptionError, excerpt
from sentio.core.files import check_output, nearest_existing, writable
from sentio.core.hashing import canonical_json, sha256_hex
from sentio.core.settings import Setting, SettingsFile, read_settings_file
from sentio.data.segments import DEFAULT_MAX_GAP_MIN
from sentio.live.feeds import FeedSpec
from sentio.live.risk import RiskLimits
from sentio.strategy import RULES
from sentio.strategy.allocation import MODES

BROKERS = ("paper", "alpaca-paper")
# The settings a config file may hold (the flags without dashes) and their defaults.
DEFAULTS: dict[str, Any] = {
    "model": None,
    "feed": None,
    "broker": "paper",
    "history": None,
    "max_gap": DEFAULT_MAX_GAP_MIN,
    "blocks": None,
    "block_size": 480,
    "capital": 100_000.0,
    "fill": "next-open",
    "rule": "fitted",
    "allocation": "blend",
    "commission_per_share": 0.005,
    "commission_min": 1.0,
    "sec_fee_per_million": 27.80,
    "taf_per_share": 0.000166,
    "half_spread_bp": [],
    "max_gross_exposure": 3.0,
    "max_order_value": None,
    "max_orders_per_minute": 8,
    "max_daily_loss": None,
    "dry_run": False,
    "flatten_on_exit": True,
    "kill_file": None,
    "registry": None,
    "expire_after": None,
    "bar_store": None,
    "allow_in_sample": False,
    "poll": 1.0,
    "seed": 7,
}
FLAG_OF = {
    **{k: "--" + k.replace("_", "-") for k in DEFAULTS},
    "blocks_mode": "--blocks",
    "poll_s": "--poll",
    "risk.max_gross_exposure": "--max-gross-exposure",
    "risk.max_order_value": "--max-order-value",
    "risk.max_orders_per_minute": "--max-orders-per-minute",
    "risk.max_daily_loss": "--max-daily-loss",
    "flatten_on_exit": "--flatten-on-exit/--no-flatten-on-exit",
}


class LiveConfig(BaseModel):
    """Everything a live run depends on; ``trading`` is strattest's own config (capital, fill,
    costs, strategy, allocation, blocks), so a replay and a strattest run compare field by
    field and ``saudit verify`` replays a live run with strattest's checks."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    trading: StrattestConfig
    feed: str  # --feed: replay:FILE[@SPEED], csv-tail:FILE, jsonl:-, alpaca
    broker: str = Field("paper", pattern="^(paper|alpaca-paper)$")
    blocks_mode: bool = False  # replay strattest's blocks, each a fresh episode
    max_gap: int = Field(DEFAULT_MAX_GAP_MIN, ge=0, le=390)  # minutes; longer = new segment
    history: Path | None = None  # canonical Parquet of QQQ bars before the feed's first
    risk: RiskLimits = RiskLimits()
    dry_run: bool = False
    flatten_on_exit: bool = True
    kill_file: Path | None = None
    registry: Path | None = None  # serve the registry's current model, swapping when it moves
    expire_after: int | None = Field(None, ge=1, le=10_000)  # sessions past the model's data
    bar_store: Path | None = None  # a folder: every accepted bar, a Parquet file per session
    poll_s: float = Field(1.0, gt=0, le=60)  # seconds a feed waits before an idle tick

    def settings(self) -> dict[str, Any]:
        """What a restart must keep, flat (``trading.costs.commission_min``: value): strategy,
        costs, capital, feed kind, broker, limits, the segment rule. Not the model's path (its
        manifest hash is checked apart), a replay's speed, the kill file, the poll interval,
        --dry-run, the exit's flattening or the history file (read only at a fresh start)."""
        keep = self.model_dump(
            mode="json",
            exclude={
                "kill_file",
                "poll_s",
                "dry_run",
                "flatten_on_exit",
                "history",
                "registry",
                "bar_store",
            },
        )
        for name in ("model", "cache_dir", "config_file"):  # not what trades
            keep["trading"].pop(name, None)
        keep["feed"] = FeedSpec.parse(self.feed).kind
        return _flat(keep)

    def fingerprint(self) -> str:
        """A hash of :meth:`settings`."""
        return sha256_hex(canonical_json(self.settings()))[:16]

    @classmethod
    def from_settings(
        cls, settings: dict[str, Any], config_file: SettingsFile | None = None
    ) -> LiveConfig:
        """The config of the flag-named ``settings`` (DEFAULTS' keys), checked: a bad value
        raises OptionError naming its flag. ``config_file``: the --config file they came from,
        recorded with strattest's config (``trading.config_file``) in the audit.

        >>> LiveConfig.from_settings({**DEFAULTS, "feed": "jsonl:-"}).risk.max_orders_per_minute
        8
        >>> LiveConfig.from_settings({**DEFAULTS, "feed": "jsonl:-", "max_daily_loss": 120})
        Traceback (most recent call last):
        sentio.core.errors.OptionError: --max-daily-loss: Input should be less than 100, got 120
        """
        s = settings
        if s["feed"] is None:
            raise OptionError("give the feed, e.g. --feed replay:bars.parquet@max", flag="--feed")
        spec = FeedSpec.parse(str(s["feed"]))
        data = (spec.target,) if spec.kind == "replay" else ("builtin",)
        if spec.kind == "replay" and spec.target != "builtin":
            try:
                flags.data_files([spec.target])
            except OptionError as exc:
                raise OptionError(exc.detail, flag="--feed") from None
        if s["history"] is not None and spec.kind == "replay":
            raise OptionError(
                "a replay warms up on the bars before its first; --history is for the other "
                "feeds (csv-tail, jsonl, alpaca)",
                flag="--history",
            )
        if s["registry"] is not None and s["model"] is not None:
            raise OptionError(
                "the registry's current version is the model; give --model or --registry",
                flag="--registry",
            )
        if spec.kind == "replay" and s["broker"] != "paper":
            raise OptionError(
                "a replay of past bars trades through the paper broker only; alpaca-paper "
                "takes real-time bars (--feed alpaca)",
                flag="--broker",
            )
        if s["blocks"] is not None and spec.kind != "replay":
            raise OptionError(
                "--blocks replays strattest's blocks: give --feed replay:FILE", flag="--blocks"
            )
        costs = {
            "commission_per_share": s["commission_per_share"],
            "commission_min": s["commission_min"],
            "sec_fee_per_million": s["sec_fee_per_million"],
            "taf_per_share": s["taf_per_share"],
            "half_spread_bp": flags.half_spreads(list(s["half_spread_bp"] or []), SYMBOLS),
        }
        try:
            trading = StrattestConfig(
                model=flags.model_dir(Path(s["model"]) if s["model"] else None),
                data=data,
                blocks=1 if s["blocks"] is None else s["blocks"],
                block_size=s["block_size"],
                capital=s["capital"],
                fill=flags.choice("--fill", s["fill"], FILLS),
                seed=s["seed"],
                allow_in_sample=s["allow_in_sample"],
                strategy={"rule": flags.choice("--rule", s["rule"], RULES)},
                allocation=flags.choice("--allocation", s["allocation"], MODES),
                costs=costs,
                config_file=config_file,
            )
            return cls(
                trading=trading,
                feed=str(s["feed"]),
                broker=flags.choice("--broker", s["broker"], BROKERS),
                blocks_mode=s["blocks"] is not None,
                max_gap=s["max_gap"],
                history=Path(s["history"]) if s["history"] else None,
                risk=RiskLimits(
                    max_gross_exposure=s["max_gross_exposure"],
                    max_order_value=s["max_order_value"],
                    max_orders_per_minute=s["max_orders_per_minute"],
                    max_daily_loss=s["max_daily_loss"],
                ),
                dry_run=s["dry_run"],
                flatten_on_exit=s["flatten_on_exit"],
                kill_file=Path(s["kill_file"]) if s["kill_file"] else None,
                registry=Path(s["registry"]) if s["registry"] else None,
                expire_after=s["expire_after"],
                bar_store=Path(s["bar_store"]) if s["bar_store"] else None,
                poll_s=s["poll"],
            )
        except ValidationError as exc:
            raise option_error(exc) from None


def _flat(doc: dict, prefix: str = "") -> dict[str, Any]:
    """Nested settings as one level of dotted names.

    >>> _flat({"a": {"b": 1}, "c": [2]})
    {'a.b': 1, 'c': [2]}
    """
    out: dict[str, Any] = {}
    for key, value in doc.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(_flat(value, name + "."))
        else:
            out[name] = value
    return out


def check_places(model: Path, state: Path | None, audit: Path | None, config) -> None:
    """Refuse, before anything is written, a --state or --audit that would land on an input
    (a replay or history file) or inside the model's artifact folder (its manifest would no
    longer match, and every later run would refuse the model)."""
    artifact = Path(model).resolve()
    inputs = [p for p in (config.history, _replay_file(config.feed)) if p is not None]
    for flag, place in (("--state", state), ("--audit", audit), ("--bar-store", config.bar_store)):
        if place is None:
            continue
        where = Path(place).resolve()
        if where == artifact or artifact in where.parents:
            raise OptionError(
                f"{place} is inside the model's artifact folder {model}; write it elsewhere",
                flag=flag,
            )
    if audit is not None:
        check_output(audit, *inputs, flag="--audit")
    if state is not None:
        if Path(state).exists() and not Path(state).is_dir():
            raise OptionError(f"{state} is a file; give a folder", flag="--state")
        if not writable(state):
            where = nearest_existing(Path(state))
            why = "is a file" if not where.is_dir() else "cannot be written"
            raise OptionError(f"{state} cannot be made: {where} {why}", flag="--state")
        for path in inputs:
            if Path(state).resolve() == Path(path).resolve():
                raise OptionError(f"{state} is the input {path}; give a folder", flag="--state")


def _replay_file(feed: str) -> Path | None:
    spec = FeedSpec.parse(feed)
    return Path(spec.target) if spec.kind == "replay" and spec.target != "builtin" else None


def option_error(exc: ValidationError) -> OptionError:
    """The first failing field as one line naming its flag."""
    first = exc.errors()[0]
    loc = [str(p) for p in first.get("loc", ()) if p != "trading"]
    dotted = ".".join(loc)
    flag = FLAG_OF.get(dotted) or flags.FLAG_OF.get(dotted) or FLAG_OF.get(loc[-1] if loc else "")
    message = f"{first.get('msg', 'invalid')}, got {excerpt(first.get('input'))}"
    return OptionError(message, flag=flag or dotted or None)


def read_config_file(path: Path) -> dict[str, Any]:
    """The settings of a TOML or JSON config file (flag names without dashes), each known and
    of its flag's type (``blocks = true`` is refused, not one block)."""
    return read_settings_file(path, SETTINGS)


TEXT = {"model", "feed", "history", "kill_file", "registry", "bar_store", "broker", "fill",
        "rule", "allocation"}  # fmt: skip
WHOLE = {"max_gap", "blocks", "block_size", "max_orders_per_minute", "seed", "expire_after"}
BOOL = {"dry_run", "flatten_on_exit", "allow_in_sample"}
OPTIONAL = {"model", "history", "blocks", "max_order_value", "max_daily_loss", "kill_file",
            "registry", "expire_after", "bar_store"}  # fmt: skip


def _kind(name: str) -> str:
    if name in TEXT or name == "half_spread_bp":
        return "text"
    return "whole" if name in WHOLE else "bool" if name in BOOL else "number"


# The settings a file may hold: each flag's name without dashes, its flag and its type.
SETTINGS = {
    name: Setting(
        name,
        FLAG_OF[name],
        _kind(name),
        many=name == "half_spread_bp",
        optional=name in OPTIONAL,
        example='["QQQ=0.5", "TQQQ=1", "PSQ=1", "SQQQ=1"]' if name == "half_spread_bp" else "",
    )
    for name in DEFAULTS
}


__all__ = [
    "BROKERS",
    "DEFAULTS",
    "FLAG_OF",
    "LiveConfig",
    "SETTINGS",
    "check_places",
    "option_error",
    "read_config_file",
]
