"""``sentio live --feed alpaca --broker alpaca-paper`` end to end, against the loopback fake of
Alpaca's stream and trading API (tests/live/alpaca_server.py), with alpaca-py's own clients.

The test plays the exchange: it pushes each minute's bars, then fills every open order at the
next minute's open. The oracle is what the fake server holds: the orders it received (client
ids), the fills the test made; the audit must hold exactly those and verify by replay.
"""

from __future__ import annotations

import json
import queue
import subprocess
import threading
from pathlib import Path

import pandas as pd
import pytest

pytest.importorskip("alpaca", reason="alpaca-py is not installed (pip install 'sentio[alpaca]')")

from tests.cli.badinput import run_script, script  # noqa: E402
from tests.live.alpaca_server import FINAL, AlpacaServer, bar_message  # noqa: E402
from tests.live.conftest import audit_events, write_history  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore:websockets.legacy:DeprecationWarning")
SYMBOLS = ("QQQ", "TQQQ", "PSQ", "SQQQ")
HISTORY = 3 * 390  # three sessions of history: the model has a window from the first live bar
LIVE = 90  # minutes streamed


def lines_of(proc: subprocess.Popen) -> queue.Queue:
    """The process's stdout lines on a queue (so a test can wait with a timeout)."""
    out: queue.Queue = queue.Queue()

    def pump() -> None:
        for line in proc.stdout:
            out.put(line)
        out.put(None)

    threading.Thread(target=pump, daemon=True).start()
    return out


def fill_open_orders(server: AlpacaServer, price_of) -> list[tuple[str, str, int, float]]:
    """Fill every open order in full at ``price_of(symbol)``; returns (client id, symbol,
    signed qty, price) of each fill made."""
    made = []
    with server.lock:
        pending = [o for o in server.orders.values() if o["status"] not in FINAL]
    for order in pending:
        qty = int(float(order["qty"])) - int(float(order["filled_qty"]))
        price = round(price_of(order["symbol"]), 2)  # an exchange trades in cents
        server.fill(order["client_order_id"], qty, price)
        made.append((order["client_order_id"], order["symbol"],
                     qty if order["side"] == "buy" else -qty, price))  # fmt: skip
    return made


def live_command(model: Path, folder: Path, *more: str) -> list[str]:
    return [
        script("sentio"), "live",
        "--model", str(model),
        "--feed", "alpaca",
        "--broker", "alpaca-paper",
        "--history", str(folder / "history.parquet"),
        "--rule", "adaptive",
        "--audit", str(folder / "audit.db"),
        "--state", str(folder / "state"),
        "--kill-file", str(folder / "STOP"),
        "--poll", "0.2",
        "--json", *more,
    ]  # fmt: skip


@pytest.fixture
def history(tmp_path, market) -> Path:
    return write_history(market, HISTORY, tmp_path / "history.parquet")


def test_alpaca_feed_and_paper_broker_end_to_end(tmp_path, tiny_artifact, market, history):
    made = []
    with AlpacaServer(cash=1_000_000.0) as server:
        proc = subprocess.Popen(
            live_command(tiny_artifact, tmp_path), env={**__import__("os").environ,
                                                         **server.env()},
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
        )  # fmt: skip
        try:
            out = lines_of(proc)
            server.wait(lambda s: s.subscriptions, timeout=60)
            for row in range(HISTORY, HISTORY + LIVE):
                server.push(*(bar_message(s, int(market[s]["ts"].iloc[row]),
                                          *market[s].iloc[row][["open", "high", "low", "close",
                                                                 "volume"]].tolist())
                              for s in SYMBOLS))  # fmt: skip
                line = out.get(timeout=60)
                assert (
                    line is not None
                    and json.loads(line)["ts"]
                    == pd.Timestamp(int(market["QQQ"]["ts"].iloc[row]), tz="UTC").isoformat()
                )
                nxt = row + 1  # the exchange fills at the next minute's open
                made += fill_open_orders(server, lambda s, r=nxt: float(market[s]["open"].iloc[r]))
            (tmp_path / "STOP").touch()
            last = HISTORY + LIVE - 1
            while proc.poll() is None:  # the exit's flattening orders, at the last close
                try:
                    server.wait(
                        lambda s: any(o["status"] not in FINAL for o in s.orders.values()),
                        timeout=1,
                    )
                except TimeoutError:
                    continue
                made += fill_open_orders(server, lambda s: float(market[s]["close"].iloc[last]))
            proc.wait(timeout=60)
            final = None
            while (line := out.get(timeout=10)) is not None:
                final = json.loads(line).get("final", final)
        finally:
            proc.kill()
        assert proc.returncode == 0, proc.stderr.read()
        sent = [body["client_order_id"] for body in server.order_posts]
        positions = {s: server.positions.get(s, 0) for s in SYMBOLS}
    assert made and len(sent) == len(set(sent))  # it traded, and no client id twice
    db = tmp_path / "audit.db"
    orders = [o["client_id"] for _, _, o in audit_events(db, "order")]
    assert orders == sent
    fills = [(f["client_id"], f["symbol"], f["qty"] if f["side"] == "buy" else -f["qty"],
              f["price"]) for _, _, f in audit_events(db, "fill")]  # fmt: skip
    assert [f[:3] for f in fills] == [m[:3] for m in made]
    assert [f[3] for f in fills] == pytest.approx([m[3] for m in made], abs=1e-9)
    assert final["positions"] == positions == dict.fromkeys(SYMBOLS, 0)
    assert final["stop_reason"].startswith("kill file")
    verify = run_script("saudit", "verify", "--db", str(db), "--json", cwd=tmp_path)
    verdict = json.loads(verify.stdout)
    # the replay holds; the stream re-run cannot read an Alpaca stream again: exit 3, said
    assert verify.returncode == 3 and verdict["ok"] and "alpaca" in verdict["unchecked"]


def test_broker_positions_that_differ_from_the_book_are_refused_unless_adopted(
    tmp_path, tiny_artifact, history
):
    with AlpacaServer() as server:
        server.positions = {"QQQ": 7}
        done = run_script("sentio", *live_command(tiny_artifact, tmp_path)[1:], cwd=tmp_path,
                          env=server.env())  # fmt: skip
        assert done.returncode == 2 and "Traceback" not in done.stderr
        assert "--adopt-broker-positions" in done.stderr and "'QQQ': 7" in done.stderr
        (tmp_path / "STOP").touch()  # adopt, then stop at once: flat at the last close
        done = run_script("sentio", *live_command(tiny_artifact, tmp_path,
                                                  "--adopt-broker-positions",
                                                  "--no-flatten-on-exit")[1:],
                          cwd=tmp_path, env=server.env())  # fmt: skip
        assert done.returncode == 0, done.stderr
        final = json.loads(done.stdout.strip().splitlines()[-1])["final"]
        assert final["positions"]["QQQ"] == 7 and final["counts"]["adopted_positions"] == 1
