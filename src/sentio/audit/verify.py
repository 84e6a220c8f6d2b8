"""``saudit verify``: walk the chain, then replay the run from its fills alone.

1. The chain (store.verify_chain): every seq present, each prev_hash the previous hash, each
   hash recomputed from its row; the last hash must be the head written when the run ended
   (so rows cut from the end are found too).
2. The replay, in seq order, from the run_start config only: each block starts with the
   recorded capital and no shares; each fill moves cash and shares (sells add
   qty x price - fees, buys take qty x price + fees, the engine's arithmetic); the cash and
   shares the fill recorded must match; each bar's equity (cash + shares x the recorded
   closes, after that bar's fills) and shares must match; each order's target must be the
   shares held when it was decided plus its quantity; each block end's equity and return;
   p(stream) - p(seq) must be the recorded difference, and the two paths must agree.
3. The metrics: the replayed equity, holdings and fills go through the same code as strattest
   (``backtest.strattest.evaluate_run`` -> metrics.py); every strategy figure must equal the
   recorded run_end figure. Buy-and-hold and flat figures are recorded, not replayed (they
   have no fills in the run).

Money is compared to the cent; the other figures to 1e-9 relative (the replay does the same
float operations in the same order, so they agree exactly unless something was changed).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np

from sentio.audit.store import AuditStore, verify_chain
from sentio.backtest.execution import F_BAR, F_FEES, F_INSTRUMENT, F_PRICE, F_QTY
from sentio.backtest.strattest import SYMBOLS, StrattestConfig, evaluate_run
from sentio.features.inputs import clock_columns

CENT = 0.005
RELATIVE = 1e-9
MONEY = {"fees"}
FILL_SIDE = ("order", "fill")


@dataclass
class Verdict:
    run_id: str
    ok: bool
    events: int
    status: str
    first_bad_seq: int | None = None
    problem: str = ""
    checked: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {
            "run_id": self.run_id,
            "ok": self.ok,
            "events": self.events,
            "status": self.status,
            "first_bad_seq": self.first_bad_seq,
            "problem": self.problem,
            "checked": self.checked,
        }


class Mismatch(Exception):
    """The first thing the replay does not reproduce (internal to this module)."""

    def __init__(self, seq: int, what: str) -> None:
        super().__init__(what)
        self.seq, self.what = seq, what


def same(recorded, replayed, money: bool = False) -> bool:
    """Recorded and replayed agree (None stands for NaN in a payload).

    >>> same(None, float("nan")), same(1.0, 1.0 + 1e-12), same(100.0, 100.004, money=True)
    (True, True, True)
    """
    a = float("nan") if recorded is None else float(recorded)
    b = float("nan") if replayed is None else float(replayed)
    if np.isnan(a) or np.isnan(b):
        return bool(np.isnan(a) and np.isnan(b))
    if money:
        return abs(a - b) < CENT
    return abs(a - b) <= RELATIVE * max(1.0, abs(a), abs(b))


def verify_run(store: AuditStore, run_id: str | None = None) -> Verdict:
    run = store.run(run_id)
    run_id = run["run_id"]
    chain = verify_chain(store, run_id)
    verdict = Verdict(run_id, False, chain.events, run["status"])
    if not chain.ok:
        verdict.first_bad_seq, verdict.problem = chain.first_bad_seq, chain.reason
        return verdict
    rows = store.events(run_id)
    if run["status"] == "complete" and run["recorded_head"] != run["head"]:
        verdict.first_bad_seq = len(rows)
        verdict.problem = (
            f"the chain ends at seq {len(rows) - 1} with hash {run['head'][:16]}..., but the "
            f"run ended with head {run['recorded_head'][:16]}... (rows were removed from the end)"
        )
        return verdict
    try:
        verdict.checked = Replay(rows).run()
    except Mismatch as bad:
        verdict.first_bad_seq, verdict.problem = bad.seq, bad.what
        return verdict
    if run["status"] != "complete":
        verdict.first_bad_seq = len(rows)
        verdict.problem = (
            f"the run is incomplete: the chain is intact through seq {len(rows) - 1} but the "
            "run never ended (killed, or still running); its metrics cannot be checked"
        )
        return verdict
    verdict.ok = True
    return verdict


class Replay:
    """Positions, cash, equity and metrics rebuilt from the events."""

    def __init__(self, rows: list[tuple]) -> None:
        self.rows = rows
        self.bars: list[tuple[int, int, float, list[int]]] = []  # ts, block, equity, shares
        self.fills: list[tuple[int, int, int, float, float]] = []  # bar, instrument, qty, ...
        self.block_fills = 0
        self.block_fees = 0.0
        self.pending = None  # the last bar event: checked once its bar's fills are in
        self.parity = {"bars": 0, "compared": 0, "bars_differ": 0, "max_abs_diff": 0.0}
        self.summary: dict | None = None  # the strategy metrics replayed at run_end

    def run(self) -> dict:
        if not self.rows or self.rows[0][2] != "run_start":
            raise Mismatch(0, "seq 0 is not the run_start event")
        start = json.loads(self.rows[0][3])
        self.config = StrattestConfig.model_validate(start["config"])
        self.capital = self.config.capital
        self.block = None
        ended = False
        for seq, ts, kind, payload, _prev, _hash in self.rows[1:]:
            event = json.loads(payload)
            # a bar is checked once every fill of its ts is in (with --fill close, the fills
            # of its own orders follow it)
            if self.pending is not None and (ts != self.pending[1] or kind not in FILL_SIDE):
                self.check_bar()
            if kind in ("bar", "fill", "order", "block_end") and event["block"] != self.block:
                self.new_block(seq, event["block"])
            if kind == "fill":
                self.fill(seq, ts, event)
            elif kind == "bar":
                self.bar(seq, ts, event)
            elif kind == "order":
                self.order(seq, event)
            elif kind == "block_end":
                self.block_end(seq, event)
            elif kind == "run_end":
                self.run_end(seq, event)
                ended = True
            else:
                raise Mismatch(seq, f"unknown event kind {kind!r}")
        if self.pending is not None:
            self.check_bar()
        return {
            "bars": len(self.bars),
            "fills": len(self.fills),
            "blocks": len({b for _, b, _, _ in self.bars}),
            "metrics_replayed": ended,
            "metrics": self.summary,
            "parity": self.parity,
        }

    def new_block(self, seq: int, block: int) -> None:
        if self.block is not None and block != self.block + 1:
            raise Mismatch(seq, f"block {block} follows block {self.block}")
        self.block, self.cash = block, self.capital
        self.shares = dict.fromkeys(SYMBOLS, 0)
        self.block_fills, self.block_fees = 0, 0.0
        self.last_equity = self.capital

    def fill(self, seq: int, ts: int, e: dict) -> None:
        qty, price, fees = int(e["qty"]), float(e["price"]), float(e["fees"])
        notional = qty * price
        if e["side"] == "sell":
            self.cash += notional - fees
            self.shares[e["symbol"]] -= qty
            signed = -qty
        else:
            self.cash -= notional + fees
            self.shares[e["symbol"]] += qty
            signed = qty
        if not same(e["cash_after"], self.cash, money=True):
            raise Mismatch(
                seq,
                f"cash after this fill is recorded as {e['cash_after']:.2f}; the fills give "
                f"{self.cash:.2f}",
            )
        if e["position_after"] != self.shares[e["symbol"]] or e["positions_after"] != self.shares:
            raise Mismatch(
                seq,
                f"positions after this fill are recorded as {e['positions_after']}; the fills "
                f"give {self.shares}",
            )
        self.fills.append((len(self.bars), SYMBOLS.index(e["symbol"]), signed, price, fees))
        self.block_fills += 1
        self.block_fees += fees

    def bar(self, seq: int, ts: int, e: dict) -> None:
        p_seq, p_stream, diff = e["p_seq"], e["p_stream"], e["diff"]
        self.parity["bars"] += 1
        if (p_seq is None) != (p_stream is None):
            raise Mismatch(
                seq, f"one inference path has no probability: seq {p_seq}, stream {p_stream}"
            )
        if p_seq is not None:
            self.parity["compared"] += 1
            if not same(diff, p_stream - p_seq):
                raise Mismatch(seq, f"diff {diff} is not p(stream) - p(seq) = {p_stream - p_seq}")
            gap = abs(p_stream - p_seq)
            self.parity["max_abs_diff"] = max(self.parity["max_abs_diff"], gap)
            if p_stream != p_seq:
                self.parity["bars_differ"] += 1
                raise Mismatch(
                    seq,
                    f"the inference paths disagree: p(seq) {p_seq!r}, p(stream) {p_stream!r}",
                )
        self.pending = (seq, ts, e)

    def check_bar(self) -> None:
        seq, ts, e = self.pending
        self.pending = None
        value = self.cash
        for s in SYMBOLS:  # the engine's order of additions
            value += self.shares[s] * e["close"][s]
        if e["positions"] != self.shares:
            raise Mismatch(
                seq, f"positions recorded as {e['positions']}; the fills give {self.shares}"
            )
        if not same(e["equity"], value, money=True):
            raise Mismatch(
                seq, f"equity recorded as {e['equity']:.2f}; the fills and closes give {value:.2f}"
            )
        self.bars.append((ts, self.block, value, [self.shares[s] for s in SYMBOLS]))
        self.last_equity = value

    def order(self, seq: int, e: dict) -> None:
        signed = e["qty"] if e["side"] == "buy" else -e["qty"]
        if self.shares[e["symbol"]] + signed != e["target"]:
            raise Mismatch(
                seq,
                f"order to {e['side']} {e['qty']} {e['symbol']} holding "
                f"{self.shares[e['symbol']]} does not reach its target {e['target']}",
            )

    def block_end(self, seq: int, e: dict) -> None:
        if self.pending is not None:
            self.check_bar()
        rpb = 100 * (self.last_equity / self.capital - 1.0)
        checks = [
            ("equity_end", e["equity_end"], self.last_equity, True),
            ("return_pct", e["return_pct"], rpb, False),
            ("fills", e["fills"], self.block_fills, False),
            ("fees", e["fees"], self.block_fees, True),
        ]
        for name, recorded, replayed, money in checks:
            if not same(recorded, replayed, money):
                raise Mismatch(
                    seq,
                    f"block {e['block']} {name} recorded as {recorded}; replay gives {replayed}",
                )

    def run_end(self, seq: int, e: dict) -> None:
        if e.get("events") != seq + 1:
            raise Mismatch(seq, f"run_end says {e.get('events')} events, it is event {seq + 1}")
        ts = np.array([b[0] for b in self.bars], dtype=np.int64)
        block = np.array([b[1] for b in self.bars], dtype=np.int64)
        equity = np.array([b[2] for b in self.bars])
        held = np.array([b[3] for b in self.bars], dtype=np.int64).reshape(-1, len(SYMBOLS))
        fills = np.zeros((len(self.fills), 5))
        for i, (bar, j, qty, price, fees) in enumerate(self.fills):
            fills[i, [F_BAR, F_INSTRUMENT, F_QTY, F_PRICE, F_FEES]] = bar, j, qty, price, fees
        day = clock_columns(ts)[1]
        summary, _ = evaluate_run(equity, held, fills, block, day, self.capital, self.config)
        self.summary = summary.to_dict()
        recorded = e["summary"]["strategy"]
        for name, value in self.summary.items():
            pairs = (
                zip(recorded[name], value, strict=True)
                if isinstance(value, tuple)
                else [(recorded[name], value)]
            )
            for a, b in pairs:
                if not same(a, b, money=name in MONEY):
                    raise Mismatch(
                        seq, f"strategy {name} recorded as {recorded[name]}; the fills give {value}"
                    )
        if e["blocks_run"] != len(set(block.tolist())):
            raise Mismatch(
                seq, f"blocks_run {e['blocks_run']}; the events hold {len(set(block.tolist()))}"
            )


__all__ = ["Verdict", "same", "verify_run"]
