"""Recording a strattest run into the audit store (``sentio strattest --audit DB``).

One chain per run, in the order things happen at each bar t of each block:

- ``run_start``: the full config, the model (path, manifest and spec hashes, seed,
  thresholds), the data (file hashes, the hash of the QQQ bars used, simulated siblings),
  package versions, the machine (``core.environment``: CPU instruction set, library versions)
  and the seed;
- ``block_start``: the probabilities the adaptive rule remembers when the block starts (and
  their bar times), so that ``saudit verify`` can replay every decision;
- ``fill`` events of the orders decided at t-1 (they fill at t's open, the default mode);
- ``bar``: p from the sequence context (what the strategy used) and from the stream
  context, their difference, the signal and its reason code, the target exposure and
  weights, the closes, the shares held and the equity at the close;
- ``order`` events decided at t's close; with ``--fill close`` their ``fill`` events follow;
- ``block_end`` after a block's last bar, ``run_end`` (metrics, parity, event count, the hash
  of the event before it) last.

The stream context is the live path: every block bar goes through ``on_bar``. The block bars
are cut into chunks of CHUNK bars that stream on a thread pool while the backtest runs (ONNX
Runtime releases the GIL; one intra-op thread per call gives the same bits in any thread).
Each chunk's context resumes from a copy of one feature state carried forward over the series
(``StreamState.catch_up``: one call of the same ``advance`` kernel as ``update``) and pushes
the T bars before the chunk to fill its window ring, so it is in the state a context that saw
every bar would be in. Events are written block by block, each block in one transaction: a
killed run leaves every finished block readable.

Wall-clock time never enters the chain, so two identical runs on one machine have the same
head; the run id is derived from the ``run_start`` payload (``-2``, ``-3`` ... when the
database holds it, claimed in one transaction). Before returning, the recorder verifies the
run it wrote (chain, replay, decisions) and raises AuditError if it does not hold.
"""

from __future__ import annotations

import json
import os
import platform
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd

from sentio.audit.store import AuditError, AuditStore
from sentio.audit.verify import verify_run
from sentio.backtest.strattest import SYMBOLS, Plan, StrattestResult, backtest
from sentio.core.clock import build_time
from sentio.core.environment import environment, package_versions
from sentio.core.hashing import canonical_json, clean, number, sha256_file, sha256_hex
from sentio.features.inputs import BarInput, as_input
from sentio.infer import SequenceContext, StreamContext, bars_of, load_model
from sentio.infer.parity import tally
from sentio.infer.seq import data_hash

CHUNK = 160  # bars per stream job: small pieces keep every worker busy to the end
PACKAGES = (
    "sentio",
    "numpy",
    "pandas",
    "pyarrow",
    "numba",
    "onnxruntime",
    "pydantic",
    "exchange_calendars",
)


def signal_of(exposure: float) -> str:
    """The side a target exposure takes: long, short or flat.

    >>> signal_of(2.0), signal_of(-1.0), signal_of(0.0)
    ('long', 'short', 'flat')
    """
    return "long" if exposure > 0 else "short" if exposure < 0 else "flat"


def versions() -> dict[str, str]:
    return {"python": platform.python_version(), **package_versions(PACKAGES)}


def run_start_payload(result: StrattestResult, model, data: BarInput) -> dict:
    """What the run depends on: config, model, data, versions, seeds."""
    config = result.config
    meta = json.loads((Path(result.model) / "model.meta.json").read_text())
    files = [
        {"path": name, "sha256": sha256_file(name)} for name in config.data if name != "builtin"
    ]
    ts = result.market["ts"].to_numpy(np.int64)
    return clean(
        {
            "command": "strattest",
            "config": json.loads(config.model_dump_json()),
            "seed": config.seed,
            "model": {
                "path": str(result.model),
                "manifest_hash": model.manifest_hash,
                "spec_hash": model.spec_hash,
                "seq_len": model.seq_len,
                "features": len(model.feature_names),
                "train_seed": meta.get("seed"),
                "thresholds": meta.get("thresholds"),
            },
            "data": {
                "files": files,
                "builtin": meta["data"].get("synth") if config.data == ("builtin",) else None,
                "qqq_bars": len(ts),
                "qqq_bars_sha256": data_hash(data),
                "range": [_iso(ts[0]), _iso(ts[-1])],
                "blocks_range": list(result.data_range),
                "simulated": result.simulated,
            },
            "symbols": list(SYMBOLS),
            "in_sample": result.in_sample,
            "blocks_asked": result.blocks_asked,
            "blocks_run": result.blocks_run,
            "versions": versions(),
            "environment": environment(),
        }
    )


