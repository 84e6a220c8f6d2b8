"""``strattest``: the TFA strategy over the last N blocks, with costs, baselines and metrics.

A block is ``block_size`` consecutive bars that starts flat with fresh capital and ends flat;
features and probabilities are computed over the whole series (the sequence context), so a
block is warmed up by the bars before it without trading in them, and the adaptive rule's
history is filled from the 250 probabilities before it. Historical mode uses only bars outside
the model's own data (after its recorded validation end, or before its first training bar:
:func:`out_of_sample`) unless ``allow_in_sample`` is set (then every output says IN-SAMPLE).

The probabilities are computed before the blocks are chosen, and the blocks are the last ones
from the first eligible bar that HAS a probability on (issue 16: a block of 470 warm-up bars
counted as a 0 % block); a bar inside a block without one (a gap in the data starts a new
segment, whose window fills again) is counted per block as warm-up. Costs are reported whole
(commissions, regulatory fees and the spread paid, ``costs.split_fill_costs``), and every run
ends with a verdict (``metrics.verdict``): the net mean per block with its interval beside
buy-and-hold's, and whether it excludes zero.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from sentio.backtest import flags
from sentio.backtest.costs import COST_PARTS, CostModel, split_fill_costs
from sentio.backtest.execution import (
    F_BAR,
    F_CASH,
    F_FEES,
    F_INSTRUMENT,
    F_PRICE,
    F_QTY,
    F_SHARES,
    O_BAR,
    O_INSTRUMENT,
    O_QTY,
    O_TARGET,
    simulate,
)
from sentio.backtest.metrics import (
    CostFigures,
    SampleSize,
    Summary,
    Verdict,
    block_turnover,
    cost_figures,
    paired_difference,
    sample_size,
    summarize,
    verdict,
)
from sentio.core.clock import NEW_YORK
from sentio.core.errors import OptionError, SentioError
from sentio.core.settings import SettingsFile
from sentio.data import read_bars
from sentio.data.synth.generate import SIBLINGS, SynthConfig, generate, leveraged
from sentio.features.inputs import clock_columns
from sentio.infer import SequenceContext
from sentio.infer.ranges import passes
from sentio.model.artifact import load_verified, model_rows
from sentio.strategy import RULES, StrategyConfig, StrategyState, allocate, run_strategy
from sentio.strategy.signal import minutes_left

SYMBOLS = ("QQQ", "TQQQ", "PSQ", "SQQQ")
FILLS = ("next-open", "close")
ARTIFACTS = Path("artifacts/TFA")  # where a run without --model looks for the newest artifact


class BacktestError(SentioError):
    """A backtest that cannot run as asked (no model, too little out-of-sample data, ...)."""


class StrattestConfig(BaseModel):
    """Everything one strattest run depends on (printed and written into --json)."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    model: Path | None = None  # artifact directory; None: the newest under artifacts/TFA
    data: tuple[str, ...] = ("builtin",)  # canonical Parquet files, or builtin
    blocks: int = Field(5, ge=1, le=100_000)  # blocks to run, the last ones of the eligible bars
    block_size: int = Field(480, ge=2, le=1_000_000)  # bars per block
    # fresh capital per block, $; at least MIN_CAPITAL, and make_plan also checks that it buys
    # one share of each instrument (1e-300 ran a block with no fill and exit 0)
    capital: float = Field(100_000.0, ge=100.0, le=1e12)
    fill: str = Field("next-open", pattern="^(next-open|close)$")  # close is optimistic
    costs: CostModel = CostModel()
    strategy: StrategyConfig = StrategyConfig()
    allocation: str = Field("blend", pattern="^(blend|leveraged_only|unleveraged_only)$")
    seed: int = Field(7, ge=0, lt=2**63)  # bootstrap of the metrics, simulated siblings
    allow_in_sample: bool = False  # use bars before the validation end (banner IN-SAMPLE)
    cache_dir: Path | None = Path(".sentio-cache")  # probabilities cache (None: off)
    # the --config file the settings came from (path, sha256); recorded only when one was used,
    # so a run without one writes the same bytes as before there were config files
    config_file: SettingsFile | None = Field(None, exclude_if=lambda v: v is None)

    @classmethod
    def from_flags(
        cls,
        *,
        model: Path | None = None,
        data: list[str] | tuple[str, ...] = (),
        blocks: int = 5,
        block_size: int = 480,
        capital: float = 100_000.0,
        fill: str = "next-open",
        rule: str = "fitted",
        seed: int = 7,
        allow_in_sample: bool = False,
        cache: bool = True,
        commission_per_share: float = 0.005,
        commission_min: float = 1.0,
        sec_fee_per_million: float = 27.80,
        taf_per_share: float = 0.000166,
        half_spread_bp: list[str] | tuple[str, ...] = (),
    ) -> StrattestConfig:
        """The config of ``sentio strattest``'s flags, checked before any work: a bad value
        raises :class:`~sentio.core.errors.OptionError` naming its flag.

        >>> StrattestConfig.from_flags(blocks=2, rule="bands").strategy.rule
        'bands'
        >>> StrattestConfig.from_flags(capital=-5)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        sentio.core.errors.OptionError: --capital: Input should be greater than or equal to 100...
        """
        costs = {
            "commission_per_share": commission_per_share,
            "commission_min": commission_min,
            "sec_fee_per_million": sec_fee_per_million,
            "taf_per_share": taf_per_share,
            "half_spread_bp": flags.half_spreads(list(half_spread_bp), SYMBOLS),
        }
        try:  # nested dicts, so that pydantic's error location names the field (costs.x)
            return cls(
                model=flags.model_dir(model),
                data=flags.data_files(list(data)),
                blocks=blocks,
                block_size=block_size,
                capital=capital,
                fill=flags.choice("--fill", fill, FILLS),
                seed=seed,
                allow_in_sample=allow_in_sample,
                cache_dir=Path(".sentio-cache") if cache else None,
                strategy={"rule": flags.choice("--rule", rule, RULES)},
                costs=costs,
            )
        except ValidationError as exc:
            raise flags.option_error(exc) from None

    @classmethod
    def from_settings(
        cls, settings: Mapping[str, Any], config_file: SettingsFile | None = None
    ) -> StrattestConfig:
        """The config of strattest's settings: its flags without dashes, as ``--config`` and
        ``--show-config`` name them (:data:`CONFIG_SETTINGS`); an absent or unset (None) one takes
        its default. Checked as :meth:`from_flags` checks the flags.

        >>> c = StrattestConfig.from_settings({"blocks": 2, "rule": "bands", "cache": False})
        >>> c.blocks, c.strategy.rule, c.cache_dir, c.block_size
        (2, 'bands', None, 480)
        """
        given = {k: v for k, v in settings.items() if v is not None and k in CONFIG_SETTINGS}
        config = cls.from_flags(
            **{k: v for k, v in given.items() if k not in ("model", "data", "half_spread_bp")},
            model=Path(given["model"]) if "model" in given else None,
            data=list(given.get("data", ())),
            half_spread_bp=list(given.get("half_spread_bp", ())),
        )
        if config_file is None:
            return config
        return config.model_copy(update={"config_file": config_file})


