"""Risk limits and the ways a live run ends, through the real ``sentio live --feed jsonl:-``.

Oracles. A reference run without limits (``reference``) says what the strategy decides on
the same bars: ``decide()`` does not look at fills, so a run whose orders are refused makes
the same decisions, and the orders a limit must refuse are the reference's orders that add
risk, at the same bar times. Prices are the feed's own (a jsonl feed has no half-spread), so
a fill at "the last close" is the close of the last bar sent, and equity is cash plus shares
times that close, by hand.
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import signal
import stat
import subprocess
import tempfile
import threading
from pathlib import Path

import pandas as pd
import pytest

from tests.cli.badinput import script
from tests.live.conftest import audit_events, json_lines, write_history

pytest.importorskip("torch", reason="training the test artifact needs the train extra")

START = 3900  # first row of the 11th session (2024-01-17): the history warms the model up
CAPITAL = 100_000.0
SYMBOLS = ("QQQ", "TQQQ", "PSQ", "SQQQ")
LEVERAGE = {"QQQ": 1.0, "TQQQ": 3.0, "PSQ": 1.0, "SQQQ": 3.0}  # |leverage| (allocation.py)


# -- running sentio live ---------------------------------------------------------------------


def live_args(artifact: Path, history: Path, folder: Path, *flags: str) -> list[str]:
    return [
        script("sentio"), "live", "--model", str(artifact), "--feed", "jsonl:-",
        "--history", str(history), "--audit", str(folder / "audit.db"),
        "--state", str(folder / "state"), "--json", *flags,
    ]  # fmt: skip


def run_live(artifact, history, folder: Path, lines: list[str], *flags: str) -> dict:
    """Every line on stdin, then end of input: the minute lines and the final JSON."""
    folder.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        live_args(artifact, history, folder, *flags),
        input="\n".join(lines) + "\n",
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    out = [json.loads(line) for line in done.stdout.splitlines() if line.strip()]
    return {
        "folder": folder,
        "db": folder / "audit.db",
        "minutes": out[:-1],
        "final": out[-1]["final"],
    }


class Running:
    """``sentio live --feed jsonl:-`` with its standard input kept open."""

    def __init__(self, args: list[str], folder: Path) -> None:
        self.stderr_path = folder / "stderr.txt"
        with open(self.stderr_path, "w") as err:
            self.proc = subprocess.Popen(
                args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err, text=True
            )
        self.lines: queue.Queue = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.put(json.loads(line))
        self.lines.put(None)

    def send(self, lines: list[str]) -> None:
        self.proc.stdin.write("\n".join(lines) + "\n")
        self.proc.stdin.flush()

    def minutes(self, n: int, timeout: float = 60) -> list[dict]:
        """The next ``n`` minute lines (failing if the process ends or stalls first)."""
        out = []
        for _ in range(n):
            line = self.lines.get(timeout=timeout)
            assert line is not None, f"ended after {len(out)} minutes: {self.stderr()}"
            out.append(line)
        return out

    def end(self, timeout: float = 60) -> tuple[int, list[dict]]:
        """Wait for the exit: (exit status, the lines printed after those already read)."""
        rc = self.proc.wait(timeout=timeout)
        rest = []
        while (line := self.lines.get(timeout=timeout)) is not None:
            rest.append(line)
        return rc, rest

    def stderr(self) -> str:
        return self.stderr_path.read_text()[-3000:]

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=30)


def verify(db: Path) -> tuple[int, dict]:
    done = subprocess.run(
        [script("saudit"), "verify", "--db", str(db), "--json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    return done.returncode, json.loads(done.stdout)


def assert_verified(db: Path) -> None:
    """The replay holds; exit 3 only because a jsonl feed's bars cannot be re-read."""
    rc, doc = verify(db)
    assert doc["ok"] is True and doc["status"] == "complete", doc
    assert rc == 0 or (rc == 3 and "jsonl" in doc["unchecked"]), (rc, doc["unchecked"])


