"""ReportData from an audited run (``strattest --audit DB``, a walk-forward run's audit, or
``sentio live --audit``), read from its events alone (``sentio.audit.read``), never from the
runs table's unchained copy.

Per bar the audit holds both inference paths, the decision, the closes, the holdings and the
equity; per fill its quantity, price and fees; per block its end; at the end every run's
figures and the parity tally (docs/audit.md). The rest is derived with the functions that made
the run's own numbers: each fill's costs split again (``costs.split_fill_costs``, the
half-spread from the config or the replayed market, ``sources.replay``), the run's costs
(``metrics.cost_figures``) and the verdict (``metrics.verdict`` over the recorded block
returns, as strattest judges them).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pandas as pd
from pydantic import ValidationError

from sentio.audit.read import Event, fields, load
from sentio.audit.store import AuditError, AuditStore
from sentio.backtest.costs import CostModel, split_fill_costs
from sentio.backtest.metrics import (
    Verdict,
    block_turnover,
    cost_figures,
    paired_difference,
    sample_size,
    verdict,
)
from sentio.core.errors import OptionError, excerpt
from sentio.features.inputs import clock_columns
from sentio.report.checks import Source
from sentio.report.data import SYMBOLS, ReportData, labels
from sentio.report.sources import (
    banners,
    bar_frame,
    block_frame,
    counted,
    replay,
    replay_inputs,
    thresholds_of,
)


class ReadOnlyStore(AuditStore):
    """``AuditStore(db, create=False)`` that never creates a file: a database in WAL mode
    whose ``-wal`` file is gone (every commit merged into the main file, no writer connected)
    is opened ``immutable=1`` at once, because even a ``mode=ro`` connection to it creates
    ``-wal`` and ``-shm`` beside it (sqlite.org/wal.html; ``sentio runs`` reads the same
    way). Any other file is opened as ``saudit`` opens it."""

    def _open_reader(self) -> sqlite3.Connection:
        path = Path(self.path)
        if not (path.is_file() and wal_mode(path) and not Path(f"{path}-wal").exists()):
            return super()._open_reader()
        uri = path.resolve().as_uri()
        with self._errors():
            self.db = sqlite3.connect(f"{uri}?mode=ro&immutable=1", uri=True)
            self._check_tables(allow_new=False)
        return self.db


def wal_mode(path: Path) -> bool:
    """Whether the SQLite file's header says WAL (its read version, byte 18, is 2)."""
    try:
        with path.open("rb") as handle:
            header = handle.read(100)
    except OSError:
        return False
    return header.startswith(b"SQLite format 3\x00") and len(header) > 18 and header[18] == 2


def open_run(db: Path, run_id: str | None) -> tuple[AuditStore, dict, list[Event]]:
    """The database opened read-only (:class:`ReadOnlyStore`), the run (default: the
    newest) and its events; a file that is not an audit database names ``--audit``, an
    unknown run ``--run``."""
    if not db.exists():
        raise OptionError(
            f"{db}: no audit database here (record one with `sentio strattest --audit DB`)",
            flag="--audit",
        )
    try:
        store = ReadOnlyStore(db, create=False)
    except AuditError as exc:
        raise OptionError(str(exc), flag="--audit") from None
    try:
        run = store.run(run_id)
        return store, run, load(store, run["run_id"])
    except AuditError as exc:
        store.db.close()
        raise OptionError(str(exc), flag="--run" if run_id else "--audit") from None


def from_audit(db: Path, run_id: str | None = None) -> ReportData:
    """The report of an audited run (module doc)."""
    store, run, events = open_run(Path(db), run_id)
    try:
        return build(store, run, events)
    finally:
        store.db.close()  # read-only: nothing to switch back, so not store.close()