# strattest's settings that make its config (the keyword arguments of from_flags)
CONFIG_SETTINGS = tuple(
    name for name in inspect.signature(StrattestConfig.from_flags).parameters if name != "cls"
)


@dataclass
class StrattestResult:
    config: StrattestConfig
    model: Path
    in_sample: bool
    blocks_asked: int
    blocks_run: int
    simulated: dict[str, bool]
    data_range: tuple[str, str]
    summary: dict[str, Summary]  # strategy, buy_and_hold_qqq, flat
    per_block: pd.DataFrame
    per_bar: pd.DataFrame  # block bars: probability, decision, weights, shares, closes, equity
    fills: pd.DataFrame  # ts (bar it filled in), symbol, qty, price, fees, cash and shares after
    orders: pd.DataFrame  # ts (the bar it was decided at), symbol, qty, target
    market: pd.DataFrame  # every QQQ bar the probabilities were computed over
    inputs: dict = field(default_factory=dict)  # the model and data, and who chose them
    cache: dict = field(default_factory=dict)  # what the probability cache did (hits, rejected)
    costs: dict[str, CostFigures] = field(default_factory=dict)  # per run, costs whole
    samples: dict[str, SampleSize] = field(default_factory=dict)  # per run, its trading days
    verdict: Verdict | None = None  # the strategy's net mean per block vs buy-and-hold's
    runs: dict[str, Run] = field(default_factory=dict)  # per run, its traded rows (pooling)
    inputs_range: dict | None = None  # the context's range_report(): inputs beyond training


def inputs_of(config: StrattestConfig, model: Path) -> dict[str, str]:
    """The model and data a run uses and where each came from: a run never uses a default
    without saying so (every header, JSON and error names them and the flag to change them).

    >>> inputs_of(StrattestConfig(), Path("artifacts/TFA/v1"))["model_from"]
    'the newest artifact under artifacts/TFA, as no --model was given'
    """
    builtin = config.data == ("builtin",)
    return {
        "model": str(model),
        "model_from": "--model"
        if config.model is not None
        else f"the newest artifact under {ARTIFACTS}, as no --model was given",
        "data": ", ".join(config.data),
        "data_from": "the model's own built-in market, regenerated from its recorded settings; "
        "--data FILE.parquet gives real bars"
        if builtin
        else "--data",
    }


def describe_inputs(inputs: dict[str, str]) -> str:
    """One line naming the model and the data and where each came from."""
    return (
        f"model {inputs['model']} ({inputs['model_from']}); "
        f"data {inputs['data']} ({inputs['data_from']})"
    )


def newest_artifact(root: Path = ARTIFACTS) -> Path:
    """The most recently written artifact under ``root`` (by its saved_at, then its name)."""
    found = sorted(p.parent for p in root.glob("*/manifest.json")) if root.exists() else []
    if not found:
        raise BacktestError(
            f"no artifact under {root}; train one (`sentio train --quick`) or give --model DIR"
        )
    return max(found, key=lambda p: (p.stat().st_mtime, p.name))