def status(folder: Path, env: dict | None = None, user: list[str] | None = None) -> dict:
    done = subprocess.run(
        [*(user or []), script("sentio"), "live", "status", "--state", str(folder), "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)


# -- what the feed says ----------------------------------------------------------------------


def ts_of(market, k: int) -> int:
    return int(market["QQQ"]["ts"].iloc[START + k])


def close_of(market, symbol: str, k: int) -> float:
    return float(market[symbol]["close"].iloc[START + k])


def orders(db: Path) -> list[tuple[int, str, str, int]]:
    """(ts, symbol, side, qty) of every order event."""
    return [(t, p["symbol"], p["side"], p["qty"]) for t, _, p in audit_events(db, "order")]


def refusals(db: Path) -> list[tuple[int, dict]]:
    return [(t, p) for t, _, p in audit_events(db, "risk")]


FLAT = dict.fromkeys(SYMBOLS, 0)


# -- fixtures --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def history(market, tmp_path_factory) -> Path:
    """QQQ's bars before the feed's first, as canonical Parquet (``--history``)."""
    return write_history(market, START, tmp_path_factory.mktemp("history") / "qqq.parquet")


@pytest.fixture(scope="module")
def live(tiny_artifact, history):
    """``live(folder, lines, *flags)``: one run with every line on stdin."""

    def run(folder: Path, lines: list[str], *flags: str) -> dict:
        return run_live(tiny_artifact, history, folder, lines, *flags)

    return run


@pytest.fixture(scope="module")
def reference(live, market, tmp_path_factory) -> dict:
    """An hour of bars without limits: the orders the strategy sends there."""
    run = live(tmp_path_factory.mktemp("reference"), json_lines(market, range(START, START + 60)))
    sent = orders(run["db"])
    buys = [o for o in sent if o[2] == "buy"]
    sells = [o for o in sent if o[2] == "sell"]
    # The scenarios below need the strategy to trade here: in, out and in again, never two
    # orders in one minute (so a limit of one a minute binds only where a test adds one), and
    # long at the tenth minute (where the exit tests stop).
    assert len(buys) >= 2 and sells, sent
    assert len({o[0] for o in sent}) == len(sent), sent
    assert run["minutes"][9]["positions"]["QQQ"] > 0, run["minutes"][9]
    return {**run, "orders": sent, "buys": buys, "sells": sells}


# -- limits ----------------------------------------------------------------------------------


def order_value(market, ts: int, symbol: str, qty: int) -> float:
    k = (ts - ts_of(market, 0)) // 60_000_000_000
    return qty * close_of(market, symbol, k)


@pytest.mark.parametrize(
    ("flags", "reason"),
    [
        (("--max-order-value", "1000"), "order_size"),
        (("--max-gross-exposure", "0.5"), "gross_exposure"),
        (("--dry-run",), "dry_run"),
    ],
    ids=["order_size", "gross_exposure", "dry_run"],
)
def test_a_limit_refuses_every_order_that_adds_risk(
    live, market, reference, tmp_path, flags, reason
):
    """Nothing is ever held, so the refused orders are exactly the reference's buys (the
    decisions are the same), each recorded with its reason; no order goes out, no fill."""
    run = live(tmp_path / "run", json_lines(market, range(START, START + 60)), *flags)
    refused = refusals(run["db"])
    assert [(t, p["symbol"], p["side"]) for t, p in refused] == [
        (t, s, side) for t, s, side, _ in reference["buys"]
    ]
    assert {p["reason"] for _, p in refused} == {reason}
    for t, p in refused:
        value = order_value(market, t, p["symbol"], p["qty"])
        if reason == "order_size":
            assert value > 1000, (t, p)
        if reason == "gross_exposure":  # equity is the capital: nothing was ever bought
            assert value * LEVERAGE[p["symbol"]] / CAPITAL > 0.5, (t, p)
    assert orders(run["db"]) == [] and audit_events(run["db"], "fill") == []
    counts = run["final"]["counts"]
    assert counts[f"risk_{reason}"] == len(refused)
    assert "orders" not in counts and "fills" not in counts
    assert all(m["positions"] == FLAT for m in run["minutes"])
    assert run["final"]["cash"] == CAPITAL and run["final"]["fills"] == 0
    assert run["minutes"][-1]["refused"] == len(refused)
    assert_verified(run["db"])


def test_max_orders_per_minute_never_refuses_a_reduction(live, market, reference, tmp_path):
    """The feed ends on the minute the reference first sells: that sell is the minute's one
    order; at the exit it still waits for the next open, so it is cancelled, and the exit's
    flattening order, a second order in the same minute, is a reduction: never refused by the
    rate limit (refusing it would keep the risk it removes). The run ends flat."""
    sell_ts = reference["sells"][0][0]
    last = (sell_ts - ts_of(market, 0)) // 60_000_000_000
    lines = json_lines(market, range(START, START + last + 1))
    run = live(tmp_path / "run", lines, "--max-orders-per-minute", "1")
    assert orders(run["db"])[:-2] == [o for o in reference["orders"] if o[0] < sell_ts]
    minute_sell, flattening = orders(run["db"])[-2:]
    assert minute_sell[:3] == flattening[:3] == (sell_ts, "QQQ", "sell")
    broker = [p for _, k, p in audit_events(run["db"]) if k == "broker"]
    cancelled = [(p["event"], p["symbol"]) for p in broker if p["event"] == "cancelled"]
    assert cancelled == [("cancelled", "QQQ")]
    assert refusals(run["db"]) == [] and "risk_order_rate" not in run["final"]["counts"]
    assert run["final"]["positions"] == FLAT
    assert_verified(run["db"])


def test_max_orders_per_minute_refuses_an_order_that_adds_risk():
    """The rate limit counts the minute's orders already sent; a buy beyond it is refused."""
    from sentio.live.risk import RiskLimits, order_refusal

    limits = RiskLimits(max_orders_per_minute=1)
    close = {"QQQ": 100.0, "TQQQ": 50.0, "PSQ": 10.0, "SQQQ": 20.0}
    held = dict.fromkeys(close, 0)
    buy = {**held, "TQQQ": 10}
    assert order_refusal(limits, "TQQQ", 10, held, buy, close, 10_000.0, 0) is None
    assert order_refusal(limits, "TQQQ", 10, held, buy, close, 10_000.0, 1) == "order_rate"


def test_max_daily_loss_halts_the_session(live, market, reference, tmp_path):
    """From minute 5 on, QQQ and TQQQ trade 3 % lower while the run holds QQQ: the day's
    loss passes 1 % at minute 5's close; the run goes flat and buys nothing more."""
    drop = 0.97
    lines = []
    for line in json_lines(market, range(START, START + 30)):
        bar = json.loads(line)
        k = (pd.Timestamp(bar["ts"]).value - ts_of(market, 0)) // 60_000_000_000
        if k >= 5 and bar["symbol"] in ("QQQ", "TQQQ"):
            bar.update({f: bar[f] * drop for f in ("open", "high", "low", "close")})
        lines.append(json.dumps(bar))
    run = live(tmp_path / "run", lines, "--max-daily-loss", "1")
    fills = audit_events(run["db"], "fill")
    first = fills[0][2]  # the reference's first buy, filled at minute 2's open
    assert first["side"] == "buy" and first["symbol"] == "QQQ" and fills[0][0] == ts_of(market, 2)
    cash = CAPITAL - first["qty"] * first["price"] - first["fees"]

    def loss_pct(k: int) -> float:  # the day's loss at minute k's close; the day began flat
        price = close_of(market, "QQQ", k) * (drop if k >= 5 else 1.0)
        return 100 * (1 - (cash + first["qty"] * price) / CAPITAL)

    assert all(loss_pct(k) < 1.0 for k in (2, 3, 4)) and loss_pct(5) >= 1.0  # crafted to lose
    refused = refusals(run["db"])
    assert len(refused) == 1, refused
    t, p = refused[0]
    assert (t, p["reason"], p["limit_pct"]) == (ts_of(market, 5), "daily_loss", 1.0)
    assert p["loss_pct"] == pytest.approx(loss_pct(5), rel=1e-9)
    after = [o for o in orders(run["db"]) if o[0] > t]
    assert after and all(side == "sell" for _, _, side, _ in after), after
    assert run["minutes"][7]["positions"] == FLAT  # sold at minute 6, filled at 7's open
    assert all(m["positions"] == FLAT for m in run["minutes"][7:])
    assert run["final"]["counts"]["risk_daily_loss"] == 1
    assert_verified(run["db"])


def test_a_reduction_is_never_refused_by_size(tiny_artifact, history, market, reference, tmp_path):
    """A run holding QQQ is killed (kill -9) and resumed under --max-order-value $1000: the
    reference's sell of the whole position (worth ~$100k) goes out and fills; its next buy is
    refused."""
    folder = tmp_path / "run"
    folder.mkdir()
    first = Running(live_args(tiny_artifact, history, folder), folder)
    try:
        first.send(json_lines(market, range(START, START + 10)))
        held = first.minutes(10)[-1]["positions"]
    finally:
        first.kill()
    assert held["QQQ"] > 0
    killed = status(folder / "state")
    assert killed["ended"] is False and killed["positions"] == held
    lines = json_lines(market, range(START + 10, START + 30))
    run = run_live(
        tiny_artifact, history, folder, lines, "--max-order-value", "1000", "--allow-model-change"
    )
    sell_ts = reference["sells"][0][0]
    assert (sell_ts, "QQQ", "sell", held["QQQ"]) in orders(run["db"])
    sold = [p for t, _, p in audit_events(run["db"], "fill") if t > sell_ts]
    assert sold and sold[0]["side"] == "sell" and sold[0]["qty"] == held["QQQ"]
    assert order_value(market, sell_ts, "QQQ", held["QQQ"]) > 1000
    refused = refusals(run["db"])
    expected = [(t, s) for t, s, _, _ in reference["buys"] if sell_ts < t <= ts_of(market, 29)]
    assert [(t, p["symbol"]) for t, p in refused] == expected
    assert {(p["reason"], p["side"]) for _, p in refused} <= {("order_size", "buy")}
    assert run["final"]["positions"] == FLAT
    # other settings: the killed run's audit is made whole, a new run goes on from its book
    start = audit_events(run["db"], "run_start")[0][2]
    assert start["live"]["resumed_from"] == killed["run_id"]
    assert_verified(run["db"])


def test_allow_model_change_also_applies_to_an_ended_run(live, market, tmp_path):
    """A run that ended holding QQQ (--no-flatten-on-exit) goes on under a tighter limit when
    asked to: selling what it holds is never refused, only buys are."""
    folder = tmp_path / "run"
    ended = live(folder, json_lines(market, range(START, START + 10)), "--no-flatten-on-exit")
    held = ended["final"]["positions"]["QQQ"]
    assert held > 0
    lines = json_lines(market, range(START + 10, START + 30))
    again = live(folder, lines, "--max-order-value", "1000", "--allow-model-change")
    assert {p["side"] for _, p in refusals(again["db"])} <= {"buy"}
    sold = sum(q for _, s, side, q in orders(again["db"]) if s == "QQQ" and side == "sell")
    assert sold >= held
    assert again["final"]["positions"] == FLAT


# -- ending a run ----------------------------------------------------------------------------


def test_the_kill_file_stops_and_flattens_at_the_last_close(
    tiny_artifact, history, market, tmp_path
):
    folder = tmp_path / "run"
    folder.mkdir()
    kill = tmp_path / "STOP"
    running = Running(
        live_args(tiny_artifact, history, folder, "--kill-file", str(kill), "--poll", "0.1"), folder
    )
    try:
        running.send(json_lines(market, range(START, START + 10)))
        held = running.minutes(10)[-1]["positions"]
        kill.touch()
        running.send(json_lines(market, range(START + 10, START + 12)))  # never decided
        rc, rest = running.end()
    finally:
        running.kill()
    assert rc == 0, running.stderr()
    assert held["QQQ"] > 0
    final = rest[-1]["final"]
    assert rest[:-1] == [] and final["bars"] == 10
    assert final["stop_reason"] == f"kill file {kill}"
    assert final["positions"] == FLAT
    events = audit_events(folder / "audit.db")
    kinds = [k for _, k, _ in events]
    exit_at = kinds.index("exit")
    last_ts = ts_of(market, 9)
    assert events[exit_at][0] == last_ts
    assert events[exit_at][2]["reason"] == f"kill file {kill}"
    assert events[exit_at][2]["positions"] == held
    fills = [p for _, k, p in events[exit_at:] if k == "fill"]
    assert [(p["symbol"], p["side"], p["qty"]) for p in fills] == [("QQQ", "sell", held["QQQ"])]
    assert fills[0]["price"] == close_of(market, "QQQ", 9)
    assert kinds[-2:] == ["block_end", "run_end"]
    assert_verified(folder / "audit.db")


def test_the_flattening_order_says_it_fills_at_the_close(live, market, tmp_path):
    run = live(tmp_path / "run", json_lines(market, range(START, START + 10)))
    events = audit_events(run["db"])
    exit_at = [k for _, k, _ in events].index("exit")
    after = [(k, p) for _, k, p in events[exit_at:] if k in ("order", "fill")]
    assert [k for k, _ in after] == ["order", "fill"]
    assert after[1][1]["price"] == close_of(market, "QQQ", 9)  # it did fill at the close
    assert after[0][1]["fills_at"] != "next open"


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_ends_the_run_cleanly_and_flat(tiny_artifact, history, market, tmp_path, signum):
    folder = tmp_path / "run"
    folder.mkdir()
    running = Running(live_args(tiny_artifact, history, folder, "--poll", "0.1"), folder)
    try:
        running.send(json_lines(market, range(START, START + 10)))
        held = running.minutes(10)[-1]["positions"]
        running.proc.send_signal(signum)
        rc, rest = running.end()
    finally:
        running.kill()
    assert rc == 0, running.stderr()
    assert "Traceback" not in running.stderr()
    assert held["QQQ"] > 0
    final = rest[-1]["final"]
    assert final["stop_reason"] == signum.name and final["positions"] == FLAT
    exits = audit_events(folder / "audit.db", "exit")
    assert [p["reason"] for _, _, p in exits] == [signum.name]
    saved = status(folder / "state")
    assert saved["ended"] is True and saved["stop_reason"] == signum.name
    assert saved["positions"] == FLAT
    fills = [p for t, _, p in audit_events(folder / "audit.db", "fill") if t == ts_of(market, 9)]
    assert [(p["side"], p["qty"], p["price"]) for p in fills] == [
        ("sell", held["QQQ"], close_of(market, "QQQ", 9))
    ]
    assert_verified(folder / "audit.db")


@pytest.fixture(scope="module")
def unflattened(live, market, tmp_path_factory) -> dict:
    """Ten minutes ending while the run holds QQQ, with --no-flatten-on-exit."""
    folder = tmp_path_factory.mktemp("noflat") / "run"
    return live(folder, json_lines(market, range(START, START + 10)), "--no-flatten-on-exit")


def test_no_flatten_on_exit_keeps_the_positions(unflattened, market):
    run = unflattened
    held = run["final"]["positions"]
    assert held["QQQ"] > 0 and held == run["minutes"][-1]["positions"]
    events = audit_events(run["db"])
    kinds = [k for _, k, _ in events]
    exit_at = kinds.index("exit")
    assert events[exit_at][2]["positions"] == held
    assert "fill" not in kinds[exit_at:] and "order" not in kinds[exit_at:]
    by_hand = run["final"]["cash"] + held["QQQ"] * close_of(market, "QQQ", 9)
    assert run["final"]["equity"] == pytest.approx(by_hand, rel=1e-12)
    assert_verified(run["db"])


def test_status_reports_what_the_audit_ended_with(unflattened, market):
    run = unflattened
    doc = status(run["folder"] / "state")
    events = audit_events(run["db"])
    last_bar = [(t, p) for t, k, p in events if k == "bar"][-1]
    exit_ = [p for _, k, p in events if k == "exit"][-1]
    run_end = [p for _, k, p in events if k == "run_end"][-1]
    assert doc["run_id"] == run["final"]["run_id"]
    assert doc["positions"] == exit_["positions"] == last_bar[1]["positions"]
    assert doc["cash"] == exit_["cash"]
    assert doc["counts"] == run_end["counts"]
    ny = pd.Timestamp(ts_of(market, 9), tz="UTC").tz_convert("America/New_York")
    assert last_bar[0] == ts_of(market, 9)
    assert doc["last_bar"] == ny.strftime("%Y-%m-%d %H:%M")
    by_hand = exit_["cash"] + exit_["positions"]["QQQ"] * close_of(market, "QQQ", 9)
    assert doc["equity"] == pytest.approx(by_hand, rel=1e-12)
    assert doc["pnl"] == pytest.approx(by_hand - CAPITAL, rel=1e-9)
    assert doc["ended"] is True and doc["stop_reason"] == "the feed ended"
    assert doc["feed"] == "jsonl:-"


def _snapshot(folder: Path) -> dict:
    """Every path under ``folder``: its mtime, mode and (for a file) its bytes."""
    return {
        p.relative_to(folder): (
            p.stat().st_mtime_ns,
            p.stat().st_mode,
            p.read_bytes() if p.is_file() else None,
        )
        for p in sorted([folder, *folder.rglob("*")])
    }


def _as_nobody() -> list[str] | None:
    """``setpriv`` prefix that runs a command as nobody, or None when this is not root or
    nobody cannot run the installed script."""
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        return None
    prefix = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
    probe = subprocess.run(
        [*prefix, script("sentio"), "--help"],
        capture_output=True,
        env={**os.environ, "HOME": "/tmp"},
        timeout=60,
    )
    return prefix if probe.returncode == 0 else None


def test_status_never_writes(unflattened):
    """On a read-only copy (as nobody when this is root): the same answer, nothing changed."""
    expected = status(unflattened["folder"] / "state")
    top = Path(tempfile.mkdtemp(prefix="sentio-status-"))
    try:
        top.chmod(0o755)
        copy = top / "state"
        shutil.copytree(unflattened["folder"] / "state", copy)
        for path in [copy, *copy.rglob("*")]:
            readable = stat.S_IROTH | (stat.S_IXOTH if path.is_dir() else 0)
            path.chmod(
                path.stat().st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH) | readable
            )
        before = _snapshot(copy)
        user = _as_nobody()
        env = {**os.environ, "HOME": str(top)} if user else None
        got = status(copy, env=env, user=user)
        assert _snapshot(copy) == before
        got.pop("feed_lag_s"), expected.pop("feed_lag_s")  # the wall clock moved on
        assert got == expected
    finally:
        for path in [top, *top.rglob("*")]:
            path.chmod(0o755 if path.is_dir() else 0o644)
        shutil.rmtree(top)