def _iso(ns) -> str:
    return pd.Timestamp(int(ns), tz="UTC").isoformat()


def chunks(spans: list[tuple[int, int]], size: int) -> list[tuple[int, int, int]]:
    """(block, start, stop) pieces of at most ``size`` rows, in order.

    >>> chunks([(10, 15), (15, 18)], 2)
    [(0, 10, 12), (0, 12, 14), (0, 14, 15), (1, 15, 17), (1, 17, 18)]
    """
    return [
        (b, a, min(a + size, stop))
        for b, (start, stop) in enumerate(spans)
        for a in range(start, stop, size)
    ]


def stream_chunk(model, features, data: BarInput, frame: pd.DataFrame, cut, start, stop):
    """Stream probabilities of rows ``start:stop``: a context whose features have seen the
    rows before ``cut`` resumes, pushes ``cut:start`` (the ring) and takes each row through
    ``on_bar``."""
    context = StreamContext.resuming(model, features, data.slice(cut, start))
    return np.array([context.on_bar(bar) for bar in bars_of(frame.iloc[start:stop])])


def launch(pool: ThreadPoolExecutor, plan: Plan, size: int, models: list | None = None):
    """Load the model through the stream door and queue every chunk, each with a copy of one
    feature state carried forward over the rows between chunks (one pass over the series).
    ``models``: the artifact of each block (a walk-forward run; every one has the same feature
    spec), else the plan's model everywhere. Returns the first block's model."""
    paths = models or [plan.model] * plan.blocks_run
    loaded = {path: load_model(path, door="metadata.json") for path in dict.fromkeys(paths)}
    first = loaded[paths[0]]
    data = as_input(plan.qqq)
    cursor, seen, jobs = first.engine.stream(), 0, []
    for block, start, stop in chunks(plan.spans, size):
        model = loaded[paths[block]]
        cut = max(start - model.reach, seen)
        cursor.catch_up(data.slice(seen, cut))
        seen = cut
        job = pool.submit(stream_chunk, model, cursor.copy(), data, plan.qqq, cut, start, stop)
        jobs.append((block, job))
    return first, data, jobs


def run_base(payload: dict) -> str:
    """The run id of a run_start payload (the store adds ``-2``, ``-3`` ... when taken)."""
    return "st-" + sha256_hex(canonical_json(payload))[:12]


def histories(result: StrattestResult) -> list[tuple[list[float], list[int]]]:
    """Per block, the probabilities (and their bar times) the adaptive rule remembers when the
    block starts: the last ``adaptive_window`` valid ones before it, as strattest gives them.
    Empty for the other rules, which remember nothing."""
    strategy = result.config.strategy
    if strategy.rule != "adaptive":
        return [([], [])] * result.blocks_run
    # The same call strattest made (a cache hit when its cache is on): the same bits.
    p = SequenceContext(result.model, cache_dir=result.config.cache_dir).calculate_probability(
        result.market
    )
    ts = result.market["ts"].to_numpy(np.int64)
    firsts = result.per_bar.groupby("block")["ts"].first().to_numpy(np.int64)
    out = []
    for first in firsts:
        start = int(np.searchsorted(ts, first))
        valid = ~np.isnan(p[:start])
        keep = slice(-strategy.adaptive_window, None)
        out.append(
            ([float(x) for x in p[:start][valid][keep]], [int(t) for t in ts[:start][valid][keep]])
        )
    return out