def load_market(config: StrattestConfig, meta: dict) -> tuple[pd.DataFrame, dict, dict]:
    """QQQ rows, (open, close) per instrument aligned to them, and which ones are simulated."""
    tables, simulated = market_tables(config, meta)
    return tables["QQQ"], prices_of(tables), simulated


def market_tables(config: StrattestConfig, meta: dict) -> tuple[dict[str, pd.DataFrame], dict]:
    """Every instrument's bars on QQQ's times (a sibling the data lacks simulated from QQQ,
    docs/architecture.md section 7) and which ones are simulated: what strattest trades and
    what ``sentio live --feed replay:`` replays."""
    if config.data == ("builtin",):
        recorded = meta["data"].get("synth")
        synth = SynthConfig(**recorded) if recorded else SynthConfig(seed=config.seed)
        market = generate(synth)
        tables = {s: market.bars[s].of(s) for s in SYMBOLS}
        return tables, {s: True for s in SYMBOLS}
    tables, marked = {}, {}
    for name in config.data:
        bars = read_bars(name)
        for symbol in bars.symbols:
            if symbol in SYMBOLS:
                tables[symbol] = bars.of(symbol)
                # a file's own mark (the built-in market written by `data synth`) is kept
                marked[symbol] = bool((bars.meta.get("simulated") or {}).get(symbol, False))
    if "QQQ" not in tables:
        raise BacktestError(
            f"no QQQ bars in {list(config.data)}; the model trades QQQ's probability"
        )
    qqq = tables["QQQ"]
    simulated = {s: s not in tables or marked[s] for s in SYMBOLS}
    session = clock_columns(qqq["ts"].to_numpy(np.int64))[1]
    new_day = np.r_[True, session[1:] != session[:-1]]
    for sib in SIBLINGS:
        if sib.symbol not in tables:  # docs/architecture.md section 7: simulated from QQQ, labelled
            frame = leveraged(qqq, new_day, sib, SynthConfig(seed=config.seed))
            tables[sib.symbol] = frame.assign(ts=qqq["ts"].to_numpy())
    for symbol, frame in tables.items():
        aligned = frame.set_index("ts").reindex(qqq["ts"])
        if aligned["close"].isna().any():
            missing = int(aligned["close"].isna().sum())
            raise BacktestError(
                f"{symbol} lacks {missing} of QQQ's bars; align the files first "
                "(`sentio data align`)"
            )
        tables[symbol] = aligned.reset_index()
    return tables, simulated


def prices_of(tables: dict[str, pd.DataFrame]) -> dict[str, np.ndarray]:
    """(N, 4) open and close arrays of the instruments in SYMBOLS order."""
    return {
        "open": np.column_stack([tables[s]["open"].to_numpy(np.float64) for s in SYMBOLS]),
        "close": np.column_stack([tables[s]["close"].to_numpy(np.float64) for s in SYMBOLS]),
    }


def choose_blocks(eligible: np.ndarray, blocks: int, size: int) -> tuple[np.ndarray, int]:
    """Block id per bar (-1 outside): the last ``blocks`` full blocks of the eligible bars, a
    block never spanning two stretches of them (bars before and after the model's data are two
    stretches; a block across the model's own bars would trade them).

    >>> block, run = choose_blocks(np.array([1, 1, 1, 0, 1, 1, 1, 1, 1], bool), 3, 2)
    >>> block.tolist(), run
    ([-1, 0, 0, -1, -1, 1, 1, 2, 2], 3)
    """
    rows = np.flatnonzero(eligible)
    breaks = np.flatnonzero(np.diff(rows) != 1) + 1
    chosen: list[np.ndarray] = []  # the blocks' rows, newest first
    for stretch in reversed(np.split(rows, breaks)):
        for end in range(len(stretch), size - 1, -size):
            if len(chosen) == blocks:
                break
            chosen.append(stretch[end - size : end])
    block = np.full(len(eligible), -1, dtype=np.int64)
    for b, picked in enumerate(reversed(chosen)):
        block[picked] = b
    return block, len(chosen)


def scored(eligible: np.ndarray, p: np.ndarray) -> np.ndarray:
    """The ``eligible`` bars from the first one that has a probability (``p`` not NaN) on: the
    model's warm-up (no full, valid window yet) is never a block's bar.

    >>> scored(np.array([0, 1, 1, 1, 1], bool), np.array([0.5, np.nan, np.nan, 0.4, np.nan]))
    array([False, False, False,  True,  True])
    """
    rows = np.flatnonzero(eligible & ~np.isnan(p))
    out = np.zeros_like(eligible) if not len(rows) else eligible.copy()
    if len(rows):
        out[: rows[0]] = False
    return out


