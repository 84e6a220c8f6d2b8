"""The live loop: arriving bars -> stream probability -> ``decide()`` -> ``allocate()`` ->
orders for the difference -> risk checks -> broker -> audit and saved state, bar by bar.

Nothing here re-implements a rule another stage owns: the probability is the stream context's
(``infer``), the decision the strategy's ``decide`` and ``allocate`` (the functions strattest
loops over), the order sizing and the flat-at-the-end rule the backtest's kernels
(``backtest.execution.size_orders`` / ``ending``), the paper fills its ``execute``. So a
replay through the paper broker equals strattest to the cent (tests/live/test_parity.py).

Episodes. A live run is one episode (block 0): it starts with the capital (or the positions a
previous run left) and trades until the feed ends or it is stopped; it is flat before every
session close because ``decide`` is (``flat_last_minutes``). A replay with ``--blocks`` trades
the blocks strattest would trade, each an episode with fresh capital that ends flat.

Faults (faults.py, docs/live.md): a bar that breaks a value rule, repeats or precedes the
last minute decided, arrives for an older minute than the one being gathered, lies outside
the session or names an unknown symbol is dropped; a missing minute is a gap (a new segment
when longer than ``max_gap``); a minute whose siblings did not all arrive is decided without
them (their orders refused: ``no_price``), one without QQQ is not decided. Each is counted and
audited.

Restart. After every minute the state (``state.py``) is written atomically with the audit
events of that minute, then the events are appended: a loop killed at any point resumes from
its last state, appends what the audit lacks, skips the bars it already decided, and sends
orders with the same client ids (run id + bar time + symbol), which a broker refuses twice.
"""

from __future__ import annotations

import math
import signal
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
from pydantic import BaseModel

from sentio.audit.record import clean, number, run_base, signal_of, versions
from sentio.audit.store import AuditStore
from sentio.backtest.execution import book_value, ending, settle, size_orders
from sentio.backtest.strattest import (
    evaluate_run,
    newest_artifact,
)
from sentio.core.clock import NEW_YORK, NS_PER_MINUTE, build_time
from sentio.core.domain import Bar
from sentio.core.environment import environment
from sentio.core.errors import LiveError, ParityError, SentioError, StateError
from sentio.core.hashing import canonical_json, sha256_file, sha256_hex
from sentio.data import Bars, write_bars
from sentio.data.segments import assign_segments
from sentio.data.trading_calendar import SessionCache, locate
from sentio.features.inputs import as_input, clock_columns
from sentio.infer import SequenceContext, StreamContext, load_model
from sentio.live.checks import SessionCheck
from sentio.live.config import LiveConfig, check_places
from sentio.live.faults import admit, fault_detail
from sentio.live.feeds import FIELDS, FeedSpec
from sentio.live.market import open_broker, open_market
from sentio.live.paper import PaperBroker
from sentio.live.risk import order_refusal
from sentio.live.state import STATE_FORMAT, Ledger, StateStore
from sentio.live.types import SYMBOLS, BrokerEvent, FeedBar, FeedFault, OrderRequest
from sentio.model.artifact import load_verified
from sentio.model.versions import ModelRegistry
from sentio.strategy import StrategyState, allocate, decide
from sentio.strategy.signal import minutes_to_close

# Refusals whose cause passes (a sibling's bar that did not come, a busy minute): the symbol's
# order is decided again at the next bar. The others hold until the decision changes.
RETRIED = ("no_price", "order_rate")
MINUTE_GRACE_NS = 5 * 10**9  # a live minute's bars may arrive this long after its end
EXIT_WAIT_S = 30.0  # how long an exit waits for a real broker to fill the flattening orders


