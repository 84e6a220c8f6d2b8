"""``saudit verify``: walk the chain, replay the run from its records, re-run the stream.

1. The chain (store.verify_chain): every seq present, each prev_hash the previous hash, each
   hash recomputed from its row. A complete run must end with its run_end event, whose payload
   holds the event count and the hash of the event before it; both must agree with the chain,
   and the head written when the run ended must be the last hash (rows cut from the end, or a
   killed run marked complete, are found). The runs table's copy of the config must be the
   chained run_start.
2. The replay, in seq order, from the run_start config only: each block starts with the
   recorded capital and no shares; each fill moves cash and shares (``settle``: sells add
   qty x price - fees, buys take qty x price + fees, the engine's arithmetic); the cash and
   shares the fill recorded must match; each bar's equity (``book_value``: cash + shares x
   the recorded closes, after that bar's fills) and shares must match; each order's target
   must be the shares held when it was decided plus its quantity; each block end's equity
   and return; p(stream) - p(seq) must be the recorded difference, and the two paths must
   agree.
3. The decisions: the strategy's own ``decide`` runs again over the recorded p(seq), the
   minutes left in the session and the run_start thresholds, from the state each block_start
   records; every bar's signal, reason, exposure and weights must follow. Each block holds
   ``block_size`` bars and the run the ``blocks_run`` of its run_start.
4. The metrics: the replayed equity, holdings and fills go through the same code as strattest
   (``backtest.strattest.evaluate_run`` -> metrics.py); every strategy figure must equal the
   recorded run_end figure. Buy-and-hold and flat figures are recorded, not replayed (they
   have no fills in the run).
5. The stream re-run (rerun.py): a seeded sample of bars (all with ``full``) through a fresh
   stream context on the recorded model and data; when those are absent or differ the verdict
   says "not checked" (``unchecked``) instead of passing.

Money is compared to the cent; the other figures to 1e-9 relative (the replay does the same
float operations in the same order, so they agree exactly unless something was changed).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from sentio.audit.store import AuditError, AuditStore, parse_payload, verify_chain
from sentio.backtest.execution import (
    F_BAR,
    F_FEES,
    F_INSTRUMENT,
    F_PRICE,
    F_QTY,
    book_value,
    settle,
)
from sentio.backtest.strattest import SYMBOLS, StrattestConfig, evaluate_run
from sentio.core.errors import SentioError
from sentio.features.inputs import clock_columns
from sentio.strategy import StrategyState, allocate, decide
from sentio.strategy.signal import minutes_left

CENT = 0.005
RELATIVE = 1e-9
MONEY = {"fees"}
FILL_SIDE = ("order", "fill", "broker", "risk")  # events of a bar that may follow it
LIVE_ONLY = ("feed_fault", "risk", "broker", "restart", "exit", "session_check", "swap")


@dataclass
class Verdict:
    run_id: str
    ok: bool
    events: int
    status: str
    first_bad_seq: int | None = None
    problem: str = ""
    checked: dict = field(default_factory=dict)
    unchecked: str = ""  # why the stream re-run was not done ("" when it was, or not asked)
    head: str = ""  # the last hash of the chain: compare it with the head anchored elsewhere

    @property
    def exit_code(self) -> int:
        """0: everything checked holds; 1: something does not; 3: nothing found wrong, but
        the stream re-run could not be done (``unchecked`` says why)."""
        if not self.ok:
            return 1
        return 3 if self.unchecked else 0

    def to_dict(self) -> dict:
        return {
            "run_id": self.run_id,
            "ok": self.ok,
            "events": self.events,
            "status": self.status,
            "first_bad_seq": self.first_bad_seq,
            "problem": self.problem,
            "checked": self.checked,
            "unchecked": self.unchecked,
            "head": self.head,
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


def verify_run(
    store: AuditStore,
    run_id: str | None = None,
    *,
    stream: bool = True,
    full: bool = False,
    sample: int | None = None,
    seed: int = 0,
) -> Verdict:
    """Verify one run (default: the newest). ``stream``: re-run the stream path on ``sample``
    bars drawn with ``seed`` (all with ``full``); the recorder itself passes False."""
    run = store.run(run_id, chained=False)
    run_id = run["run_id"]
    chain = verify_chain(store, run_id)
    verdict = Verdict(run_id, False, chain.events, run["status"], head=run["head"])
    if not chain.ok:
        verdict.first_bad_seq, verdict.problem = chain.first_bad_seq, chain.reason
        return verdict
    rows = store.events(run_id)
    try:
        ends(run, rows)
        replay = Replay(rows)
        verdict.checked = replay.run()
        if run["status"] != "complete":
            raise Mismatch(
                len(rows),
                f"the run is incomplete: the chain is intact through seq {len(rows) - 1} but "
                "the run never ended (killed, or still running); its metrics cannot be checked",
            )
        if stream:
            verdict.checked["stream"], verdict.unchecked = stream_check(
                replay, full=full, sample=sample, seed=seed
            )
    except Mismatch as bad:
        verdict.first_bad_seq, verdict.problem = bad.seq, bad.what
        return verdict
    verdict.ok = True
    return verdict


def ends(run: dict, rows: list[tuple]) -> None:
    """The runs table against the chain: its config copy is the chained run_start; a complete
    run ends with run_end and the head written at its end is the last hash."""
    if rows and rows[0][2] == "run_start" and run["table_config"] != rows[0][3]:
        raise Mismatch(
            0,
            "the runs table's copy of the config differs from the chained run_start "
            "(the runs table was edited; saudit shows the chained run_start)",
        )
    if run["status"] != "complete":
        return
    last = rows[-1] if rows else None
    if last is None or last[2] != "run_end":
        at = f"seq {last[0]} (a {last[2]} event)" if last else "no event"
        raise Mismatch(
            len(rows),
            f"the run is marked complete but its chain ends at {at}, not with its run_end "
            "event: the events after it were removed, or a killed run was marked complete",
        )
    if run["recorded_head"] != run["head"]:
        raise Mismatch(
            len(rows),
            f"the chain ends at seq {len(rows) - 1} with hash {run['head'][:16]}..., but the "
            f"run ended with head {str(run['recorded_head'])[:16]}... (rows were removed from "
            "the end, or the runs table was edited)",
        )


def stream_check(replay: Replay, *, full: bool, sample: int | None, seed: int):
    """(what the stream re-run checked, why it could not run or "")."""
    from sentio.audit.rerun import SAMPLE, Unchecked, rerun

    try:
        checked = rerun(
            replay.start,
            replay.targets(),
            full=full,
            sample=SAMPLE if sample is None else sample,
            seed=seed,
            blocks=replay.block_times if replay.walk else None,
        )
    except Unchecked as exc:
        return None, f"stream re-run not checked: {exc}"
    return checked, ""


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
        self.recorded: dict[int, tuple[int, dict]] = {}  # bar ts -> (seq, payload)
        self.decided_by: dict[int, str | None] = {}  # bar ts -> manifest hash of its model
        # unrecorded history values: (ts, seq of the model's swap or None) -> (seq, p, swap)
        self.remembered: dict[tuple, tuple[int, float, dict | None]] = {}
        self.decisions = 0

    def payloads(self) -> list[dict]:
        """Every payload parsed; one that is not a JSON object fails at its seq."""
        out = []
        for seq, _ts, _kind, payload, _prev, _hash in self.rows:
            try:
                out.append(parse_payload("", seq, payload))
            except AuditError as exc:
                raise Mismatch(seq, str(exc).split(": ", 1)[1]) from None
        return out

    def run(self) -> dict:
        if not self.rows or self.rows[0][2] != "run_start":
            raise Mismatch(0, "seq 0 is not the run_start event")
        events = self.payloads()
        self.start = events[0]
        try:
            self.config = StrattestConfig.model_validate(self.start["config"])
            self.thresholds = self.start["model"]["thresholds"]
        except (KeyError, TypeError, ValueError) as exc:
            raise Mismatch(0, f"run_start lacks a valid config or thresholds: {exc}") from None
        self.capital = self.config.capital
        self.live = self.start.get("command") == "live"
        self.walk = self.start.get("command") == "walk-forward"  # swaps between sessions
        # a live run may stop inside a block; a walk-forward block is a session (its
        # block_start says how many bars)
        self.fixed_blocks = not self.live and not self.walk
        self.planned_bars: int | None = None
        self.serving = self.start["model"].get("manifest_hash")  # the model deciding now
        self.swap: dict | None = None  # walk-forward: the swap event of the model deciding now
        self.swap_of: dict[int, dict | None] = {}  # bar ts -> that swap event
        self.block_times: list[tuple[int, list[int]]] = []  # walk-forward: block_start seq, ts
        if self.walk and not isinstance(self.start.get("walk_forward"), dict):
            raise Mismatch(0, "a walk-forward run_start lacks its walk_forward schedule")
        self.exited = False  # fills after a live run's exit event: its flattening orders
        self.block_closed = False
        self.swapped_at: int | None = None  # the first bar time served by a swapped-in model
        self.left = self.minutes_to_close()
        self.block = None
        ended = False
        for (seq, ts, kind, _payload, _prev, _hash), event in zip(
            self.rows[1:], events[1:], strict=True
        ):
            if ended:
                raise Mismatch(seq, f"a {kind} event follows run_end")
            try:
                ended = self.event(seq, ts, kind, event)
            except (KeyError, TypeError, ValueError, AttributeError) as exc:
                # a rehashed edit that removed or retyped a field: named, never a traceback
                raise Mismatch(
                    seq, f"the {kind} payload lacks or mistypes a field ({exc!r})"
                ) from None
        if self.pending is not None:
            self.check_bar()
        return {
            "bars": len(self.bars),
            "fills": len(self.fills),
            "blocks": len({b for _, b, _, _ in self.bars}),
            "decisions": self.decisions,
            "metrics_replayed": ended,
            "metrics": self.summary,
            "parity": self.parity,
        }

    def minutes_to_close(self) -> dict[int, float]:
        """Minutes to the session close per bar time: one vectorised calendar look-up. A bar
        time the calendar cannot serve (an edited ts: the chain does not hash it) fails at the
        seq of the earliest or latest bar, whichever the calendar refuses."""
        bars = [(r[1], r[0]) for r in self.rows if r[2] == "bar"]
        bar_ts = np.array([t for t, _ in bars], dtype=np.int64)
        try:
            return dict(zip(bar_ts.tolist(), minutes_left(bar_ts).tolist(), strict=True))
        except SentioError as exc:
            for ts, seq in (min(bars), max(bars)):
                try:
                    minutes_left(np.array([ts], dtype=np.int64))
                except SentioError:
                    raise Mismatch(seq, f"bar time {ts} is outside the calendar: {exc}") from None
            raise

    def event(self, seq: int, ts: int, kind: str, e: dict) -> bool:
        """Replay one event; True for run_end."""
        # a bar is checked once every fill of its ts is in (with --fill close, the fills of
        # its own orders follow it)
        if self.pending is not None and (ts != self.pending[1] or kind not in FILL_SIDE):
            self.check_bar()
        if kind in LIVE_ONLY and not self.live and not (kind == "swap" and self.walk):
            raise Mismatch(seq, f"a {kind} event in a {self.start.get('command')} run")
        if kind in ("bar", "fill", "order", "block_end", "risk", "broker") and (
            e["block"] != self.block
        ):
            raise Mismatch(seq, f"a {kind} of block {e['block']} outside block {self.block}")
        if kind == "block_start":
            self.block_start(seq, e)
        elif kind == "fill":
            self.fill(seq, ts, e)
        elif kind == "bar":
            self.bar(seq, ts, e)
        elif kind == "order":
            self.order(seq, e)
        elif kind == "block_end":
            self.block_end(seq, e)
        elif kind == "restart":
            self.restart(seq, e)
        elif kind == "exit":
            self.exited = True
        elif kind == "session_check":
            self.session_check(seq, e)
        elif kind == "swap":
            if e["ok"]:  # the model the next bars are decided with, and its thresholds
                self.thresholds = e["thresholds"]
                self.swapped_at = self.swapped_at if self.swapped_at is not None else ts
                self.serving = e.get("to_manifest")
                self.swap = {**e, "seq": seq} if self.walk else None
        elif kind == "broker" and e.get("event") == "adopted":
            self.shares = {s: int(e["positions"][s]) for s in SYMBOLS}  # the broker's book
        elif kind in ("feed_fault", "risk", "broker"):
            pass  # recorded facts; they move no cash or shares
        elif kind == "run_end":
            self.run_end(seq, e)
            return True
        else:
            raise Mismatch(seq, f"unknown event kind {kind!r}")
        return False

    def block_start(self, seq: int, e: dict) -> None:
        """A new block: fresh capital, no shares, and the strategy state it starts from (the
        adaptive rule's remembered probabilities; those of recorded bars must be theirs)."""
        block = e["block"]
        expected = 0 if self.block is None else self.block + 1
        if block != expected:
            raise Mismatch(seq, f"block {block} starts where block {expected} should")
        if self.block is not None:
            self.end_of_block(seq)
            if self.live and not self.block_closed:
                raise Mismatch(seq, f"block {self.block} has no block_end")
        self.block_closed = False
        self.capital = float(e.get("capital", self.config.capital))
        self.block, self.cash = block, float(e.get("cash", self.capital))
        self.shares = dict(e.get("positions") or dict.fromkeys(SYMBOLS, 0))
        self.block_fills, self.block_fees, self.block_bars = 0, 0.0, 0
        self.planned_bars = e.get("bars") if self.walk else None
        if self.walk:
            if isinstance(self.planned_bars, bool) or not isinstance(self.planned_bars, int):
                raise Mismatch(seq, "a walk-forward block_start must say how many bars it holds")
            self.block_times.append((seq, []))
        self.last_equity = self.capital
        history, times = e.get("history"), e.get("history_ts")
        if (
            not isinstance(history, list)
            or not isinstance(times, list)
            or (len(history) != len(times))
        ):
            raise Mismatch(seq, "block_start lacks its history and history_ts lists")
        adaptive = self.config.strategy.rule == "adaptive"
        if adaptive and len(history) > self.config.strategy.adaptive_window:
            raise Mismatch(seq, f"block_start remembers {len(history)} probabilities")
        if not adaptive and history:
            raise Mismatch(seq, f"the {self.config.strategy.rule} rule remembers nothing")
        for t, p in zip(times, history, strict=True):
            if self.walk and t in self.recorded and self.decided_by[t] != self.serving:
                # another model decided that bar: this history is the serving model's p, which
                # the stream re-run computes again with that model
                key = None if self.swap is None else self.swap["seq"]
                self.remembered[(t, key)] = (seq, p, self.swap)
                continue
            if t in self.recorded:
                bar_seq, bar = self.recorded[t]
                path = "p_stream" if self.live else "p_seq"  # what the strategy decided on
                if bar[path] != p:
                    raise Mismatch(
                        seq,
                        f"remembers p {p!r} for the bar at seq {bar_seq}, which recorded "
                        f"{path.replace('_', '(')}) {bar[path]!r}",
                    )
            elif self.walk:  # re-run with the model serving this block
                key = None if self.swap is None else self.swap["seq"]
                self.remembered[(t, key)] = (seq, p, self.swap)
            else:
                self.remembered[(t, None)] = (seq, p, None)
        self.state = StrategyState(history=tuple(float(p) for p in history))

    def end_of_block(self, seq: int) -> None:
        if self.planned_bars is not None and self.block_bars != self.planned_bars:
            raise Mismatch(
                seq,
                f"block {self.block} holds {self.block_bars} bars; its block_start says "
                f"{self.planned_bars}",
            )
        if self.fixed_blocks and self.block_bars != self.config.block_size:
            raise Mismatch(
                seq,
                f"block {self.block} holds {self.block_bars} bars; the run's block size is "
                f"{self.config.block_size}",
            )

    def decision(self, seq: int, ts: int, e: dict) -> None:
        """The strategy's ``decide`` on the recorded p(seq): the recorded signal, reason,
        exposure and weights must follow."""
        used = e["p_stream"] if self.live else e["p_seq"]  # what the strategy decided on
        p = float("nan") if used is None else float(used)
        made, self.state = decide(
            p, self.left[ts], self.config.strategy, self.thresholds, self.state
        )
        signal = "long" if made.exposure > 0 else "short" if made.exposure < 0 else "flat"
        weights = allocate(made.exposure, self.config.allocation)
        got = (e["signal"], e["reason"], e["exposure"])
        if got != (signal, made.reason.value, made.exposure) or not all(
            same(e["weights"][s], weights[s]) for s in SYMBOLS
        ):
            path = "p(stream)" if self.live else "p(seq)"
            raise Mismatch(
                seq,
                f"recorded signal {e['signal']}, reason {e['reason']}, exposure "
                f"{e['exposure']}; the strategy's decide() on {path} {used} gives "
                f"{signal}, {made.reason.value}, exposure {made.exposure}",
            )
        self.decisions += 1

    def targets(self):
        """Every recorded probability the stream re-run may check: the bars, then the
        remembered ones of bars outside the blocks."""
        from sentio.audit.rerun import Target

        out = [
            Target(t, seq, e["p_stream"], e["close"], self.swap_of.get(t))
            for t, (seq, e) in self.recorded.items()
            # a live run's re-run loads the run_start model; bars a swapped-in model decided
            # are checked by the session checks (both paths, that model); a walk-forward run's
            # are re-run with the model its swap event names
            if self.walk or self.swapped_at is None or t < self.swapped_at
        ]
        return out + [
            Target(t, seq, p, None, swap) for (t, _), (seq, p, swap) in self.remembered.items()
        ]

    def fill(self, seq: int, ts: int, e: dict) -> None:
        qty, price, fees = int(e["qty"]), float(e["price"]), float(e["fees"])
        signed = -qty if e["side"] == "sell" else qty
        self.cash = settle(self.cash, signed, price, fees)
        self.shares[e["symbol"]] += signed
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
        bar = len(self.bars) - 1 if self.exited else len(self.bars)
        self.fills.append((bar, SYMBOLS.index(e["symbol"]), signed, price, fees))
        self.block_fills += 1
        self.block_fees += fees

    def bar(self, seq: int, ts: int, e: dict) -> None:
        p_seq, p_stream, diff = e["p_seq"], e["p_stream"], e["diff"]
        self.parity["bars"] += 1
        if self.live and (p_seq is not None or diff is not None):
            raise Mismatch(seq, "a live bar records only p(stream)")
        if self.live and self.exited:
            raise Mismatch(seq, "a bar follows the run's exit")
        if not self.live and (p_seq is None) != (p_stream is None):
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
        self.decision(seq, ts, e)
        self.recorded[ts] = (seq, e)
        self.decided_by[ts] = self.serving
        if self.walk:
            self.swap_of[ts] = self.swap
            self.block_times[-1][1].append(ts)
        self.block_bars += 1
        self.pending = (seq, ts, e)

    def check_bar(self) -> None:
        seq, ts, e = self.pending
        self.pending = None
        value = self.value(e["close"])
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
        self.last_close = e["close"]

    def value(self, close: dict) -> float:
        """Cash and shares at the recorded ``close`` (None: no price), by the engine's own
        ``book_value``."""
        shares = np.array([self.shares[s] for s in SYMBOLS], dtype=np.int64)
        prices = np.array([[np.nan if close[s] is None else close[s] for s in SYMBOLS]])
        return book_value(self.cash, shares, prices, 0)

    def order(self, seq: int, e: dict) -> None:
        signed = e["qty"] if e["side"] == "buy" else -e["qty"]
        if self.shares[e["symbol"]] + signed != e["target"]:
            raise Mismatch(
                seq,
                f"order to {e['side']} {e['qty']} {e['symbol']} holding "
                f"{self.shares[e['symbol']]} does not reach its target {e['target']}",
            )

    def session_check(self, seq: int, e: dict) -> None:
        """The sequence path's probabilities of a session's bars, run by the live loop at the
        session's end: each must be the p(stream) its bar recorded, bit for bit."""
        if len(e["ts"]) != len(e["p_seq"]):
            raise Mismatch(seq, "session_check lists more times than probabilities, or fewer")
        for t, p in zip(e["ts"], e["p_seq"], strict=True):
            if t not in self.recorded:
                raise Mismatch(seq, f"session_check names bar time {t}, which no bar recorded")
            bar_seq, bar = self.recorded[t]
            self.parity["compared"] += bar["p_stream"] is not None
            if bar["p_stream"] != p:
                self.parity["bars_differ"] += 1
                raise Mismatch(
                    seq,
                    f"the inference paths disagree at the bar of seq {bar_seq}: p(seq) {p!r}, "
                    f"p(stream) {bar['p_stream']!r}",
                )

    def restart(self, seq: int, e: dict) -> None:
        """A live loop restarted: the book it resumed with must be the replayed one."""
        if self.pending is not None:
            self.check_bar()
        if e["positions"] != self.shares or not same(e["cash"], self.cash, money=True):
            raise Mismatch(
                seq,
                f"the loop restarted with {e['positions']} and cash {e['cash']:.2f}; the "
                f"events give {self.shares} and {self.cash:.2f}",
            )

    def block_end(self, seq: int, e: dict) -> None:
        if self.block_closed:
            raise Mismatch(seq, f"a second block_end of block {e['block']}")
        self.block_closed = True
        if self.pending is not None:
            self.check_bar()
        if self.exited and self.bars:  # fills at the last close after the exit
            ts, block, _, _ = self.bars[-1]
            value = self.value(self.last_close)
            self.bars[-1] = (ts, block, value, [self.shares[s] for s in SYMBOLS])
            self.last_equity = value
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
        if e.get("last_hash") != self.rows[seq][4]:
            raise Mismatch(
                seq,
                f"run_end names {str(e.get('last_hash'))[:16]}... as the hash before it; the "
                f"chain has {self.rows[seq][4][:16]}...",
            )
        if self.block is not None:
            self.end_of_block(seq)
        planned = e["blocks_run"] if self.live else self.start.get("blocks_run")
        if self.live and self.block is not None and not self.block_closed:
            raise Mismatch(seq, f"block {self.block} has no block_end")
        if self.live and planned == 0 and self.block is None:
            return  # a live run that decided no bar (started and stopped): nothing to replay
        if self.block is None or self.block + 1 != planned:
            held = 0 if self.block is None else self.block + 1
            raise Mismatch(seq, f"the events hold {held} blocks; the run says {planned}")
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


__all__ = ["Mismatch", "Verdict", "same", "verify_run"]