def audited_strattest(
    plan: Plan,
    store: AuditStore,
    *,
    workers: int | None = None,
    progress: Callable[[str, int, int], None] | None = None,
) -> tuple[StrattestResult, str]:
    """Backtest ``plan`` and record it as one run; returns (result, run id).

    The stream path runs in pieces of CHUNK block bars on worker threads while the backtest
    runs (the blocks are known before anything is computed); events are then written block by
    block. Work still queued is cancelled if anything fails.
    ``progress(stage, done, total)``: stage "blocks" from the backtest, "audit" per block
    written.
    """
    threads = workers or os.cpu_count() or 1
    with ThreadPoolExecutor(max_workers=threads) as pool, cancel_on_error(pool):
        launched = pool.submit(launch, pool, plan, CHUNK)
        blocks = (lambda done, total: progress("blocks", done, total)) if progress else None
        result = backtest(plan, blocks)
        model, data, jobs = launched.result()
        streams = (
            np.concatenate([job.result() for block, job in jobs if block == b])
            for b in range(plan.blocks_run)
        )
        written = (lambda done, total: progress("audit", done, total)) if progress else None
        run_id = record(store, result, model, data, streams, written)
    return result, run_id


@contextmanager
def cancel_on_error(pool: ThreadPoolExecutor):
    try:
        yield
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)
        raise


def record(
    store: AuditStore,
    result: StrattestResult,
    model,
    data: BarInput,
    streams: Iterable[np.ndarray],
    progress: Callable[[int, int], None] | None = None,
    *,
    start: dict | None = None,
    remembered: list | None = None,
    before: dict[int, list] | None = None,
) -> str:
    """Write ``result`` with the stream probabilities of each block (in block order) as one
    run, a transaction per block; returns the run id. A walk-forward run gives its own
    run_start payload (``start``), each block's remembered probabilities (``remembered``, of
    the model that trades it) and the events that open a block (``before``: its swap)."""
    start_payload = start or run_start_payload(result, model, data)
    per_bar = result.per_bar
    run_id = store.claim_run(
        run_base(start_payload), start_payload, started_at=build_time().isoformat()
    )
    store.append(run_id, [(int(per_bar["ts"].iloc[0]), "run_start", start_payload)])
    remembered = remembered or histories(result)
    blocks = per_bar["block"].to_numpy()
    bar_ts = per_bar["ts"].to_numpy(np.int64)
    fills = result.fills.assign(
        block=blocks[np.searchsorted(bar_ts, result.fills["ts"].to_numpy(np.int64))]
    )
    p_seq, p_live = [], []
    for b, p_stream in enumerate(streams):
        inside = per_bar[blocks == b]
        p_seq.append(inside["probability"].to_numpy())
        p_live.append(p_stream)
        opening = (before or {}).get(b, [])
        store.append(
            run_id, opening + block_events(result, b, inside, p_stream, fills, remembered[b])
        )
        if progress:
            progress(b + 1, result.blocks_run)
    end = {
        "summary": {k: v.to_dict() for k, v in result.summary.items()},
        "blocks_run": result.blocks_run,
        "parity": tally(np.concatenate(p_seq), np.concatenate(p_live)).to_dict(),
        "events": store.count(run_id) + 1,  # run_end included
        "last_hash": store.head(run_id),  # the hash of the event before run_end
    }
    store.append(run_id, [(int(bar_ts[-1]), "run_end", clean(end))])
    store.end_run(run_id)
    # The run checks itself before anyone relies on it (issue 12): a poisoned probability cache
    # or a bug shows here, not later. The stream path was just run on every bar, so the
    # re-run from the data file is left to `saudit verify`.
    verdict = verify_run(store, run_id, stream=False)
    if not verdict.ok:
        raise AuditError(
            f"{store.path}: run {run_id} was recorded but fails its own verification at seq "
            f"{verdict.first_bad_seq}: {verdict.problem}"
        )
    return run_id


