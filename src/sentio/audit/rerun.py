"""``saudit verify``'s stream re-run: the probabilities a run recorded, computed again.

The replay (verify.py) proves that the cash, positions, decisions and metrics follow from the
recorded probabilities. This module checks the probabilities themselves: it loads the model
and the bars named in the run_start event (the model by its manifest hash, each data file by
its sha256, the built-in market by its parameters, and the QQQ bars by their hash), then takes
the chosen bars through a fresh stream context (``sentio.infer.StreamContext``, the live path)
and compares each probability bit for bit with the recorded p(stream); the four closes are
compared with the data too. The bars are a seeded sample (``sample`` of them, the seed in the
verdict) or all of them (``full``), the adaptive rule's remembered bars before the first block
included.

When the model or the data cannot be had as recorded (absent, another file, regenerated to
other bits), nothing is claimed: :class:`Unchecked` says why, and ``saudit verify`` exits 3.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sentio.audit.verify import Mismatch
from sentio.backtest.strattest import SYMBOLS, StrattestConfig, load_market
from sentio.core.errors import SentioError
from sentio.core.hashing import sha256_file
from sentio.features.inputs import BarInput, as_input, clock_columns
from sentio.infer import StreamContext, bars_of, load_model
from sentio.infer.seq import data_hash

SAMPLE = 64  # bars re-run by default: every bar has the same chance, the seed is reported


class Unchecked(Exception):
    """The stream re-run cannot be done as recorded; the message says why."""


@dataclass(frozen=True)
class Target:
    """One recorded probability to compute again: the bar time, the seq that recorded it,
    the value, and the closes recorded with it (None for a remembered history value)."""

    ts: int
    seq: int
    p: float | None
    close: dict | None
    model: dict | None = None  # the swap event of the model that decided it (None: run_start's)


def choose(targets: list[Target], sample: int, seed: int, full: bool) -> list[Target]:
    """All targets with ``full``, otherwise ``sample`` of them drawn with ``seed``, in time
    order.

    >>> ts = [Target(t, t, 0.5, None) for t in range(10)]
    >>> [t.ts for t in choose(ts, 3, 0, False)] == [t.ts for t in choose(ts, 3, 0, False)]
    True
    >>> len(choose(ts, 3, 0, True)), len(choose(ts, 30, 0, False))
    (10, 10)
    """
    if full or sample >= len(targets):
        return sorted(targets, key=lambda t: t.ts)
    picked = np.random.default_rng(seed).choice(len(targets), size=sample, replace=False)
    return sorted((targets[i] for i in picked), key=lambda t: t.ts)


def load_recorded(start: dict):
    """(model, QQQ frame, closes per instrument) as the run_start event names them, or
    Unchecked naming what differs."""
    model_doc, data_doc = start.get("model") or {}, start.get("data") or {}
    live = start.get("live") or {}
    if start.get("command") == "live" and live.get("feed_kind") != "replay":
        raise Unchecked(
            f"the live run's bars came from a {live.get('feed_kind')} feed, not a file, so they "
            "cannot be read again here"
        )
    model = recorded_model(model_doc.get("path"), model_doc.get("manifest_hash"), RUN_START)
    for entry in data_doc.get("files") or []:
        name = entry["path"]
        if not Path(name).is_file():
            raise Unchecked(f"data file {name} absent")
        if sha256_file(name) != entry["sha256"]:
            raise Unchecked(f"data file {name} differs from the one recorded (sha256)")
    config = StrattestConfig.model_validate(start["config"])
    qqq, prices, _ = load_market(config, {"data": {"synth": data_doc.get("builtin")}})
    data = as_input(qqq)
    if data_hash(data) != data_doc.get("qqq_bars_sha256"):
        where = "the built-in market regenerated here" if data_doc.get("builtin") else "the bars"
        raise Unchecked(
            f"{where} hash to {data_hash(data)[:12]}..., the run recorded "
            f"{str(data_doc.get('qqq_bars_sha256'))[:12]}... (another machine's numpy can give "
            "the built-in market other bits; docs/audit.md)"
        )
    return model, qqq, data, prices["close"]


def stream_rows(model, data: BarInput, frame, rows: np.ndarray) -> np.ndarray:
    """Stream probabilities of the sorted ``rows`` of ``data``: one feature state carried
    forward over the series (``catch_up``); each run of consecutive rows resumes from a copy,
    pushes the T bars before it and takes its bars through ``on_bar`` (as record.launch)."""
    out = np.empty(len(rows))
    cursor, seen, i = model.engine.stream(), 0, 0
    while i < len(rows):
        j = i
        while j + 1 < len(rows) and rows[j + 1] == rows[j] + 1:
            j += 1
        start, stop = int(rows[i]), int(rows[j]) + 1
        cut = max(start - model.reach, seen)
        cursor.catch_up(data.slice(seen, cut))
        seen = cut
        context = StreamContext.resuming(model, cursor.copy(), data.slice(cut, start))
        out[i : j + 1] = [context.on_bar(bar) for bar in bars_of(frame.iloc[start:stop])]
        i = j + 1
    return out


RUN_START = "the run_start model"


def recorded_model(path, manifest: str | None, named: str):
    """The model an event names (the run_start's, or a walk-forward swap's), loaded and
    checked to be that model (its manifest); else Unchecked: nothing is claimed about
    another model or an absent one."""
    path = Path(str(path))
    if not (path / "manifest.json").is_file():
        raise Unchecked(f"model {path}, {named}, absent (run verify where the run was recorded)")
    try:
        model = load_model(path, door="metadata.json")
    except SentioError as exc:
        raise Unchecked(f"model {path}, {named}, fails its own checks: {exc}") from None
    if model.manifest_hash != manifest:
        raise Unchecked(
            f"model {path} is another model than {named} (manifest {model.manifest_hash[:12]}"
            f"..., the run recorded {str(manifest)[:12]}...)"
        )
    return model


def check_thresholds(path, thresholds, *, seq: int, named: str) -> None:
    """The thresholds the replay decided with must be the recorded model's own."""
    meta = json.loads((Path(str(path)) / "model.meta.json").read_text())
    if meta.get("thresholds") != thresholds:
        raise Mismatch(
            seq,
            f"{named} is recorded with the thresholds {thresholds}; the model {path} (same "
            f"manifest) has {meta.get('thresholds')}",
        )