def build(store: AuditStore, run: dict, events: list[Event]) -> ReportData:
    rid = run["run_id"]
    start = run["config"]
    src = Source(f"run {rid} in {store.path}", "--audit")
    config = src.mapping(start, "config")
    capital = src.number(start, "config.capital", positive=True)
    src.mapping(start, "config.strategy", optional=True)
    src.mapping(start, "model.thresholds", optional=True)
    model = src.text(start, "model.path")
    command = str(start.get("command", "strattest"))
    raw = bar_table(rid, events)
    if raw.empty:
        raise OptionError(f"run {rid} in {store.path} records no bar to draw", flag="--run")
    raw = src.bars(raw)
    src.mapping(start, "config.costs")
    ends = src.blocks(block_ends(rid, events))
    done, notes = replay(config, model, raw, ends["buy_and_hold_return_pct"].to_numpy())
    fills = fill_table(rid, events)
    parts, more = split_costs(fills, config, done, src)
    blocks = with_costs(ends, fills, parts, capital)
    end = next((e for e in events if e.kind == "run_end"), None)
    summary, parity = {}, None
    if end is not None:
        summary = src.figures(end.payload, "summary")
        parity = src.mapping(end.payload, "parity")
        # run_end's figures lack the trading days; the bars give them, as strattest counts
        # them (every run of a strattest trades the same bars), so the * marks match
        days = sample_size(clock_columns(raw["ts"].to_numpy(np.int64))[1]).to_dict()
        summary = {name: dict(figures) | days for name, figures in summary.items()}
    walk = command == "walk-forward"
    unit = "session" if walk else "block"
    judgement = judged(summary, blocks, unit, run_seed(start))
    fitted = start["model"].get("thresholds") or {}
    thresholds, why = thresholds_of(config.get("strategy") or {}, fitted)
    if walk:
        thresholds, why = {}, ["each fold's model trades with its own thresholds: none is drawn"]
    bars = bar_frame(
        raw,
        p_stream=raw["p_stream"].to_numpy(),
        buy_and_hold=None if done is None else done.buy_and_hold,
        label=None if done is None else labels(done.market, raw["ts"], done.meta["label"]),
    )
    return ReportData(
        title=f"audited {command} run {rid} ({run['status']}), {counted(len(blocks), unit)}",
        source=f"audit database {store.path}, run {rid}",
        unit=unit,
        capital=capital,
        blocks=block_frame(blocks),
        summary=summary,
        costs={"strategy": cost_figures(parts, capital, len(blocks)).to_dict()},
        verdict=None if judgement is None else judgement.to_dict(),
        config={k: start[k] for k in ("command", "config", "model", "data") if k in start}
        | ({"walk_forward": start["walk_forward"]} if walk else {}),
        hashes=chain_hashes(run, start),
        bars=bars,
        thresholds=thresholds,
        parity=parity,
        folds=schedule(start) if walk else None,
        notes=notes + more + why + ([] if end else [f"run {rid} never reached its run_end"]),
        banners=banners(bool(start.get("in_sample")), str(config.get("fill"))),
        inputs=[Path(store.path), Path(f"{store.path}-wal"), Path(f"{store.path}-shm")]
        + replay_inputs(Path(model), [d for d in config.get("data") or [] if isinstance(d, str)]),
    )


def bar_table(rid: str, events: list[Event]) -> pd.DataFrame:
    """The bar events as strattest's per-bar table (``bars.parquet``'s columns) with
    ``p_stream``."""
    rows = []
    for e in events:
        if e.kind != "bar":
            continue
        p = e.payload
        with fields(rid, e.seq, "bar"):
            rows.append(
                {
                    "ts": e.ts,
                    "block": int(p["block"]),
                    "probability": _float(p["p_seq"]),
                    "p_stream": _float(p["p_stream"]),
                    "exposure": float(p["exposure"]),
                    "equity": float(p["equity"]),
                    **{f"close_{s}": float(p["close"][s]) for s in SYMBOLS},
                    **{f"shares_{s}": int(p["positions"][s]) for s in SYMBOLS},
                }
            )
    return pd.DataFrame(rows)


def fill_table(rid: str, events: list[Event]) -> pd.DataFrame:
    """One row per fill: block, symbol, signed quantity, price, fees (commission and
    regulatory fees, charged in cash)."""
    rows = []
    for e in (e for e in events if e.kind == "fill"):
        p = e.payload
        with fields(rid, e.seq, "fill"):
            sign = 1 if p["side"] == "buy" else -1
            rows.append(
                {
                    "block": int(p["block"]),
                    "symbol": str(p["symbol"]),
                    "qty": sign * int(p["qty"]),
                    "price": float(p["price"]),
                    "fees": float(p["fees"]),
                }
            )
    columns = ["block", "symbol", "qty", "price", "fees"]
    return pd.DataFrame(rows, columns=columns)


def block_ends(rid: str, events: list[Event]) -> pd.DataFrame:
    """The block_end events: block, start, end, return % and buy-and-hold's, fills."""
    rows = []
    for e in (e for e in events if e.kind == "block_end"):
        p = e.payload
        with fields(rid, e.seq, "block_end"):
            rows.append(
                {
                    "block": int(p["block"]),
                    "start": p["start"],
                    "end": p["end"],
                    "return_pct": _float(p["return_pct"]),
                    "fills": int(p["fills"]),
                    "buy_and_hold_return_pct": _float(p["buy_and_hold_return_pct"]),
                }
            )
    return pd.DataFrame(
        rows, columns=["block", "start", "end", "return_pct", "fills", "buy_and_hold_return_pct"]
    )