def block_events(
    result: StrattestResult,
    b: int,
    bars: pd.DataFrame,
    p_stream: np.ndarray,
    fills: pd.DataFrame,
    history: tuple[list[float], list[int]] = ([], []),
) -> list[tuple[int, str, dict]]:
    """Every event of block ``b`` in the order it happened, opened by its block_start (the
    adaptive rule's remembered probabilities ``history``: values and bar times)."""
    at_close = result.config.fill == "close"
    fills_at = by_ts(fills[fills["block"] == b])
    orders_at = by_ts(result.orders)
    positions = dict.fromkeys(SYMBOLS, 0)
    start = {"block": b, "bars": len(bars), "history": history[0], "history_ts": history[1]}
    events = [(int(bars["ts"].iloc[0]), "block_start", start)]
    columns = {c: bars[c].to_numpy() for c in bars.columns}
    for i in range(len(bars)):
        t = int(columns["ts"][i])
        if not at_close and t in fills_at:
            events += _fills(fills_at[t], b, positions)
        p_seq, p_live = columns["probability"][i], p_stream[i]
        exposure = float(columns["exposure"][i])
        events.append(
            (
                t,
                "bar",
                {
                    "block": b,
                    "p_seq": number(p_seq),
                    "p_stream": number(p_live),
                    "diff": number(p_live - p_seq),
                    "signal": signal_of(exposure),
                    "reason": str(columns["reason"][i]),
                    "exposure": exposure,
                    "weights": {s: float(columns[f"weight_{s}"][i]) for s in SYMBOLS},
                    "close": {s: float(columns[f"close_{s}"][i]) for s in SYMBOLS},
                    "positions": {s: int(columns[f"shares_{s}"][i]) for s in SYMBOLS},
                    "equity": float(columns["equity"][i]),
                },
            )
        )
        for order in orders_at.get(t, ()):
            events.append(
                (
                    t,
                    "order",
                    {
                        **_trade(b, order),
                        "target": int(order["target"]),
                        "fills_at": "this close" if at_close else "next open",
                    },
                )
            )
        if at_close and t in fills_at:
            events += _fills(fills_at[t], b, positions)
    last = bars.iloc[-1]
    events.append(
        (
            int(last["ts"]),
            "block_end",
            clean(
                {
                    "block": b,
                    **result.per_block.iloc[b][
                        ["start", "end", "return_pct", "fills", "fees", "buy_and_hold_return_pct"]
                    ].to_dict(),
                    "equity_end": float(last["equity"]),
                }
            ),
        )
    )
    return events


def _trade(block: int, row: dict) -> dict:
    """What an order and a fill share: block, symbol, side and unsigned quantity."""
    qty = int(row["qty"])
    side = "buy" if qty > 0 else "sell"
    return {"block": block, "symbol": row["symbol"], "side": side, "qty": abs(qty)}


def by_ts(frame: pd.DataFrame) -> dict[int, list[dict]]:
    """The rows of an orders or fills frame as plain records, grouped by bar time."""
    out: dict[int, list[dict]] = {}
    for record in frame.to_dict(orient="records"):
        out.setdefault(int(record["ts"]), []).append(record)
    return out


def _fills(group: list[dict], b: int, positions: dict) -> list[tuple[int, str, dict]]:
    out = []
    for fill in group:
        positions[fill["symbol"]] = int(fill["shares_after"])
        out.append(
            (
                int(fill["ts"]),
                "fill",
                {
                    **_trade(b, fill),
                    "price": float(fill["price"]),
                    "fees": float(fill["fees"]),
                    "simulated": bool(fill["simulated"]),
                    "cash_after": float(fill["cash_after"]),
                    "position_after": int(fill["shares_after"]),
                    "positions_after": dict(positions),
                },
            )
        )
    return out


__all__ = [
    "audited_strattest",
    "block_events",
    "clean",
    "histories",
    "number",
    "record",
    "run_base",
    "run_start_payload",
    "signal_of",
]
