"""ReportData from a strattest result in memory, a ``strattest --out DIR`` folder or a
walk-forward run folder (an audited run: ``sentio.report.audited``).

A run folder holds the strategy's bars, blocks and fills (docs/backtest.md) but not the
buy-and-hold run's bars nor the market around the blocks. Those are replayed
(:func:`replay`) from the model and data the run names, as strattest computed them: the
market (``strattest.market_tables``), buy-and-hold QQQ through the same accounting loop
(``execution.simulate``), the half-spreads of the cost model. A replay is used only where it
reproduces what the run recorded (the closes of every traded bar, buy-and-hold's return of
every block); otherwise, or when the model or a data file is gone, the report says what it
lacks and why, and draws the rest.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from pydantic import ValidationError

from sentio.backtest.execution import simulate
from sentio.backtest.strattest import (
    StrattestConfig,
    StrattestResult,
    figures_of,
    market_tables,
    prices_of,
)
from sentio.core.errors import OptionError, SentioError, excerpt
from sentio.core.hashing import sha256_file
from sentio.model.artifact import load_verified, read_json
from sentio.report.checks import EDITED, Source
from sentio.report.data import (
    BAR_COLUMNS,
    BLOCK_COLUMNS,
    SYMBOLS,
    ReportData,
    labels,
)

RUN_FILES = ("summary.json", "blocks.parquet", "bars.parquet", "fills.parquet")
WALK_FILES = ("walkforward.json", "sessions.csv")
OPTIMISTIC = "OPTIMISTIC: --fill close fills at the signal bar's close (docs/backtest.md)"
IN_SAMPLE = "IN-SAMPLE: these bars include the model's training or validation period"


def from_result(result: StrattestResult, by_regime: dict | None = None) -> ReportData:
    """A historical strattest run in memory (``run_strattest``'s result); ``by_regime``:
    its ``strattest_by_regime(...).to_dict()`` when the run was split by regime."""
    config = result.config
    meta = read_json(Path(result.model), "model.meta.json")
    per_bar = result.per_bar
    bars = bar_frame(
        per_bar,
        buy_and_hold=result.runs["buy_and_hold_qqq"].equity,
        label=labels(result.market, per_bar["ts"].to_numpy(np.int64), meta["label"]),
    )
    document = config.model_dump(mode="json")
    thresholds, notes = thresholds_of(document["strategy"], meta.get("thresholds") or {})
    return ReportData(
        title=f"strattest {config.strategy.rule} rule, {counted(result.blocks_run, 'block')} of "
        f"{config.block_size} bars",
        source=f"strattest run of {result.model} on {', '.join(config.data)}",
        unit="block",
        capital=config.capital,
        blocks=block_frame(result.per_block),
        summary=figures_of(result),
        costs={k: v.to_dict() for k, v in result.costs.items()},
        verdict=result.verdict.to_dict() if result.verdict else None,
        config=document,
        hashes=input_hashes(result.model, config.data),
        bars=bars,
        thresholds=thresholds,
        regimes=by_regime,
        notes=notes,
        banners=banners(result.in_sample, config.fill),
        inputs=replay_inputs(Path(result.model), config.data),
    )


def from_run_folder(folder: Path) -> ReportData:
    """The report of a ``strattest --out DIR`` folder or a walk-forward run folder;
    OptionError naming ``--run`` for a folder that is neither, or a file in it that cannot be
    read or lacks or mistypes a field (``report.checks``)."""
    folder = Path(folder)
    if not folder.is_dir():
        what = "does not exist" if not folder.exists() else "is not a folder"
        raise OptionError(
            f"{folder} {what}; give a run folder (`strattest --out DIR`, or a walk-forward "
            "run's --out)",
            flag="--run",
        )
    if (folder / WALK_FILES[0]).is_file():
        return from_walkforward(folder)
    if not (folder / RUN_FILES[0]).is_file():
        raise OptionError(
            f"{folder} is not a run folder: it holds neither {RUN_FILES[0]} (written by "
            f"`strattest --out DIR`) nor {WALK_FILES[0]} (a walk-forward run)",
            flag="--run",
        )
    doc = read_document(folder / RUN_FILES[0])
    run = read_summary(folder / RUN_FILES[0], doc)
    tables = {name: read_table(folder / name) for name in RUN_FILES[1:]}
    blocks = block_frame(Source(str(folder / RUN_FILES[1]), "--run").blocks(tables[RUN_FILES[1]]))
    bars = Source(str(folder / RUN_FILES[2]), "--run").bars(tables[RUN_FILES[2]])
    if set(bars["block"]) != set(blocks["block"]):
        raise OptionError(
            f"{folder}: the blocks of {RUN_FILES[2]} are not those of {RUN_FILES[1]}; {EDITED}",
            flag="--run",
        )
    config, model, data = run["config"], run["model"], run["data"]
    done, notes = replay(config, model, bars, blocks["buy_and_hold_return_pct"].to_numpy())
    frame = bar_frame(
        bars,
        buy_and_hold=None if done is None else done.buy_and_hold,
        label=None if done is None else labels(done.market, bars["ts"], done.meta["label"]),
    )
    strategy = run["strategy"]
    thresholds, more = thresholds_of(strategy, {} if done is None else done.meta["thresholds"])
    hashes = input_hashes(Path(model), data) | {
        f"run folder {name}": sha256_file(folder / name) for name in RUN_FILES
    }
    if run["audit"] is not None:
        hashes["audit chain head"] = str(run["audit"].get("head"))
    return ReportData(
        title=f"strattest {strategy['rule']} rule, {counted(len(blocks), 'block')} of "
        f"{config.get('block_size')} bars",
        source=f"run folder {folder} (model {model}; data {', '.join(data)})",
        unit="block",
        capital=run["capital"],
        blocks=blocks,
        summary=run["summary"],
        costs=run["costs"],
        verdict=run["verdict"],
        config=config,
        hashes=hashes,
        bars=frame,
        thresholds=thresholds,
        regimes=run["by_regime"],
        notes=notes + more,
        banners=banners(bool(doc.get("in_sample")), str(doc.get("fill"))),
        inputs=_files(folder) + replay_inputs(Path(model), data),
    )


def read_summary(path: Path, doc: dict) -> dict:
    """The fields of a run folder's summary.json the report uses, each checked
    (``report.checks``): config (capital, strategy), model, data, summary, costs, verdict,
    by_regime, audit."""
    src = Source(str(path), "--run")
    strategy = src.mapping(doc, "config.strategy")
    if src.text(doc, "config.strategy.rule") == "bands":
        src.numbers(doc, "config.strategy.bands", 4)
    return {
        "config": src.mapping(doc, "config"),
        "capital": src.number(doc, "config.capital", positive=True),
        "strategy": strategy,
        "model": src.text(doc, "model"),
        "data": src.strings(doc, "data") or src.strings(doc, "config.data"),
        "summary": src.figures(doc, "summary"),
        "costs": src.figures(doc, "costs"),
        "verdict": src.verdict(doc, "verdict"),
        "by_regime": src.regimes(doc, "by_regime"),
        "audit": src.mapping(doc, "audit", optional=True),
    }


def from_walkforward(folder: Path) -> ReportData:
    """A walk-forward run folder: walkforward.json and sessions.csv (docs/walkforward.md).
    It records sessions, not bars: the report draws the sessions, folds and gates."""
    doc = read_document(folder / WALK_FILES[0])
    src = Source(str(folder / WALK_FILES[0]), "--run")
    config = src.mapping(doc, "config")
    capital = src.number(doc, "config.strattest.capital", positive=True)
    policy = src.mapping(doc, "config.policy")
    folds = src.records(doc, "folds", "fold")
    summary, costs = src.figures(doc, "summary"), src.figures(doc, "costs")
    verdict = src.verdict(doc, "verdict")
    out_of_sample = src.figures(doc, "out_of_sample", optional=True) or None
    blocks = read_sessions(folder / WALK_FILES[1])
    return ReportData(
        title=f"walk-forward: {len(folds)} folds, {len(blocks)} traded sessions "
        f"(train {policy.get('train_window')}, gate on {policy.get('shadow_sessions')}, "
        f"trade {policy.get('retrain_every')} sessions)",
        source=f"walk-forward run folder {folder}",
        unit="session",
        capital=capital,
        blocks=block_frame(blocks),
        summary=summary,
        costs=costs,
        verdict=verdict,
        config=config,
        hashes={
            f"fold {f['fold']} candidate manifest": str(f.get("candidate_manifest_sha256"))
            for f in folds
        }
        | {f"run folder {name}": sha256_file(folder / name) for name in WALK_FILES},
        folds=folds,
        out_of_sample=out_of_sample,
        notes=[
            "a walk-forward run folder records sessions, not bars: no price, probability, "
            "calibration or exposure plot (record the run with --audit for its bars)"
        ],
        banners=banners(False, str(config["strattest"].get("fill"))),
        inputs=_files(folder),
    )


SESSION_COLUMNS = {  # sessions.csv column -> the block table's (docs/walkforward.md)
    "walk_forward_return_pct": "return_pct",
    "buy_and_hold_return_pct": "buy_and_hold_return_pct",
    "single_return_pct": "single_return_pct",
    "walk_forward_costs": "costs",
    "walk_forward_turnover": "turnover",
}


def read_sessions(path: Path) -> pd.DataFrame:
    """A walk-forward run's sessions.csv as a block table, one row per session, checked
    (``report.checks``)."""
    try:
        sessions = pd.read_csv(path)
    except (OSError, ValueError) as exc:
        reason = excerpt(str(exc), 120)
        raise OptionError(f"{path}: cannot be read ({reason})", flag="--run") from None
    src = Source(str(path), "--run")
    if sessions.empty:
        src.refuse("the session table", "holds no session (a run trades at least one)")
    src.columns(sessions, ["date", *SESSION_COLUMNS], list(SESSION_COLUMNS))
    blocks = sessions[list(SESSION_COLUMNS)].rename(columns=SESSION_COLUMNS).astype(float)
    blocks.insert(0, "block", np.arange(len(sessions)))
    blocks.insert(1, "start", sessions["date"].astype(str))
    blocks.insert(2, "end", sessions["date"].astype(str))
    return src.blocks(blocks, unit="session")


def bar_frame(
    bars: pd.DataFrame,
    *,
    buy_and_hold: np.ndarray | None = None,
    label: np.ndarray | None = None,
    p_stream: np.ndarray | None = None,
) -> pd.DataFrame:
    """BAR_COLUMNS from strattest's per-bar table (``bars.parquet``: probability, exposure,
    shares and closes of each instrument, equity); what is not given is NaN."""
    n = len(bars)

    def given(values) -> np.ndarray:
        return np.full(n, np.nan) if values is None else np.asarray(values, np.float64)

    frame = pd.DataFrame(
        {
            "ts": bars["ts"].to_numpy(np.int64),
            "block": bars["block"].to_numpy(np.int64),
            "probability": bars["probability"].to_numpy(np.float64),
            "p_stream": given(p_stream),
            "exposure": bars["exposure"].to_numpy(np.float64),
            "close_QQQ": bars["close_QQQ"].to_numpy(np.float64),
            "equity": bars["equity"].to_numpy(np.float64),
            "equity_buy_and_hold": given(buy_and_hold),
            **{
                f"value_{s}": bars[f"shares_{s}"].to_numpy(np.float64)
                * bars[f"close_{s}"].to_numpy(np.float64)
                for s in SYMBOLS
            },
            "label": given(label),
        }
    )
    return frame[list(BAR_COLUMNS)]


def block_frame(blocks: pd.DataFrame) -> pd.DataFrame:
    """BLOCK_COLUMNS (and a walk-forward run's ``single_return_pct``), NaN where missing."""
    columns = list(BLOCK_COLUMNS) + (["single_return_pct"] if "single_return_pct" in blocks else [])
    return blocks.reindex(columns=columns).reset_index(drop=True)


def banners(in_sample: bool, fill: str) -> list[str]:
    """The warnings every output of such a run carries (docs/backtest.md)."""
    return ([IN_SAMPLE] if in_sample else []) + ([OPTIMISTIC] if fill == "close" else [])


def counted(n: int, noun: str) -> str:
    """``n`` and the noun, plural unless one.

    >>> counted(1, "block"), counted(3, "session")
    ('1 block', '3 sessions')
    """
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def thresholds_of(strategy: dict, fitted: dict) -> tuple[dict[str, float], list[str]]:
    """The probability levels the strategy's rule trades at, to draw under the probability
    (``strategy``: the config's strategy section; ``fitted``: the artifact's thresholds),
    and a note when the rule has none fixed.

    >>> thresholds_of({"rule": "fitted"}, {"long": 0.52, "short": 0.47})[0]
    {'long (fitted)': 0.52, 'short (fitted)': 0.47}
    >>> thresholds_of({"rule": "adaptive", "adaptive_window": 250}, {})[0]
    {}
    """
    rule = strategy.get("rule")
    if rule == "fitted" and "long" in fitted:
        return {"long (fitted)": fitted["long"], "short (fitted)": fitted["short"]}, []
    if rule == "bands":
        names = ("strong short", "short", "long", "strong long")
        return dict(zip(names, map(float, strategy["bands"]), strict=True)), []
    if rule == "adaptive":
        return {}, [
            f"the adaptive rule's thresholds follow the last {strategy.get('adaptive_window')} "
            "probabilities (their 70th and 30th percentiles), so they move at every bar and "
            "are not drawn (docs/strategy.md)"
        ]
    if rule == "cost":
        return {}, [
            "the cost rule enters on the expected move, not at a probability level: "
            "no threshold is drawn (docs/strategy.md)"
        ]
    return {}, ["the model's fitted thresholds could not be read: none is drawn"]


@dataclass
class Replay:
    """What a run folder or an audit lacks, recomputed from the run's model and data."""

    market: pd.DataFrame  # QQQ's rows (ts, close, segment, ...)
    meta: dict  # the model's model.meta.json
    half_spread: dict[str, float]  # the cost model's half-spread per symbol, fraction of price
    buy_and_hold: np.ndarray | None  # buy-and-hold QQQ's equity per traded bar, $


def replay(
    config: dict, model: str, bars: pd.DataFrame, buy_and_hold_pct: np.ndarray | None = None
) -> tuple[Replay | None, list[str]]:
    """Replay the market of a historical strattest run (module doc) with its ``config`` and
    ``model`` (a walk-forward run's first model: the market is every fold's) around its
    traded ``bars`` (ts, block, close_QQQ). Returns the replay (or None) and what could not be
    done. Buy-and-hold's equity is kept only when its block returns are the recorded
    ``buy_and_hold_pct``."""
    lacks = "no buy-and-hold curve per bar (its block ends are drawn) and no calibration"
    try:
        settings = StrattestConfig(**config)
        meta = load_verified(model)
        tables, _ = market_tables(settings, meta)
    except (SentioError, OSError, ValidationError, TypeError, KeyError) as exc:
        reason = " ".join(str(exc).split())
        return None, [f"the run's market was not replayed ({excerpt(reason, 200)}): {lacks}"]
    prices = prices_of(tables)
    market = tables["QQQ"]
    ts = bars["ts"].to_numpy(np.int64)
    row = pd.Index(market["ts"].to_numpy(np.int64)).get_indexer(ts)
    close = bars["close_QQQ"].to_numpy(np.float64)
    if (row < 0).any() or not np.array_equal(prices["close"][row, 0], close):
        return None, [f"the replayed market differs from the run's bars: {lacks}"]
    spreads = settings.costs.half_spreads(list(SYMBOLS), prices["close"])
    block = np.full(len(market), -1, dtype=np.int64)
    block[row] = bars["block"].to_numpy(np.int64)
    equity = simulate(
        np.tile([1.0, 0.0, 0.0, 0.0], (len(market), 1)),
        prices["open"],
        prices["close"],
        block,
        settings.fill == "next-open",
        settings.capital,
        settings.costs.vector(),
        spreads,
    )[0][row]
    notes = []
    if buy_and_hold_pct is not None:
        ends = np.r_[np.flatnonzero(np.diff(block[row]) != 0), len(row) - 1]
        got = 100 * (equity[ends] / settings.capital - 1)
        if not np.allclose(got, np.asarray(buy_and_hold_pct, float), rtol=1e-9, atol=1e-9):
            equity = None
            notes.append(
                "the replayed buy-and-hold run differs from the recorded one: its "
                "block ends are drawn"
            )
    half = dict(zip(SYMBOLS, map(float, spreads), strict=True))
    return Replay(market, meta, half, equity), notes


def input_hashes(model: Path, data) -> dict[str, str]:
    """sha256 of the model's manifest.json and of each data file that is still there."""
    out = {}
    manifest = Path(model) / "manifest.json"
    out[f"model {model} manifest.json"] = (
        sha256_file(manifest) if manifest.is_file() else "(absent here)"
    )
    for name in data:
        if name != "builtin":
            out[f"data {name}"] = sha256_file(name) if Path(name).is_file() else "(absent here)"
    return out


def replay_inputs(model: Path, data) -> list[Path]:
    """Every file a replay reads (``replay``): the model folder's and the data files."""
    files = [p for p in Path(model).rglob("*") if p.is_file()] if Path(model).is_dir() else []
    return files + [Path(d) for d in data if d != "builtin"]


def _files(folder: Path) -> list[Path]:
    return [p for p in folder.iterdir() if p.is_file()]


def read_document(path: Path) -> dict:
    """A JSON object written by a run (OptionError naming ``--run`` and the file if not)."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeError) as exc:
        raise OptionError(f"{path}: cannot be read ({exc})", flag="--run") from None
    except ValueError as exc:
        reason = excerpt(str(exc), 120)
        raise OptionError(f"{path}: not valid JSON ({reason})", flag="--run") from None
    if not isinstance(doc, dict):
        raise OptionError(f"{path}: holds no JSON object", flag="--run")
    return doc


def read_table(path: Path) -> pd.DataFrame:
    """A Parquet table of a run folder (OptionError naming ``--run`` and the file if not)."""
    if not path.is_file():
        raise OptionError(f"{path} is missing from the run folder", flag="--run")
    try:
        return pd.read_parquet(path)
    except Exception as exc:  # pyarrow's errors have no common base with OSError/ValueError
        raise OptionError(
            f"{path}: not a readable Parquet table ({excerpt(str(exc), 120)})", flag="--run"
        ) from None


__all__ = [
    "IN_SAMPLE",
    "OPTIMISTIC",
    "RUN_FILES",
    "Replay",
    "bar_frame",
    "block_frame",
    "from_result",
    "from_run_folder",
    "from_walkforward",
    "input_hashes",
    "read_document",
    "read_sessions",
    "read_summary",
    "read_table",
    "replay",
    "replay_inputs",
    "thresholds_of",
]