class LiveLoop:
    """One live run. ``run()`` consumes the feed until it ends or the loop is stopped."""

    def __init__(
        self,
        config: LiveConfig,
        *,
        state_dir: Path | None = None,
        store: AuditStore | None = None,
        audit: Path | None = None,
        on_bar: Callable[[dict], None] | None = None,
        allow_model_change: bool = False,
        adopt_broker_positions: bool = False,
        profile: bool = False,
    ) -> None:
        self.registry = ModelRegistry(config.registry) if config.registry else None
        if self.registry is not None:  # its current version (or, resuming, the one serving)
            model = serving_model(self.registry, state_dir)
            config = config.model_copy(
                update={"trading": config.trading.model_copy(update={"model": model})}
            )
        elif config.trading.model is None:  # as strattest: the newest artifact, and it says so
            model = newest_artifact()
            config = config.model_copy(
                update={"trading": config.trading.model_copy(update={"model": model})}
            )
        self.config, self.trading = config, config.trading
        # what a restart must keep; the config never changes, so hashed once, not per minute
        self.settings, self.fingerprint = config.settings(), config.fingerprint()
        self.store, self.on_bar = store, on_bar
        self.audit_path = audit  # opened only once every check passed: a refusal writes nothing
        check_places(self.trading.model, state_dir, audit, config)
        self.profile = [] if profile else None
        self.meta = load_verified(self.trading.model)
        self.thresholds = self.meta["thresholds"]
        self.model = load_model(self.trading.model, door="metadata.json")
        self.market = open_market(config, self.meta)
        self.feed = self.market.feed
        self.broker = open_broker(config, self.market.half_spread)
        self.next_open = self.trading.fill == "next-open"
        self.state_store = StateStore(state_dir) if state_dir is not None else None
        self.ledger = Ledger(state_dir)
        self.counts: dict[str, int] = {}
        self.sessions = SessionCache()
        self.realtime = FeedSpec.parse(config.feed).kind != "replay"  # bars on the wall clock
        self.check = SessionCheck()
        self.finished = SessionCheck()  # the session before, checked after the next's orders
        self.stale = False  # the serving model passed --expire-after
        self.session_bars: list[tuple[FeedBar, int]] = []  # this session's, for --bar-store
        self.session_partial = False  # the session's first bars came before a restart
        self.closed_session: tuple[list, bool] | None = None  # to store after this minute
        self._data_session = ("", -1)  # (manifest, session of its newest data)
        self.pointer_seen: tuple | None = None  # the registry pointer's (mtime, size) last read
        # both inference paths, as strattest's run_end records them (the session checks')
        self.parity = {"bars": 0, "compared": 0, "bars_differ": 0, "max_abs_diff": 0.0}
        self.stop_reason = ""
        self.exiting = False  # the exit is committed; only run_end is left
        self.events: list[tuple[int, str, dict]] = []
        self.audit_count = 0
        self._audit_s = 0.0
        self._bar_no = 0
        self._bar_index = 0
        saved = self.state_store.load() if self.state_store else None
        other = saved is not None and (
            saved.get("manifest_hash") != self.model.manifest_hash
            or saved.get("fingerprint") != self.fingerprint
        )
        if saved is not None and not saved.get("ended") and other and allow_model_change:
            self._close_killed(saved)  # its audit made whole; another model is a new run
            self._fresh(saved, allow_model_change, adopt_broker_positions)
        elif saved is not None and not saved.get("ended"):
            self._resume(saved, allow_model_change, adopt_broker_positions)
        else:
            self._fresh(saved, allow_model_change, adopt_broker_positions)

    # -- start -----------------------------------------------------------------------------

    def _fresh(
        self, previous: dict | None, allow_model_change: bool = False, adopt: bool = False
    ) -> None:
        """A new run: warm the stream context on the history, claim the audit run."""
        self.run_id = ""
        self.episode, self.in_episode = -1, 0
        self.target = np.zeros(len(SYMBOLS))
        self.strategy_state = StrategyState()
        self.recent: deque = deque(maxlen=self.trading.strategy.adaptive_window)
        self.last_ts: int | None = None
        self.segment = 0
        self.day, self.day_start_equity, self.halted = -1, 0.0, False
        self.sent_at: deque = deque()
        self.positions_start = None
        self.closes: dict[str, float] = {}
        if previous is not None:  # a run that ended cleanly: go on from its book
            self.check_same(previous, allow=allow_model_change)
            if self.config.blocks_mode:
                raise LiveError(
                    f"{self.state_store.path}: this block replay ended; a block replay starts "
                    "with a new --state (each block begins with fresh capital)"
                )
            self.cash = float(previous["book"]["cash"])
            self.shares = np.array(previous["book"]["shares"], dtype=np.int64)
            self.stream = self._saved_stream(previous, allow_model_change)
            self.last_ts, self.segment = previous["last_ts"], previous["segment"]
            self.recent.extend(tuple(x) for x in previous["recent"])
            self.closes = dict(previous["closes"])
            self.target = np.full(len(SYMBOLS), np.nan)  # the first decision sets the book
            self.resume_feed()
            if isinstance(self.broker, PaperBroker):
                self.broker.load(previous["broker"])
        else:
            self.cash = self.trading.capital
            self.shares = np.zeros(len(SYMBOLS), dtype=np.int64)
            self.stream = self._warm_up()
        self._reconcile(adopt=adopt, saved=None)
        self.ledger.reset()
        self.previous_model = previous.get("manifest_hash") if previous else None
        payload = self._run_start(resumed_from=previous["run_id"] if previous else None)
        self.open_audit()
        if self.store is not None:
            self.run_id = self.store.claim_run(
                "lv" + run_base(payload)[2:], payload, started_at=build_time().isoformat()
            )
        else:
            self.run_id = "lv-" + sha256_hex(canonical_json(payload))[:12]
        self.events.append((self._first_ts(), "run_start", payload))
        self.commit()

    def _first_ts(self) -> int:
        if self.last_ts is not None:
            return self.last_ts
        history = self.market.history
        return int(history["ts"].iloc[-1]) if history is not None and len(history) else 0

    def _warm_up(self) -> StreamContext:
        """A stream context that has seen the history (its last T bars fill the window ring);
        the adaptive rule also remembers the last probabilities of the history, from the
        sequence path (bit-identical to the stream path: tests/infer)."""
        history = self.market.history
        if history is None or not len(history):
            return StreamContext(self.model)
        bars = as_input(history)
        context = StreamContext.from_history(self.model, bars)
        ts = history["ts"].to_numpy(np.int64)
        self.last_ts = int(ts[-1])
        self.segment = int(history["segment"].iloc[-1])
        if self.trading.strategy.rule == "adaptive":
            p = SequenceContext(self.model).calculate_probability(history)
            valid = ~np.isnan(p)
            self.recent.extend(zip(ts[valid].tolist(), p[valid].tolist(), strict=True))
        return context

    def _resume(self, saved: dict, allow_model_change: bool, adopt: bool) -> None:
        """Go on with a killed run: its state, the audit events it had not appended yet."""
        self.check_same(saved, allow=allow_model_change)
        self.run_id = saved["run_id"]
        self.episode, self.in_episode = saved["episode"], saved["in_episode"]
        self.target = np.array(saved["target"])
        self.strategy_state = _strategy_from(saved["strategy"])
        self.recent = deque(
            (tuple(x) for x in saved["recent"]), maxlen=self.trading.strategy.adaptive_window
        )
        self.last_ts, self.segment = saved["last_ts"], saved["segment"]
        self.day, self.day_start_equity = saved["day"], saved["day_start_equity"]
        self.halted = saved["halted"]
        self.sent_at = deque(saved["sent_at"])
        self.cash = float(saved["book"]["cash"])
        self.shares = np.array(saved["book"]["shares"], dtype=np.int64)
        self.counts = dict(saved["counts"])
        self.exiting, self.stop_reason = saved["exiting"], saved["stop_reason"]
        self.parity = dict(saved["parity"])
        self.stream = self._saved_stream(saved, allow_model_change)
        if isinstance(self.broker, PaperBroker):
            self.broker.load(saved["broker"])
        self.ledger.truncate(saved["ledger"])
        self.positions_start = saved.get("positions_start")
        self.closes = dict(saved["closes"])
        self.resume_feed()
        audit = saved["audit"]
        self.audit_count = audit["after"]
        self.open_audit()
        if self.store is not None:
            have = self.store.count(self.run_id)
            if have == audit["before"]:
                self.store.append(self.run_id, [tuple(e) for e in audit["pending"]])
            elif have != audit["after"]:
                raise LiveError(
                    f"{self.store.path}: run {self.run_id} holds {have} events; the saved state "
                    f"expects {audit['before']} or {audit['after']} (the audit or the state "
                    "was changed, or belongs to another run)"
                )
        self._reconcile(adopt=adopt, saved=saved)
        self.session_partial = True  # the bars before the kill were not kept
        self.count("restarts")
        self.events.append(
            (
                self.last_ts or 0,
                "restart",
                {
                    "last_ts": self.last_ts,
                    "events_before": self.audit_count,
                    "positions": self.positions(),
                    "cash": self.cash,
                },
            )
        )
        self.commit()

    def _saved_stream(self, saved: dict, allow: bool) -> StreamContext:
        try:
            return StreamContext.from_json(self.model, saved["stream"], other_model=allow)
        except StateError as exc:
            raise LiveError(
                f"{self.state_store.path}: the saved stream context cannot serve --model "
                f"{self.trading.model} ({exc}); start it with a new --state"
            ) from None

    def _close_killed(self, saved: dict) -> None:
        """A killed run that goes on with another model: append the events its audit lacks
        (the run stays incomplete, as it was killed); the new run names it."""
        self.check_same(saved, allow=True)
        self.open_audit()
        audit = saved["audit"]
        if self.store is not None and self.store.count(saved["run_id"]) == audit["before"]:
            self.store.append(saved["run_id"], [tuple(e) for e in audit["pending"]])

    def open_audit(self) -> None:
        if self.store is None and self.audit_path is not None:
            self.store = AuditStore(self.audit_path)

    def resume_feed(self) -> None:
        """Ask the feed to skip the bars already decided (a feed that cannot go back, such as
        a live stream, has nothing to skip: the loop drops older bars as late anyway)."""
        skip = getattr(self.feed, "resume_after", None)
        if skip is not None and self.last_ts is not None:
            skip(self.last_ts)

    def check_same(self, saved: dict, allow: bool) -> None:
        if saved.get("format") != STATE_FORMAT:
            raise LiveError(f"{self.state_store.path}: not a sentio live state")
        if saved["manifest_hash"] != self.model.manifest_hash and not allow:
            raise LiveError(
                f"{self.state_store.path}: the saved run traded model manifest "
                f"{saved['manifest_hash'][:12]}...; --model has {self.model.manifest_hash[:12]}"
                "... (give --allow-model-change to go on with another model)"
            )
        if saved["fingerprint"] != self.fingerprint and not allow:
            mine = self.settings
            theirs = saved.get("settings") or {}
            differ = sorted(k for k in mine.keys() | theirs.keys() if mine.get(k) != theirs.get(k))
            raise LiveError(
                f"{self.state_store.path}: the saved run had other settings "
                f"({', '.join(differ) or 'unknown'}); give the same flags, a new --state, or "
                "--allow-model-change"
            )

    def _reconcile(self, adopt: bool, saved: dict | None) -> None:
        """The broker's positions in the traded symbols against the loop's book (a real
        broker only: the paper broker's book is part of the state). With ``adopt`` the
        broker's shares become the book's (an audited ``broker`` event); the cash stays the
        run's own."""
        if isinstance(self.broker, PaperBroker):
            return
        held = self.broker.positions()
        theirs = {s: int(held.get(s, 0)) for s in SYMBOLS}
        ours = self.positions()
        if theirs == ours:
            return
        if not adopt:
            raise LiveError(
                f"the broker holds {theirs}, the saved state {ours}; settle them, or give "
                "--adopt-broker-positions to take the broker's"
            )
        self.shares = np.array([theirs[s] for s in SYMBOLS], dtype=np.int64)
        self.count("adopted_positions")
        if saved is not None:  # a resumed run: the replay must see the book change
            self.events.append(
                (
                    self.last_ts or 0,
                    "broker",
                    {
                        "block": self.episode,
                        "event": "adopted",
                        "positions": theirs,
                        "client_id": "",
                        "symbol": "",
                        "detail": f"the book held {ours}",
                    },
                )
            )

    def _run_start(self, resumed_from: str | None) -> dict:
        meta = self.meta
        spec = FeedSpec.parse(self.config.feed)
        files = [{"path": f, "sha256": sha256_file(f)} for f in self.market.files]
        history = self.market.history
        return clean(
            {
                "command": "live",
                "config": json_of(self.trading),
                "live": {
                    **json_of(self.config, exclude={"trading"}),
                    "feed_kind": spec.kind,
                    "episodes": "blocks" if self.config.blocks_mode else "continuous",
                    "half_spread": None
                    if self.market.half_spread is None
                    else self.market.half_spread.tolist(),
                    "resumed_from": resumed_from,
                    "previous_model": self.previous_model,
                    "fingerprint": self.fingerprint,
                    # a live feed's run is never repeated: its run id (and so its client order
                    # ids) must not be another day's; a replay's stays reproducible
                    "nonce": time.time_ns() if self.realtime else None,
                },
                "seed": self.trading.seed,
                "model": {
                    "path": str(self.trading.model),
                    "manifest_hash": self.model.manifest_hash,
                    "spec_hash": self.model.spec_hash,
                    "seq_len": self.model.seq_len,
                    "features": len(self.model.feature_names),
                    "train_seed": meta.get("seed"),
                    "thresholds": self.thresholds,
                },
                "data": {
                    "files": files,
                    "builtin": meta["data"].get("synth") if spec.target == "builtin" else None,
                    "history_bars": 0 if history is None else len(history),
                    "qqq_bars_sha256": self.market.bars_hash,
                    "simulated": self.market.simulated,
                },
                "symbols": list(SYMBOLS),
                "in_sample": False,
                "blocks_run": len(self.market.episodes) if self.config.blocks_mode else 1,
                "versions": versions(),
                "environment": environment(),
            }
        )

    # -- the loop --------------------------------------------------------------------------

    def run(self) -> dict:
        """Take bars until the feed ends, the kill file appears or a signal stops the loop;
        then flatten (unless asked not to) and end the run. Returns the summary."""
        stop = {"signal": ""}

        def handler(signum, frame):
            stop["signal"] = signal.Signals(signum).name

        old = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGINT)}
        gathering: dict[str, FeedBar] = {}
        gathering_ts: int | None = None
        if self.exiting:  # killed between the exit and run_end: only run_end is left
            return self.finish()
        try:
            for item in self.feed:
                if stop["signal"] or self._killed():
                    self.stop_reason = stop["signal"] or f"kill file {self.config.kill_file}"
                    break
                if item is None:
                    if gathering and self.realtime and self._minute_over(gathering_ts):
                        self.minute(gathering_ts, gathering)  # a sibling never came
                        gathering, gathering_ts = {}, None
                    continue
                if isinstance(item, FeedFault):
                    self.fault(item.kind, item.detail, item.source)
                    continue
                verdict = self.admit(item, gathering_ts)
                if verdict:
                    self.fault(verdict, fault_detail(verdict, item), item.source, item.ts)
                    continue
                if gathering_ts is not None and item.ts > gathering_ts:
                    self.minute(gathering_ts, gathering)
                    gathering, gathering_ts = {}, None
                if gathering_ts is None:
                    gathering_ts = item.ts
                if item.symbol in gathering:
                    self.fault("duplicate", fault_detail("duplicate", item), item.source, item.ts)
                    continue
                gathering[item.symbol] = item
                if len(gathering) == len(SYMBOLS):
                    self.minute(gathering_ts, gathering)
                    gathering, gathering_ts = {}, None
            else:
                self.stop_reason = self.stop_reason or "the feed ended"
            if gathering and not self.stop_reason.startswith(("SIG", "kill")):
                self.minute(gathering_ts, gathering)
        finally:
            for s, h in old.items():
                signal.signal(s, h)
            self.feed.close()
        return self.finish()

    def _minute_over(self, ts: int) -> bool:
        """A gathered minute of a live feed whose bars are all in by now (its end plus a
        grace period passed on the wall clock): decide it without waiting for the next."""
        return time.time_ns() > ts + NS_PER_MINUTE + MINUTE_GRACE_NS

    def _killed(self) -> bool:
        kill = self.config.kill_file
        return kill is not None and kill.exists()

    def admit(self, bar: FeedBar, gathering_ts: int | None) -> str:
        """The fault that drops an arriving bar, or "" to take it (faults.py)."""
        now = time.time_ns() if self.realtime else None
        return admit(bar, self.last_ts, gathering_ts, self.sessions, now)

    def fault(self, kind: str, detail: str, source: str, ts: int | None = None) -> None:
        self.count(f"fault_{kind}")
        self.events.append(
            (
                ts if ts is not None else (self.last_ts or 0),
                "feed_fault",
                {"fault": kind, "detail": detail, "source": source},
            )
        )

    def count(self, name: str, n: int = 1) -> None:
        self.counts[name] = self.counts.get(name, 0) + n

    def positions(self) -> dict[str, int]:
        return {s: int(self.shares[j]) for j, s in enumerate(SYMBOLS)}

    # -- one minute ------------------------------------------------------------------------

    def minute(self, ts: int, bars: dict[str, FeedBar]) -> None:
        """Decide one minute (the bars of every symbol that arrived for it)."""
        arrived = time.perf_counter()
        self._bar_no = self.ledger.bars
        if "QQQ" not in bars:
            self.fault(
                "missing_symbol",
                f"no QQQ bar at {pd.Timestamp(ts, tz='UTC').isoformat()}: not decided",
                "loop",
                ts,
            )
            self.commit()
            return
        for symbol in SYMBOLS:
            if symbol not in bars:
                self.fault(
                    "missing_symbol",
                    f"no {symbol} bar at {pd.Timestamp(ts, tz='UTC').isoformat()}",
                    "loop",
                    ts,
                )
        if self.sessions(ts)[1] != self.check.session:  # checked after this minute's orders
            # the session that just closed goes into --bar-store after this minute's orders
            # (writing a Parquet file costs milliseconds an order must not wait for)
            self.closed_session = (self.session_bars, self.session_partial)
            self.session_bars, self.session_partial = [], False
            self.finished, self.check = self.check, SessionCheck()
            self.check.start(self.stream, self.sessions(ts)[1])
        if self.registry is not None:
            self.watch_registry(ts)  # a swap happens here, between bars
        self.new_segment(ts)
        self.start_episode_if_due(ts)
        q = bars["QQQ"]
        prices = {s: (b.open, b.close) for s, b in bars.items()}
        self.closes.update({s: b.close for s, b in bars.items()})
        if self.config.bar_store is not None:
            self.session_bars += [(b, self.segment) for b in bars.values()]
        close = {s: self.closes.get(s, math.nan) for s in SYMBOLS}
        self.apply(self.broker.poll(prices), ts)
        t0 = time.perf_counter()
        self.stream.push(Bar(ts, q.open, q.high, q.low, q.close, q.volume, self.segment))
        t1 = time.perf_counter()
        p = self.stream.predict()
        t2 = time.perf_counter()
        self.check.add(ts, q, self.segment, p)
        _, session, _, close_ns = self.sessions(ts)
        left = float(minutes_to_close(ts, close_ns))
        decision, self.strategy_state = decide(
            p, left, self.trading.strategy, self.thresholds, self.strategy_state
        )
        weights = allocate(decision.exposure, self.trading.allocation)
        if not math.isnan(p):
            self.recent.append((ts, p))
        self.in_episode += 1
        if session != self.day:
            self.day, self.halted = session, False
            self.day_start_equity = self.equity(close)
        bars_left = self.bars_left()
        flat = ending(bars_left, self.next_open) or self.halted or self.expired(ts, session)
        want = np.zeros(len(SYMBOLS)) if flat else np.array([weights[s] for s in SYMBOLS])
        orders = []
        if np.any(want != self.target):
            self.target = want
            order = np.zeros(len(SYMBOLS), dtype=np.int64)
            closes = np.array([[close[s] for s in SYMBOLS]])
            size_orders(self.target, self.shares, self.cash, closes, 0, order)
            orders = [
                (s, int(order[j] - self.shares[j]), int(order[j]))
                for j, s in enumerate(SYMBOLS)
                if order[j] != self.shares[j]
            ]
        t3 = time.perf_counter()
        equity_before = self.equity(close)
        self.bar_event(ts, q, p, decision, weights, close, equity_before)
        sent = self.send(ts, orders, close, equity_before, priced=set(bars))
        t4 = time.perf_counter()
        if bars_left == 1 and hasattr(self.broker, "settle_at_close"):
            self.apply(self.broker.settle_at_close(), ts)
        equity = self.equity(close)
        self._bar_after_fills(equity)
        self.ledger.bar(ts, self.episode, equity, self.shares)
        self.last_ts = ts
        self.check_daily_loss(ts, equity)
        self.check_ranges(ts)
        if bars_left == 1:
            self.end_episode(ts, equity)
        t5 = time.perf_counter()
        self.commit()
        t6 = time.perf_counter()
        self.flush_check(self.finished)  # its event goes with the next minute's commit
        self.store_closed()
        if ts + NS_PER_MINUTE == close_ns:  # the session's last minute: store it now, so a
            self.store_session()  # retrainer can train before the next open
        if self.profile is not None:
            self.profile.append(
                (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t4 - arrived, t6 - t5, self._audit_s)
            )
        if self.on_bar:
            self.on_bar(self.status(ts, p, decision.exposure, sent, equity))

    def store_closed(self) -> None:
        """Write the session that closed at this minute's start, if one did (``store_session``)."""
        if self.closed_session is not None:
            rows, partial = self.closed_session
            self.closed_session = None
            self.store_session(rows, partial)

    def store_session(self, rows: list | None = None, partial: bool | None = None) -> None:
        """Write the bars the loop accepted in a closed session (default: the current one, at
        the feed's end), every symbol, as a canonical table ``BAR_STORE/YYYY-MM-DD.parquet``
        (atomically; New York date), for a retrainer to read. A session a restart cut in two
        is written as ``.partial.parquet`` with the bars since the restart (the state does not
        keep a session's bars)."""
        if rows is None:
            rows, partial = self.session_bars, self.session_partial
            self.session_bars, self.session_partial = [], False
        if self.config.bar_store is None or not rows:
            return
        frame = pd.DataFrame(
            {
                "ts": np.array([b.ts for b, _ in rows], dtype=np.int64),
                "symbol": [b.symbol for b, _ in rows],
                **{f: [getattr(b, f) for b, _ in rows] for f in FIELDS},
                "segment": np.array([seg for _, seg in rows], dtype=np.int32),
            }
        ).sort_values(["symbol", "ts"], kind="mergesort", ignore_index=True)
        day = pd.Timestamp(int(frame["ts"].iloc[0]), tz="UTC").tz_convert(NEW_YORK)
        name = f"{day:%Y-%m-%d}" + (".partial" if partial else "") + ".parquet"
        meta = {"interval_s": 60, "max_gap_min": self.config.max_gap,
                "simulated": dict(self.market.simulated), "source": "sentio live"}  # fmt: skip
        write_bars(Bars(frame, meta), Path(self.config.bar_store) / name, flag="--bar-store")
        self.count("sessions_stored")

    def expired(self, ts: int, session: int) -> bool:
        """The serving model is more than --expire-after sessions past its newest data (its
        validation end): flat, and a ``model_expired`` risk event when that begins."""
        limit = self.config.expire_after
        if limit is None:
            return False
        if self._data_session[0] != self.model.manifest_hash:  # once per model
            last = int(self.meta["data"]["splits"]["validation"]["last_ts"])
            number = int(locate(np.array([last], dtype=np.int64))[1][0])
            self._data_session = (self.model.manifest_hash, number)
        age = session - self._data_session[1]
        now = age > limit
        if now and not self.stale:
            self.count("risk_model_expired")
            self.events.append(
                (
                    ts,
                    "risk",
                    {
                        "block": self.episode,
                        "reason": "model_expired",
                        "age_sessions": int(age),
                        "limit_sessions": limit,
                    },
                )  # fmt: skip
            )
        self.stale = now
        return now

    def watch_registry(self, ts: int) -> None:
        """Serve the registry's current version from this bar on when it moved: the new
        model takes the stream context's feature state and window ring (the same feature spec
        and a window no longer than the ring: ``StreamContext.switch``), the positions carry
        over, and the swap is an audited event with both manifest hashes and the gate's numbers.
        A version that fails to load or to switch is refused (an event); the incumbent stays."""
        try:
            stat = self.registry.pointer.stat()
        except OSError:
            return
        seen = (stat.st_mtime_ns, stat.st_size)
        if seen == self.pointer_seen:
            return
        self.pointer_seen = seen
        payload = {"from_manifest": self.model.manifest_hash, "from": str(self.trading.model)}
        try:
            version = self.registry.current()
            path = self.registry.path(version)
            if Path(path).resolve() == Path(self.trading.model).resolve():
                return
            meta = load_verified(path)
            model = load_model(path, door="metadata.json")
            payload.update(version=version, to=str(path), to_manifest=model.manifest_hash)
            if model.spec_hash != self.model.spec_hash or model.reach > self.model.reach:
                raise ParityError(
                    f"{version} needs feature spec {model.spec_hash[:12]}... and {model.reach} "
                    f"rows; the running context has {self.model.spec_hash[:12]}... and "
                    f"{self.model.reach}: start a new --state for it"
                )
        except SentioError as exc:
            self.count("swaps_refused")
            self.events.append((ts, "swap", {**payload, "ok": False, "detail": str(exc)}))
            return
        self.flush_check(self.finished)  # the bars decided so far, with the model that did
        self.flush_check(self.check)
        self.stream.switch(model)
        self.check.start(self.stream, self.sessions(ts)[1])
        self.model, self.meta, self.thresholds = model, meta, meta["thresholds"]
        self.trading = self.trading.model_copy(update={"model": Path(path)})
        gate = [e.get("gate") for e in self.registry.history()
                if e["action"] in ("promote", "rollback") and e["version"] == version]  # fmt: skip
        self.count("swaps")
        self.events.append(
            (
                ts,
                "swap",
                {
                    **payload,
                    "ok": True,
                    "thresholds": self.thresholds,
                    "gate": gate[-1] if gate else None,
                },
            )  # fmt: skip
        )

    def flush_check(self, check: SessionCheck) -> None:
        """The sequence path over a session's bars (from the stream's state at its start),
        recorded beside the stream probabilities the loop decided on: both paths, every bar.
        Run once the next session's first minute has sent its orders (it costs a batch of up
        to 390 windows: tens of milliseconds that must not delay an order)."""
        done = check.result(self.model)
        if done is None:
            return
        ts, p_seq, p_stream = done
        same = (p_seq == p_stream) | (np.isnan(p_seq) & np.isnan(p_stream))
        gap = np.abs(p_seq - p_stream)
        gap = float(np.nanmax(gap)) if np.isfinite(gap).any() else 0.0
        self.parity["bars"] += len(ts)
        self.parity["compared"] += int((~np.isnan(p_stream)).sum())
        self.parity["bars_differ"] += int((~same).sum())
        self.parity["max_abs_diff"] = max(self.parity["max_abs_diff"], gap)
        self.count("session_checks")
        if not same.all():
            self.count("parity_differ", int((~same).sum()))
        self.events.append(
            (
                int(ts[-1]),
                "session_check",
                {
                    "ts": [int(t) for t in ts],
                    "p_seq": [number(x) for x in p_seq],
                    "bars_differ": int((~same).sum()),
                    "max_abs_diff": gap,
                },
            )
        )

    def new_segment(self, ts: int) -> None:
        """The segment rule of the data stage (``assign_segments``) on the last decided bar
        and this one: holes are gap faults; a long one, or a missing day, a new segment."""
        if self.last_ts is None:
            return
        if (
            ts - self.last_ts == NS_PER_MINUTE
            and self.sessions(self.last_ts)[1] == (self.sessions(ts)[1])
        ):
            return  # the next minute of the same session: never a hole
        info = assign_segments(
            np.array([self.last_ts, ts], dtype=np.int64), 60, self.config.max_gap
        )
        for hole in info.holes:
            self.fault(
                "gap",
                f"{hole.minutes} minute(s) missing from "
                f"{pd.Timestamp(hole.start_ns, tz='UTC').isoformat()}"
                + ("; a new segment starts" if hole.breaks_segment else ""),
                "loop",
                ts,
            )
        if info.segment[1] != info.segment[0]:
            self.segment += 1
            if not info.holes:  # assign_segments counts no minutes for a missing day
                self.fault(
                    "gap",
                    "a missing trading day before "
                    f"{pd.Timestamp(ts, tz='UTC').isoformat()}; a new segment starts",
                    "loop",
                    ts,
                )

    def bars_left(self) -> int:
        """Bars left in the episode, this one included (3 stands for "3 or more")."""
        if not self.market.episodes:
            return 3
        return min(3, self.market.episodes[self.episode][1] - self.in_episode + 1)

    def start_episode_if_due(self, ts: int) -> None:
        """Open the next episode when its first bar arrives: a block of a block replay
        (fresh capital, flat, a fresh strategy state remembering the last probabilities, as
        strattest starts a block), or the one episode of a live run."""
        episodes = self.market.episodes
        if episodes:
            due = self.episode + 1 < len(episodes) and ts >= episodes[self.episode + 1][0]
        else:
            due = self.episode < 0
        if not due:
            return
        self.episode += 1
        self.in_episode = 0
        remembered = tuple(self.recent) if self.trading.strategy.rule == "adaptive" else ()
        if episodes:
            self.cash, self.shares = self.trading.capital, np.zeros(len(SYMBOLS), np.int64)
            if isinstance(self.broker, PaperBroker):
                self.broker.reset(self.trading.capital)
            self.target = np.zeros(len(SYMBOLS))
        self.strategy_state = StrategyState(history=tuple(p for _, p in remembered))
        self.positions_start = {
            "cash": self.cash,
            "positions": self.positions(),
            "closes": dict(self.closes),
        }
        self.day = -1
        self.events.append(
            (
                ts,
                "block_start",
                {
                    "block": self.episode,
                    "history": [p for _, p in remembered],
                    "history_ts": [t for t, _ in remembered],
                    "capital": self.episode_capital(),
                    "cash": self.cash,
                    "positions": self.positions(),
                },
            )
        )

    def equity(self, close: dict[str, float]) -> float:
        """The backtest's book value at ``close`` (a symbol held but without a bar this minute
        counts at its last close)."""
        return book_value(self.cash, self.shares, np.array([[close[s] for s in SYMBOLS]]), 0)

    def bar_event(self, ts, q: FeedBar, p, decision, weights, close, equity) -> None:
        self._bar_index = len(self.events)
        self.events.append(
            (
                ts,
                "bar",
                {
                    "block": self.episode,
                    "p_seq": None,
                    "p_stream": number(p),
                    "diff": None,
                    "signal": signal_of(decision.exposure),
                    "reason": decision.reason.value,
                    "exposure": decision.exposure,
                    "weights": {s: float(weights[s]) for s in SYMBOLS},
                    "close": {s: number(close[s]) for s in SYMBOLS},
                    "positions": self.positions(),
                    "equity": equity,
                    "segment": self.segment,
                    "bar": [q.open, q.high, q.low, q.close, q.volume],
                },
            )
        )

    def _bar_after_fills(self, equity: float) -> None:
        """The bar event holds the positions and equity once all its fills are in (those at
        this close come after the decision), as strattest records them."""
        ts, kind, payload = self.events[self._bar_index]
        payload = {**payload, "positions": self.positions(), "equity": equity}
        self.events[self._bar_index] = (ts, kind, payload)

    def send(
        self,
        ts: int,
        orders,
        close,
        equity,
        priced: set | None = None,
        at_close: bool = False,
        tag: str = "",
    ) -> int:
        """Risk-check each order, record it, send the ones allowed; returns how many went.
        Reductions are checked first (they free cash and exposure for the buys); an order
        refused for a passing cause (RETRIED) is decided again at the next bar."""
        while self.sent_at and self.sent_at[0] <= ts - 60 * 10**9:
            self.sent_at.popleft()
        held = self.positions()
        after, refused, allowed = dict(held), {}, []
        for symbol, qty, goal in sorted(orders, key=lambda o: abs(o[2]) > abs(held[o[0]])):
            reason = "dry_run" if self.config.dry_run else None
            if reason is None and priced is not None and symbol not in priced:
                reason = "no_price"
            planned = {**after, symbol: goal}
            reason = reason or order_refusal(
                self.config.risk, symbol, qty, held, planned, close, equity,
                len(self.sent_at) + len(allowed),
            )  # fmt: skip
            if reason:
                refused[symbol] = reason
            else:
                after = planned
                allowed.append(symbol)
        allowed = []
        for symbol, qty, goal in orders:  # recorded in the instruments' order, as strattest
            reason = refused.get(symbol)
            side = "buy" if qty > 0 else "sell"
            if reason:
                if reason in RETRIED:  # passing causes: this symbol is decided again next bar
                    self.target[SYMBOLS.index(symbol)] = np.nan
                self.count(f"risk_{reason}")
                self.events.append(
                    (
                        ts,
                        "risk",
                        {
                            "block": self.episode,
                            "reason": reason,
                            "symbol": symbol,
                            "side": side,
                            "qty": abs(qty),
                            "target": goal,
                        },
                    )
                )
                continue
            client_id = f"{self.run_id}-{ts}-{symbol}{tag}"
            allowed.append(OrderRequest(client_id, symbol, qty, goal, ts))
            self.events.append(
                (
                    ts,
                    "order",
                    {
                        "block": self.episode,
                        "symbol": symbol,
                        "side": side,
                        "qty": abs(qty),
                        "target": goal,
                        "client_id": client_id,
                        "fills_at": "this close" if at_close or not self.next_open else "next open",
                    },
                )
            )
        if allowed:
            self.sent_at.extend([ts] * len(allowed))
            self.count("orders", len(allowed))
            self.apply(self.broker.submit(allowed), ts)
        return len(allowed)

    def apply(self, events: list[BrokerEvent], ts: int) -> None:
        """Broker events into the book and the audit: fills move cash and shares with the
        backtest's arithmetic (``execution.settle``)."""
        for e in events:
            if e.kind in ("filled", "partial") and e.qty:
                j = SYMBOLS.index(e.symbol)
                self.cash = settle(self.cash, e.qty, e.price, e.fees)
                self.shares[j] += e.qty
                self.count("fills")
                self.ledger.fill(self._bar_no, j, e.qty, e.price, e.fees)
                self.events.append(
                    (
                        ts,
                        "fill",
                        {
                            "block": self.episode,
                            "symbol": e.symbol,
                            "side": "buy" if e.qty > 0 else "sell",
                            "qty": abs(e.qty),
                            "price": e.price,
                            "fees": e.fees,
                            "simulated": bool(self.market.simulated.get(e.symbol, False)),
                            "cash_after": self.cash,
                            "position_after": int(self.shares[j]),
                            "positions_after": self.positions(),
                            "client_id": e.client_id,
                            "status": e.kind,
                        },
                    )
                )
            if e.kind != "filled" or e.detail:
                self.events.append(
                    (
                        ts,
                        "broker",
                        {
                            "block": self.episode,
                            "event": e.kind,
                            "client_id": e.client_id,
                            "symbol": e.symbol,
                            "detail": e.detail,
                        },
                    )
                )

    def check_daily_loss(self, ts: int, equity: float) -> None:
        limit = self.config.risk.max_daily_loss
        if limit is None or self.halted or self.day_start_equity <= 0:
            return
        loss = 100 * (1 - equity / self.day_start_equity)
        if loss >= limit:
            self.halted = True
            self.count("risk_daily_loss")
            self.events.append(
                (
                    ts,
                    "risk",
                    {
                        "block": self.episode,
                        "reason": "daily_loss",
                        "loss_pct": loss,
                        "limit_pct": limit,
                    },
                )
            )

    def check_ranges(self, ts: int) -> None:
        """Once per run, when the bars the stream context scored pass the warning rule of
        ``sentio.infer.ranges`` (too many with a feature beyond the clip: inputs unlike the
        training data), an ``inputs_out_of_range`` risk event with the counts. Nothing is
        refused: the model still decides, the run says its inputs are out of range."""
        ranges = self.stream.ranges
        if ranges is None or not ranges.warn or self.counts.get("warned_inputs_out_of_range"):
            return
        report = ranges.get()
        self.count("warned_inputs_out_of_range")
        self.events.append(
            (
                ts,
                "risk",
                {
                    "block": self.episode,
                    "reason": "inputs_out_of_range",
                    "bars": report.bars,
                    "beyond_clip": report.beyond_clip,
                    "outside_training": report.outside_training,
                    "share_beyond_clip": report.share_beyond_clip,
                    "threshold_share": report.threshold_share,
                    "rule": report.rule,
                    "top_features": [list(x) for x in report.top_features],
                },
            )
        )

    def episode_capital(self) -> float:
        """What the episode started with: the capital of a block, else the equity at its
        first bar (cash plus any positions a previous run left, at their last closes)."""
        if self.market.episodes or self.positions_start is None:
            return self.trading.capital
        start = self.positions_start
        value = float(start["cash"])
        for s in SYMBOLS:
            if start["positions"][s]:
                value += start["positions"][s] * start["closes"][s]
        return value

    def end_episode(self, ts: int, equity: float) -> None:
        bars = self.ledger.episode_bars(self.episode)
        fills, fees = self.ledger.episode_fees(self.episode)
        self.events.append(
            (
                ts,
                "block_end",
                clean(
                    {
                        "block": self.episode,
                        "start": pd.Timestamp(int(bars[0]), tz="UTC").isoformat()
                        if len(bars)
                        else None,
                        "end": pd.Timestamp(ts, tz="UTC").isoformat(),
                        "return_pct": 100 * (equity / self.episode_capital() - 1.0),
                        "fills": fills,
                        "fees": fees,
                        "buy_and_hold_return_pct": None,
                        "equity_end": equity,
                    }
                ),
            )
        )

    # -- state and audit -------------------------------------------------------------------

    def commit(self, ended: bool = False) -> None:
        """Write the state (with this minute's events, not yet in the audit), then append the
        events to the audit: a kill between the two is repaired at restart."""
        events, self.events = self.events, []
        before, after = self.audit_count, self.audit_count + len(events)
        if self.state_store is not None:
            self.state_store.save(self.state_doc(events, before, after, ended))
        t1 = time.perf_counter()
        if self.store is not None and events:
            self.store.append(self.run_id, events)
        self.audit_count = after
        self._audit_s = time.perf_counter() - t1

    def state_doc(self, pending, before: int, after: int, ended: bool = False) -> dict:
        s = self.strategy_state
        return {
            "format": STATE_FORMAT,
            "run_id": self.run_id,
            "manifest_hash": self.model.manifest_hash,
            "fingerprint": self.fingerprint,
            "settings": self.settings,
            "model": str(self.trading.model),
            "feed": self.config.feed,
            "broker": self.broker.to_dict() if isinstance(self.broker, PaperBroker) else {},
            "book": {"cash": self.cash, "shares": self.shares.tolist()},
            "last_ts": self.last_ts,
            "segment": self.segment,
            "episode": self.episode,
            "in_episode": self.in_episode,
            "target": self.target.tolist(),
            "strategy": {
                "exposure": s.exposure,
                "held_bars": s.held_bars,
                "since_change": s.since_change,
                "history": list(s.history),
            },
            "recent": [list(x) for x in self.recent],
            "day": self.day,
            "day_start_equity": self.day_start_equity,
            "halted": self.halted,
            "sent_at": list(self.sent_at),
            "counts": self.counts,
            "stream": self.stream.to_json(),
            "ledger": self.ledger.sizes(),
            "positions_start": self.positions_start,
            "audit": {"before": before, "after": after, "pending": [list(e) for e in pending]},
            "ended": ended,
            "stop_reason": self.stop_reason,
            "exiting": self.exiting,
            "parity": self.parity,
            "equity": self.ledger.last_equity(),
            "capital_start": self.episode_capital(),
            "closes": self.closes,
        }

    # -- the end ---------------------------------------------------------------------------

    def finish(self) -> dict:
        """End the run: the exit (its event; what still waits for a fill cancelled; unless
        --no-flatten-on-exit, orders to flat filled at the last close, as there is no next
        open; the episode's end), committed as ``exiting``, then run_end. A loop killed
        between the two commits only writes run_end when started again."""
        if not self.exiting:
            self.exit_positions()
            self.exiting = True
            self.commit()
        return self.end_run()

    def exit_positions(self) -> None:
        ts = self.last_ts or 0
        self.store_closed()  # a session closed at the last minute's start, if any
        if self.last_ts is not None and self.last_ts + NS_PER_MINUTE == self.sessions(ts)[3]:
            self.store_session()  # the feed ended with its session: a closed session too
        self.flush_check(self.finished)
        self.flush_check(self.check)
        self.events.append(
            (
                ts,
                "exit",
                {
                    "reason": self.stop_reason,
                    "counts": self.counts,
                    "positions": self.positions(),
                    "cash": self.cash,
                },
            )
        )
        if self.episode < 0:  # nothing was decided in this run: its book is left as it came
            return
        self._bar_no = self.ledger.bars - 1
        if hasattr(self.broker, "cancel_open"):
            self.apply(self.broker.cancel_open(), ts)
        if self.config.flatten_on_exit and any(self.shares) and self.closes:
            orders = [(s, -int(self.shares[j]), 0) for j, s in enumerate(SYMBOLS) if self.shares[j]]
            self.target = np.zeros(len(SYMBOLS))
            at_close = hasattr(self.broker, "settle_at_close")
            self.send(  # "-exit": not the id of an order this bar decided (it may be cancelled)
                ts, orders, self.closes, self.equity(self.closes), at_close=at_close, tag="-exit"
            )
            if at_close:
                self.apply(self.broker.settle_at_close(), ts)
            else:
                self.await_fills(ts)
            self.ledger.rewrite_last(self.equity(self.closes), self.shares)
        complete = self.market.episodes and self.in_episode == self.market.episodes[self.episode][1]
        if not complete:
            self.end_episode(ts, self.final_equity())

    def final_equity(self) -> float:
        return self.equity(self.closes) if self.closes else self.cash

    def end_run(self) -> dict:
        ts = self.last_ts or 0
        summary = self.summary()
        if self.store is not None:
            end = {
                "summary": {"strategy": summary},
                "blocks_run": self.episode + 1,
                "parity": self.parity,
                "counts": self.counts,
                "events": self.store.count(self.run_id) + 1,  # run_end included
                "last_hash": self.store.head(self.run_id),
            }
            self.events.append((ts, "run_end", clean(end)))
        self.commit(ended=True)
        if self.store is not None:
            self.store.end_run(self.run_id)
        return {
            "run_id": self.run_id,
            "stop_reason": self.stop_reason,
            "counts": self.counts,
            "positions": self.positions(),
            "cash": self.cash,
            "equity": self.final_equity(),
            "bars": self.ledger.bars,
            "fills": self.ledger.fills_count,
            "blocks": self.episode + 1,
            "metrics": summary,
        }

    def await_fills(self, ts: int, timeout_s: float = EXIT_WAIT_S) -> None:
        """A real broker fills the flattening orders when it does: ask it until none of
        ours is open (or ``timeout_s`` passed; what is still open is then in the exit's
        counts and the positions stay as the fills left them)."""
        deadline = time.monotonic() + timeout_s
        prices = {s: (c, c) for s, c in self.closes.items()}
        while True:
            self.apply(self.broker.poll(prices), ts)
            if not self.broker.open_orders() or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        if self.broker.open_orders():
            self.count("orders_open_at_exit", len(self.broker.open_orders()))

    def summary(self) -> dict | None:
        """The strategy's metrics over the run's bars (strattest's own evaluate_run)."""
        ts, block, equity, held = self.ledger.arrays()
        if not len(ts):
            return None
        day = clock_columns(ts)[1]
        summary, _ = evaluate_run(
            equity, held, self.ledger.fill_array(), block, day, self.episode_capital(), self.trading
        )
        return summary.to_dict()

    def status(self, ts, p, exposure, sent, equity) -> dict:
        return {
            "ts": pd.Timestamp(ts, tz="UTC").isoformat(),
            "p": number(p),
            "exposure": exposure,
            "orders": sent,
            "positions": self.positions(),
            "cash": round(self.cash, 2),
            "equity": round(equity, 2),
            "faults": sum(v for k, v in self.counts.items() if k.startswith("fault_")),
            "refused": sum(v for k, v in self.counts.items() if k.startswith("risk_")),
            "lag_s": round(time.time() - (ts / 1e9 + 60), 3),
        }


def serving_model(registry: ModelRegistry, state_dir: Path | None) -> Path:
    """The model a run on ``registry`` starts with: the version a killed run was serving (it
    swaps to the current one at its next bar), else the current version."""
    if state_dir is not None and (Path(state_dir) / "state.json").is_file():
        saved = StateStore(state_dir).load()
        serving = Path(saved.get("model", ""))
        if not saved["ended"] and serving.parent == registry.versions_dir:
            return registry.path(serving.name)
    version = registry.current()
    if version is None:
        raise LiveError(
            f"--registry: {registry.folder} has no current version; publish and promote one "
            "(sentio model publish / promote)"
        )
    return registry.path(version)


def json_of(model: BaseModel, exclude: set | None = None) -> dict:
    import json

    return json.loads(model.model_dump_json(exclude=exclude))


def _strategy_from(doc: dict) -> StrategyState:
    return StrategyState(
        doc["exposure"], doc["held_bars"], doc["since_change"], tuple(doc["history"])
    )


__all__ = [
    "LiveLoop",
]