@dataclass
class Run:
    """One accounted run over its traded bars only (the rows of ``block >= 0``, in order): what
    :func:`evaluate_run` reads, and each fill's costs split (``costs.split_fill_costs``). Runs
    of several simulated tracks are pooled by :func:`pool`."""

    equity: np.ndarray  # (n,) $ after each bar
    held: np.ndarray  # (n, K) shares after each bar
    fills: np.ndarray  # (m, 7) execution's layout; F_BAR is a row of these arrays
    block: np.ndarray  # (n,) block id, 0, 1, ...
    day: np.ndarray  # (n,) trading-day label
    costs: dict[str, np.ndarray]  # COST_PARTS -> (m,) $ per fill

    def evaluate(
        self, config: StrattestConfig
    ) -> tuple[Summary, np.ndarray, CostFigures, SampleSize]:
        """Summary, per-block returns, costs and trading days (metrics.py does the arithmetic)."""
        summary, rpb = evaluate_run(
            self.equity, self.held, self.fills, self.block, self.day, config.capital, config
        )
        costs = cost_figures(self.costs, config.capital, len(rpb))
        return summary, rpb, costs, sample_size(self.day)


def traded_run(equity, held, fills, block, day, costs: dict[str, np.ndarray]) -> Run:
    """The rows of ``block >= 0`` of a whole-series simulation, fills re-indexed to them."""
    inside = np.flatnonzero(block >= 0)
    fills = fills.copy()
    fills[:, F_BAR] = np.searchsorted(inside, fills[:, F_BAR].astype(np.int64))
    return Run(equity[inside], held[inside], fills, block[inside], day[inside], costs)


def pool(runs: list[Run]) -> Run:
    """Runs one after another as one run: blocks renumbered, days relabelled per run (two
    tracks' days never merge), fills' rows shifted.

    >>> one = Run(np.ones(2), np.zeros((2, 1)), np.zeros((1, 7)), np.zeros(2, int),
    ...           np.array([5, 5]), {"spread": np.ones(1)})
    >>> both = pool([one, one])
    >>> both.block.tolist(), both.day.tolist(), both.fills[:, 0].tolist()
    ([0, 0, 1, 1], [0, 0, 1, 1], [0.0, 2.0])
    """
    blocks = rows = days = 0
    parts = []
    for run in runs:
        fills = run.fills.copy()
        fills[:, F_BAR] += rows
        day = np.unique(run.day, return_inverse=True)[1] + days
        parts.append((run.block + blocks, day, fills))
        rows += len(run.block)
        blocks += int(run.block.max()) + 1 if len(run.block) else 0
        days = int(day.max()) + 1 if len(day) else days
    return Run(
        np.concatenate([r.equity for r in runs]),
        np.concatenate([r.held for r in runs]),
        np.concatenate([f for _, _, f in parts]),
        np.concatenate([b for b, _, _ in parts]),
        np.concatenate([d for _, d, _ in parts]),
        {k: np.concatenate([r.costs[k] for r in runs]) for k in runs[0].costs},
    )


def trades(
    equity: np.ndarray, in_market: np.ndarray, block: np.ndarray, capital: float
) -> tuple[np.ndarray, np.ndarray]:
    """Round trips (flat -> position -> flat within a block): P&L after fees and bars held."""
    pnl, held = [], []
    start = None
    for t in range(len(equity)):
        if block[t] < 0:
            continue
        first = t == 0 or block[t - 1] != block[t]
        if in_market[t] and start is None:
            start = t
            before = capital if first else equity[t - 1]
        elif not in_market[t] and start is not None:
            pnl.append(equity[t] - before)
            held.append(t - start)
            start = None
    return np.array(pnl), np.array(held)


def evaluate_run(equity, held, fills, block, day, capital, config) -> tuple[Summary, np.ndarray]:
    """Summary and per-block returns of one simulated run (metrics.py does the arithmetic)."""
    inside = block >= 0
    starts = np.r_[True, block[1:] != block[:-1]]
    prev = np.r_[capital, equity[:-1]]
    prev = np.where(starts, capital, prev)
    bar_returns = (equity / prev - 1.0)[inside]
    ends = inside & np.r_[block[1:] != block[:-1], True]
    rpb = equity[ends] / capital - 1.0
    in_market = held.sum(axis=1) > 0
    pnl, bars_held = trades(equity, in_market, block, capital)
    notional = float(np.sum(np.abs(fills[:, F_QTY]) * fills[:, F_PRICE]))
    summary = summarize(
        rpb,
        bar_returns,
        day[inside],
        pnl,
        bars_held,
        in_market[inside],
        notional,
        float(fills[:, F_FEES].sum()),
        capital,
        390.0,
        config.block_size,
        config.seed,
    )
    return summary, rpb