def swapped_model(swap: dict, seq: int):
    """The model a walk-forward swap event at ``seq`` names, with the swap's thresholds."""
    named = f"the one swapped in at seq {seq}"
    model = recorded_model(swap.get("to"), swap.get("to_manifest"), named)
    check_thresholds(swap.get("to"), swap.get("thresholds"), seq=seq, named=named)
    return model


def check_sessions(blocks: list[tuple[int, list[int]]], frame) -> int:
    """Each walk-forward block must hold exactly the bars of one session of the recorded data
    (a block is a session): no bar left out, none added. Returns the blocks checked."""
    ts = frame["ts"].to_numpy(np.int64)
    session = clock_columns(ts)[1].astype(np.int64)
    for seq, times in blocks:
        rows = np.searchsorted(ts, times)
        if not times or (rows >= len(ts)).any() or not np.array_equal(ts[rows], times):
            raise Mismatch(seq, "the block's bar times are not bars of the recorded data")
        day = session[rows[0]]
        whole = ts[session == day]
        if not np.array_equal(whole, np.asarray(times, dtype=np.int64)):
            raise Mismatch(
                seq,
                f"the block holds {len(times)} bars; its session has {len(whole)} in the "
                "recorded data (a walk-forward block is one whole session)",
            )
    return len(blocks)


def rerun(
    start: dict,
    targets: list[Target],
    *,
    sample: int = SAMPLE,
    seed: int = 0,
    full: bool = False,
    blocks: list[tuple[int, list[int]]] | None = None,
) -> dict:
    """Re-run the stream path on the chosen targets, each with the model that decided it;
    returns what was checked. ``blocks`` (walk-forward runs): each block's block_start seq and
    bar times, checked to be one whole session of the data. Raises Unchecked when a model or
    the data is not the recorded one, and Mismatch (seq, problem) when a recorded value does
    not follow from them."""
    model, frame, data, closes = load_recorded(start)
    check_thresholds(start["model"]["path"], start["model"].get("thresholds"), seq=0,
                     named=RUN_START)  # fmt: skip
    sessions = check_sessions(blocks, frame) if blocks is not None else None
    chosen = choose(targets, sample, seed, full)
    ts = frame["ts"].to_numpy(np.int64)
    rows = np.searchsorted(ts, [t.ts for t in chosen])
    for target, row in zip(chosen, rows, strict=True):
        if row >= len(ts) or ts[row] != target.ts:
            raise Mismatch(target.seq, f"bar time {target.ts} is not a bar of the recorded data")
        if target.close is not None:
            for j, symbol in enumerate(SYMBOLS):
                if target.close[symbol] != closes[row, j]:
                    raise Mismatch(
                        target.seq,
                        f"{symbol} close recorded as {target.close[symbol]}; the data has "
                        f"{closes[row, j]}",
                    )
    keys = [None if t.model is None else t.model["seq"] for t in chosen]  # the deciding model
    models = {None: model}
    for target, key in zip(chosen, keys, strict=True):
        if key not in models:
            models[key] = swapped_model(target.model, key)
    p = np.empty(len(chosen))
    for key, loaded in models.items():
        mine = np.array([k == key for k in keys])
        if mine.any():
            p[mine] = stream_rows(loaded, data, frame, rows[mine])
    for target, value in zip(chosen, p, strict=True):
        recorded = np.nan if target.p is None else target.p
        if not (recorded == value or (np.isnan(recorded) and np.isnan(value))):
            what = "p(stream)" if target.close is not None else "a remembered probability"
            raise Mismatch(
                target.seq,
                f"{what} recorded as {target.p!r} at {target.ts}; the stream context on the "
                f"recorded data gives {value!r}",
            )
    out = {
        "bars": len(chosen),
        "of": len(targets),
        "mode": "all" if len(chosen) == len(targets) else "seeded sample",
        "seed": seed,
    }
    if len(models) > 1:  # a walk-forward run's swapped-in models, each loaded and checked
        out["models"] = len(models)
    if sessions is not None:
        out["sessions"] = sessions
    return out


__all__ = [
    "SAMPLE",
    "Target",
    "Unchecked",
    "check_sessions",
    "check_thresholds",
    "choose",
    "recorded_model",
    "rerun",
    "stream_rows",
    "swapped_model",
]