def split_costs(fills: pd.DataFrame, config: dict, done, src: Source) -> tuple[dict, list[str]]:
    """Each fill's commission, regulatory fees and spread (``costs.split_fill_costs``); the
    spread needs the half-spread of its instrument: the config's, or the replayed market's
    median price (the default), else it is NaN and the report says so."""
    try:
        model = CostModel(**config["costs"])
    except ValidationError as exc:
        src.refuse("config.costs", f"breaks the cost model ({excerpt(exc, 120)})")
    if model.half_spread_bp is not None:
        half = {s: model.half_spread_bp[s] * 1e-4 for s in SYMBOLS}
    else:
        half = None if done is None else done.half_spread
    h = np.array([(half or {}).get(s, 0.0) for s in fills["symbol"]], dtype=np.float64)
    parts = split_fill_costs(
        fills["qty"].to_numpy(), fills["price"].to_numpy(), fills["fees"].to_numpy(), h, model
    )
    if half is not None:
        return parts, []
    parts["spread"] = np.full(len(fills), np.nan)
    return parts, [
        "the spread paid is not recorded in the audit and its market was not "
        "replayed: spread n/a (commissions and regulatory fees are)"
    ]


def with_costs(ends: pd.DataFrame, fills: pd.DataFrame, parts: dict, capital: float):
    """The block ends with each block's costs (the three and their sum) and turnover
    (traded notional / capital, as strattest's block table)."""
    block = fills["block"].to_numpy(np.int64)
    order = ends["block"].to_numpy(np.int64)

    def per_block(values) -> np.ndarray:
        sums = pd.Series(np.asarray(values, np.float64)).groupby(block).sum(min_count=1)
        return sums.reindex(order, fill_value=0.0).to_numpy()

    out = ends.copy()
    for name, values in parts.items():
        out[name] = per_block(values)
    out["costs"] = out["commissions"] + out["regulatory_fees"] + out["spread"]
    out["turnover"] = block_turnover(
        fills["qty"].to_numpy(), fills["price"].to_numpy(), block, order, capital
    )
    return out


def run_seed(start: dict) -> int:
    """The seed of a run's bootstrap intervals, as its run_start records it."""
    return int(start.get("seed", (start.get("config") or {}).get("seed", 7)))


def judged(summary: dict, blocks: pd.DataFrame, unit: str, seed: int) -> Verdict | None:
    """The verdict strattest prints, from run_end's figures and the paired per-block
    difference from buy-and-hold (the block_end events, the run's seed); None for a run
    without a baseline (a live run). ``sentio runs`` shows the same one."""
    if "strategy" not in summary or "buy_and_hold_qqq" not in summary:
        return None
    over = paired_difference(
        blocks["return_pct"].to_numpy(float) / 100,
        blocks["buy_and_hold_return_pct"].to_numpy(float) / 100,
        seed,
    )
    return verdict(summary["strategy"], summary["buy_and_hold_qqq"], unit=unit, over=over)


def chain_hashes(run: dict, start: dict) -> dict[str, str]:
    """The chain head and the hashes run_start recorded (model, data)."""
    model, data = start.get("model") or {}, start.get("data") or {}
    out = {
        "audit run": str(run["run_id"]),
        "chain head": str(run["head"]),
        "model manifest": str(model.get("manifest_hash")),
        "model feature spec": str(model.get("spec_hash")),
        "QQQ bars used": str(data.get("qqq_bars_sha256")),
    }
    for f in data.get("files") or []:
        out[f"data {f.get('path')}"] = str(f.get("sha256"))
    return out


def schedule(start: dict) -> list[dict]:
    """A walk-forward run's folds as its run_start records them: schedule, seed, gate."""
    walk = start.get("walk_forward") or {}
    gates = walk.get("gates") or []
    rows = []
    for i, fold in enumerate(walk.get("schedule") or []):
        gate = gates[i] if i < len(gates) else {}
        rows.append(fold | {"promoted": gate.get("promote"), "gate_reason": gate.get("reason")})
    return rows


def _float(value) -> float:
    return np.nan if value is None else float(value)


__all__ = [
    "ReadOnlyStore",
    "block_ends",
    "build",
    "chain_hashes",
    "fill_table",
    "from_audit",
    "judged",
    "open_run",
    "schedule",
    "split_costs",
    "wal_mode",
    "with_costs",
]