@dataclass
class Plan:
    """What one strattest run trades: the model, the QQQ bars, the instruments' prices and
    the block of every bar (-1: not traded). Made before anything is computed, so the audit
    can start the stream path over the same blocks while the backtest runs."""

    config: StrattestConfig
    model: Path
    meta: dict
    qqq: pd.DataFrame
    prices: dict
    simulated: dict
    block: np.ndarray
    blocks_run: int
    in_sample: bool
    inputs: dict = field(default_factory=dict)  # inputs_of(): the model, the data, who chose
    probability: np.ndarray | None = None  # (N,) the sequence path's p, when computed already
    cache: dict = field(default_factory=dict)  # what the probability cache did then
    inputs_range: dict | None = None  # the context's range_report() then

    @property
    def spans(self) -> list[tuple[int, int]]:
        """Rows [start, stop) of each block."""
        out = []
        for b in range(self.blocks_run):
            rows = np.flatnonzero(self.block == b)
            out.append((int(rows[0]), int(rows[-1]) + 1))
        return out


def make_plan(config, model, meta, qqq, prices, simulated, eligible, warmup: int = 0) -> Plan:
    """Choose the blocks among the ``eligible`` bars; refuse when not one fits. ``warmup``:
    bars after the validation end left out as the model's warm-up (said in the refusal)."""
    ts = qqq["ts"].to_numpy(np.int64)
    block, run = choose_blocks(eligible, config.blocks, config.block_size)
    validation_end = meta["data"]["splits"]["validation"]["last_ts"]
    if run == 0:
        end = pd.Timestamp(validation_end, tz="UTC").tz_convert(NEW_YORK)
        warm = (
            f" and past the model's warm-up ({warmup} before them have no probability yet)"
            if warmup
            else ""
        )
        raise BacktestError(
            f"{int(eligible.sum())} bars lie outside the model's data (before its first "
            f"training bar or after its validation end, {end:%Y-%m-%d %H:%M} New York){warm}; "
            f"a block needs {config.block_size}. "
            "Give --data with bars outside it, --model with an earlier validation end, "
            "a smaller --block-size, or --allow-in-sample"
        )
    inside = block >= 0
    check_capital(config.capital, prices["close"][inside])
    in_sample = config.allow_in_sample and bool((~out_of_sample(meta, ts[inside])).any())
    return Plan(config, Path(model), meta, qqq, prices, simulated, block, run, in_sample)


def check_capital(capital: float, close: np.ndarray) -> None:
    """Refuse a ``capital`` that cannot buy one share of every instrument at its highest close
    in the traded bars (``close`` (N, K) in SYMBOLS order): such a run fills nothing and would
    report a flat strategy as a result (issue 12 round 2).

    >>> check_capital(1000.0, np.array([[400.0, 60.0, 12.0, 9.0]]))
    >>> try:
    ...     check_capital(300.0, np.array([[400.0, 60.0, 12.0, 9.0], [420.5, 61.0, 12.0, 9.0]]))
    ... except OptionError as exc:
    ...     print(*str(exc).split("; "), sep="\\n")
    --capital: $300 cannot buy one share of QQQ (up to $420.50 in the traded bars)
    give at least 421
    """
    highest = close.max(axis=0)
    if capital < highest.max():
        j = int(np.argmax(highest))
        raise OptionError(
            f"${capital:,.6g} cannot buy one share of {SYMBOLS[j]} (up to ${highest[j]:,.2f} "
            f"in the traded bars); give at least {int(np.ceil(highest[j])):,}",
            flag="--capital",
        )


def out_of_sample(meta: dict, ts: np.ndarray) -> np.ndarray:
    """The bars a historical run may trade: those outside the model's own data, its first
    training bar to its validation end widened by ``embargo_bars`` where the bars run on into
    it (``model.artifact.model_rows``: the bars ``sentio model evaluate`` skips). The last
    validation labels reach ``horizon`` bars past the validation end, so a trade there would
    earn returns the model was selected on."""
    start, end = model_rows(meta, ts, clock_columns(ts)[1])
    eligible = np.ones(len(ts), dtype=bool)
    eligible[start:end] = False
    return eligible


def historical_plan(config: StrattestConfig) -> Plan:
    """The last blocks outside the model's data (:func:`out_of_sample`; every bar with
    allow_in_sample).

    Every refusal names the model and the data and who chose them (``inputs_of``)."""
    model = config.model or newest_artifact()
    inputs = inputs_of(config, Path(model))
    try:
        meta = load_verified(model)
        qqq, prices, simulated = load_market(config, meta)
        ts = qqq["ts"].to_numpy(np.int64)
        eligible = np.ones(len(ts), bool) if config.allow_in_sample else out_of_sample(meta, ts)
        plan = scored_plan(config, model, meta, qqq, prices, simulated, eligible)
    except SentioError as exc:
        raise BacktestError(f"{describe_inputs(inputs)}: {exc}") from exc
    plan.inputs = inputs
    return plan


def scored_plan(config, model, meta, qqq, prices, simulated, eligible) -> Plan:
    """The probabilities of every bar first, then the blocks among the eligible bars that
    follow the model's warm-up (:func:`scored`); the plan carries the probabilities, what the
    cache did and the inputs' range report, so the backtest does not compute them again."""
    context = SequenceContext(model, cache_dir=config.cache_dir)
    p = context.calculate_probability(qqq)
    ready = scored(eligible, p)
    plan = make_plan(
        config, model, meta, qqq, prices, simulated, ready, int((eligible & ~ready).sum())
    )
    plan.probability, plan.cache = p, context.cache_report()
    plan.inputs_range = context.range_report(plan.block >= 0)  # the traded bars only
    return plan


def run_strattest(
    config: StrattestConfig, progress: Callable[[int, int], None] | None = None
) -> StrattestResult:
    """Run the strategy and both baselines; ``progress(done, total)`` after each block."""
    return backtest(historical_plan(config), progress)


def run_simulation(
    config: StrattestConfig,
    tracks: int,
    regimes: tuple[str, ...],
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, list[StrattestResult]]:
    """The strategy on ``tracks`` fresh built-in markets per regime: seeds drawn from
    ``config.seed`` and the regime, never the seed of the model's own training market; every
    bar is out of sample, the last ``blocks`` blocks of each track are run."""
    model = config.model or newest_artifact()
    inputs = {
        **inputs_of(config, Path(model)),
        "data": "fresh built-in tracks",
        "data_from": "simulation: seeds from --seed and --regime",
    }
    try:
        meta = load_verified(model)
    except SentioError as exc:
        raise BacktestError(f"model {model} ({inputs['model_from']}): {exc}") from exc
    used = (meta["data"].get("synth") or {}).get("seed")
    days = -(-(config.blocks * config.block_size) // 390) + 12  # + warm-up and the rule's history
    out: dict[str, list[StrattestResult]] = {}
    for regime in regimes:
        seeds = track_seeds(config.seed, regime, tracks, avoid=used)
        out[regime] = []
        for seed in seeds:
            market = generate(SynthConfig(seed=seed, days=days, regime=regime))
            tables = {s: market.bars[s].of(s) for s in SYMBOLS}
            qqq = tables["QQQ"]
            eligible = np.ones(len(qqq), bool)
            simulated = {s: True for s in SYMBOLS}
            plan = scored_plan(config, model, meta, qqq, prices_of(tables), simulated, eligible)
            plan.inputs = inputs
            out[regime].append(backtest(plan, progress))
    return out


REGIMES = ("mixed", "bull", "bear", "sideways", "volatile")


def track_seeds(seed: int, regime: str, tracks: int, avoid: int | None) -> list[int]:
    """Distinct market seeds for the simulation tracks, skipping ``avoid`` (the seed of the
    model's own training market).

    >>> track_seeds(0, "mixed", 2, avoid=7919)
    [15838, 23757]
    """
    candidates = (1000 * seed + 7919 * (i + 1) + REGIMES.index(regime) for i in range(tracks + 1))
    return [s for s in candidates if s != avoid][:tracks]


def regime_summary(results: list[StrattestResult], config: StrattestConfig) -> dict:
    """All blocks of a regime's tracks pooled (the tracks one after another, as historical
    mode chains its blocks): every figure of historical mode for the strategy, buy-and-hold
    QQQ and flat, their costs whole, and the verdict (metrics.py does the arithmetic). The
    strategy's and buy-and-hold's ``blocks``, ``mean_rpb_pct``, ``rpb_ci95_pct`` and
    ``arb_pct`` are those of the pooled blocks."""
    out: dict = {"tracks": len(results), "costs": {}}
    rpbs = {}
    for name in RUN_NAMES:
        summary, rpbs[name], costs, sample = pool([r.runs[name] for r in results]).evaluate(config)
        out[name] = summary.to_dict() | sample.to_dict()
        out["costs"][name] = costs.to_dict()
    out["fees"] = out["strategy"]["fees"]
    over = paired_difference(rpbs["strategy"], rpbs["buy_and_hold_qqq"], config.seed)
    out["verdict"] = verdict(out["strategy"], out["buy_and_hold_qqq"], over=over).to_dict()
    out["inputs_range"] = pooled_range([r.inputs_range for r in results])
    return out


def pooled_range(reports: list[dict | None]) -> dict | None:
    """The tracks' input-range reports (``range_report()`` of each track's context,
    ``sentio.infer.ranges``) as one: counts summed (per feature too), shares and the warning
    rule (``min_bars``, ``threshold_share``) applied to the sums.

    >>> pooled = pooled_range([
    ...     {"bars": 100, "outside_training": 1, "beyond_clip": 0, "threshold_share": 0.05,
    ...      "min_bars": 100, "top_features": [], "ranges_recorded": True},
    ...     {"bars": 100, "outside_training": 9, "beyond_clip": 11, "threshold_share": 0.05,
    ...      "min_bars": 100, "top_features": [["x", 11]], "ranges_recorded": True}])
    >>> pooled["share_beyond_clip"], pooled["warn"], pooled["top_features"]
    (0.055, True, [['x', 11]])
    """
    found = [r for r in reports if r]
    if not found:
        return None
    out = dict(found[0])  # the rule, threshold and clip are the model's: the same in each
    for key in ("bars", "outside_training", "beyond_clip"):
        out[key] = sum(int(r.get(key) or 0) for r in found)
    bars = out["bars"]
    out["share_outside_training"] = out["outside_training"] / bars if bars else None
    out["share_beyond_clip"] = out["beyond_clip"] / bars if bars else None
    for key in ("top_features", "top_outside_training"):
        counts: dict[str, int] = {}
        for r in found:
            for name, n in r.get(key) or []:
                counts[name] = counts.get(name, 0) + int(n)
        out[key] = [[k, n] for k, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]
        out[key] = out[key][: max((len(r.get(key) or []) for r in found), default=0)]
    out["warn"] = passes(bars, out["beyond_clip"])
    out["ranges_recorded"] = all(r.get("ranges_recorded", True) for r in found)
    out["tracks"] = len(found)
    return out


RUN_NAMES = ("strategy", "buy_and_hold_qqq", "flat")


def backtest(plan: Plan, progress: Callable[[int, int], None] | None = None) -> StrattestResult:
    """The shared core of both modes: probabilities (the plan's, when it has them), strategy,
    execution, metrics."""
    p, cache = plan.probability, plan.cache
    if p is None:
        context = SequenceContext(plan.model, cache_dir=plan.config.cache_dir)
        p, cache = context.calculate_probability(plan.qqq), context.cache_report()
    thresholds = plan.meta["thresholds"]
    used, exposure, reasons = decide_blocks(plan, lambda b: (p, thresholds), progress)
    return account(plan, used, exposure, reasons, cache)


def decide_blocks(
    plan: Plan,
    model_of: Callable[[int], tuple[np.ndarray, dict]],
    progress: Callable[[int, int], None] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The strategy over every block: ``model_of(b)`` gives block ``b``'s probabilities (of
    every bar of the series) and thresholds (one model for strattest; the fold's model in a
    walk-forward run). Each block starts from a fresh strategy state whose adaptive history is
    the ``adaptive_window`` valid probabilities of that block's model before the block.
    Returns the probability used at each bar (NaN outside blocks), exposure and reason."""
    config, block = plan.config, plan.block
    ts = plan.qqq["ts"].to_numpy(np.int64)
    left = minutes_left(ts)
    used = np.full(len(ts), np.nan)
    exposure = np.zeros(len(ts))
    reasons = np.full(len(ts), "", dtype=object)
    for b in range(plan.blocks_run):
        p, thresholds = model_of(b)
        rows = np.flatnonzero(block == b)
        before = p[: rows[0]]
        history = tuple(before[~np.isnan(before)][-config.strategy.adaptive_window :])
        state = StrategyState(history=history if config.strategy.rule == "adaptive" else ())
        e, why, _ = run_strategy(p[rows], left[rows], config.strategy, thresholds, state)
        used[rows] = p[rows]
        exposure[rows] = e
        reasons[rows] = [r.value for r in why]
        if progress:
            progress(b + 1, plan.blocks_run)
    return used, exposure, reasons


def account(
    plan: Plan, p: np.ndarray, exposure: np.ndarray, reasons: np.ndarray, cache: dict
) -> StrattestResult:
    """Allocation, execution and metrics of decided blocks, with both baselines."""
    config, qqq, prices = plan.config, plan.qqq, plan.prices
    block, run = plan.block, plan.blocks_run
    ts = qqq["ts"].to_numpy(np.int64)
    weights = np.array([[allocate(x, config.allocation)[s] for s in SYMBOLS] for x in exposure])
    next_open = config.fill == "next-open"
    spreads = config.costs.half_spreads(list(SYMBOLS), prices["close"])
    costs_vector = config.costs.vector()
    day = clock_columns(ts)[1]
    runs = {
        "strategy": weights,
        "buy_and_hold_qqq": np.tile([1.0, 0.0, 0.0, 0.0], (len(ts), 1)),
        "flat": np.zeros((len(ts), 4)),
    }
    summary, rpbs, costs, samples, traded, outputs = {}, {}, {}, {}, {}, {}
    for name, w in runs.items():
        equity, held, fills, orders = simulate(
            w, prices["open"], prices["close"], block, next_open, config.capital, costs_vector,
            spreads,
        )  # fmt: skip
        parts = split_fill_costs(
            fills[:, F_QTY], fills[:, F_PRICE], fills[:, F_FEES],
            spreads[fills[:, F_INSTRUMENT].astype(np.int64)], config.costs,
        )  # fmt: skip
        traded[name] = traded_run(equity, held, fills, block, day, parts)
        summary[name], rpbs[name], costs[name], samples[name] = traded[name].evaluate(config)
        outputs[name] = (equity, held, fills, orders)
    equity, held, fills, orders = outputs["strategy"]
    inside = block >= 0
    per_bar = pd.DataFrame(
        {
            "ts": ts,
            "block": block,
            "probability": p,
            "exposure": exposure,
            "reason": reasons,
            **{f"weight_{s}": weights[:, j] for j, s in enumerate(SYMBOLS)},
            **{f"shares_{s}": held[:, j] for j, s in enumerate(SYMBOLS)},
            **{f"close_{s}": prices["close"][:, j] for j, s in enumerate(SYMBOLS)},
            "equity": equity,
        }
    )[inside].reset_index(drop=True)
    fill_frame = pd.DataFrame(
        {
            "ts": ts[fills[:, F_BAR].astype(int)],
            "symbol": [SYMBOLS[int(j)] for j in fills[:, F_INSTRUMENT]],
            "qty": fills[:, F_QTY].astype(np.int64),
            "price": fills[:, F_PRICE],
            "fees": fills[:, F_FEES],  # commission + regulatory fees, charged in cash
            **traded["strategy"].costs,  # commissions, regulatory_fees, spread (in the price)
            "simulated": [plan.simulated[SYMBOLS[int(j)]] for j in fills[:, F_INSTRUMENT]],
            "cash_after": fills[:, F_CASH],
            "shares_after": fills[:, F_SHARES].astype(np.int64),
        }
    )
    order_frame = pd.DataFrame(
        {
            "ts": ts[orders[:, O_BAR].astype(int)],
            "symbol": [SYMBOLS[int(j)] for j in orders[:, O_INSTRUMENT]],
            "qty": orders[:, O_QTY].astype(np.int64),
            "target": orders[:, O_TARGET].astype(np.int64),
        }
    )
    per_block = block_table(plan, p, traded, rpbs)
    span = (
        pd.Timestamp(int(ts[inside][0]), tz="UTC").isoformat(),
        pd.Timestamp(int(ts[inside][-1]), tz="UTC").isoformat(),
    )
    return StrattestResult(
        config,
        plan.model,
        plan.in_sample,
        config.blocks,
        run,
        plan.simulated,
        span,
        summary,
        per_block,
        per_bar,
        fill_frame,
        order_frame,
        qqq,
        plan.inputs,
        cache,
        costs,
        samples,
        verdict(
            summary["strategy"],
            summary["buy_and_hold_qqq"],
            over=paired_difference(rpbs["strategy"], rpbs["buy_and_hold_qqq"], config.seed),
        ),
        traded,
        plan.inputs_range,
    )


def figures_of(result: StrattestResult) -> dict[str, dict]:
    """Per run (strategy, buy_and_hold_qqq, flat): its summary with its trading days merged
    in, as ``--json`` prints it."""
    return {k: v.to_dict() | result.samples[k].to_dict() for k, v in result.summary.items()}


def block_table(plan: Plan, p: np.ndarray, traded: dict[str, Run], rpbs: dict) -> pd.DataFrame:
    """One row per block: its span, warm-up bars (no probability), the strategy's return,
    fills, fees (commissions + regulatory), each cost and their sum ($), turnover (traded
    notional / capital) and buy-and-hold's return."""
    run, ts, block = plan.blocks_run, plan.qqq["ts"].to_numpy(np.int64), plan.block
    inside = block >= 0
    mine = traded["strategy"]
    fill_block = mine.block[mine.fills[:, F_BAR].astype(np.int64)]

    def per_block(values: np.ndarray) -> np.ndarray:
        return np.bincount(fill_block, weights=values, minlength=run)[:run]

    parts = {name: per_block(mine.costs[name]) for name in COST_PARTS}
    first = np.flatnonzero(inside & np.r_[True, block[1:] != block[:-1]])
    last = np.flatnonzero(inside & np.r_[block[1:] != block[:-1], True])
    return pd.DataFrame(
        {
            "block": np.arange(run),
            "start": [pd.Timestamp(int(ts[i]), tz="UTC").isoformat() for i in first],
            "end": [pd.Timestamp(int(ts[i]), tz="UTC").isoformat() for i in last],
            "warmup_bars": np.bincount(
                block[inside], weights=np.isnan(p[inside]), minlength=run
            ).astype(np.int64)[:run],
            "return_pct": 100 * rpbs["strategy"],
            "fills": np.bincount(fill_block, minlength=run)[:run],
            "fees": per_block(mine.fills[:, F_FEES]),
            **parts,
            "costs": sum(parts.values()),
            "turnover": block_turnover(
                mine.fills[:, F_QTY],
                mine.fills[:, F_PRICE],
                fill_block,
                np.arange(run),
                plan.config.capital,
            ),  # fmt: skip
            "buy_and_hold_return_pct": 100 * rpbs["buy_and_hold_qqq"],
        }
    )


__all__ = [
    "ARTIFACTS",
    "BacktestError",
    "FILLS",
    "Plan",
    "REGIMES",
    "Run",
    "StrattestConfig",
    "StrattestResult",
    "account",
    "backtest",
    "block_table",
    "check_capital",
    "choose_blocks",
    "decide_blocks",
    "describe_inputs",
    "figures_of",
    "historical_plan",
    "inputs_of",
    "make_plan",
    "market_tables",
    "newest_artifact",
    "out_of_sample",
    "pool",
    "pooled_range",
    "prices_of",
    "regime_summary",
    "run_simulation",
    "run_strattest",
    "scored",
    "scored_plan",
    "track_seeds",
    "traded_run",
    "trades",
]
