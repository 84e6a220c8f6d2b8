"""The live loop's fault policy, end to end: a scripted ``jsonl:-`` feed through the real
``sentio live`` with one of each fault (docs of ``sentio.live.faults.FAULTS``), then ``saudit
verify`` on its audit.

The oracle is the script itself: each special line is written with the fault it must cause,
so the expected counts, the ``stdin:line N`` sources and the minutes that must (and must not)
be decided are known before the run. A clean feed of the same minutes is the control.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from tests.cli.badinput import script
from tests.live.conftest import audit_events, write_history

pytest.importorskip("torch", reason="training the test artifact needs the train extra")

START = 3900  # first row of the 11th session (2024-01-17): the history warms the model up
MAX_GAP = 3  # --max-gap of these runs, in minutes
SYMBOLS = ("QQQ", "TQQQ", "PSQ", "SQQQ")
NS_MIN = 60 * 10**9


def bar_line(market, symbol: str, row: int, at: int | None = None, **changes) -> str:
    """One ``jsonl:-`` line: the market's bar of ``symbol`` at ``row`` (or at ``at`` ns), any
    field replaced by ``changes``."""
    bar = market[symbol].iloc[row]
    doc = {
        "ts": pd.Timestamp(int(bar["ts"]) if at is None else at, tz="UTC").isoformat(),
        "symbol": symbol,
        **{k: float(bar[k]) for k in ("open", "high", "low", "close", "volume")},
    }
    doc.update(changes)
    return json.dumps(doc)


class Script:
    """Feed lines and what the script says each special line must cause."""

    def __init__(self, market) -> None:
        self.market = market
        self.lines: list[str] = []
        self.faults: list[tuple[str, int]] = []  # (fault, stdin line number) from the feed
        self.decided: list[int] = []  # minutes (offsets from START) that must be decided
        self.says: dict[int, tuple[str, ...]] = {}  # line number -> words of its fault detail

    def add(self, line: str, fault: str | None = None, says: tuple[str, ...] = ()) -> int:
        """Append a line; ``fault``: the fault it must cause, ``says``: words of its detail."""
        self.lines.append(line)
        if fault:
            self.faults.append((fault, len(self.lines)))
            self.says[len(self.lines)] = says
        return len(self.lines)

    def bar(self, k: int, symbol: str, fault: str | None = None, says=(), **changes) -> int:
        return self.add(bar_line(self.market, symbol, START + k, **changes), fault, says)

    def minute(self, k: int) -> None:
        for symbol in SYMBOLS:
            self.bar(k, symbol)
        self.decided.append(k)

    def ts(self, k: int) -> int:
        return int(self.market["QQQ"]["ts"].iloc[START + k])


def faulty_script(market) -> Script:
    s = Script(market)
    for k in range(10):
        s.minute(k)
    s.add('{"ts": "2024-01-17T14:40:00+00:00", "open": 1,', "malformed", ("not JSON",))
    s.add("[1, 2, 3]", "malformed", ("not a JSON object",))
    s.bar(10, "QQQ", "malformed", ("zone",), ts="2024-01-17T14:40:00")  # naive time
    no_volume = json.loads(bar_line(market, "QQQ", START + 10))
    del no_volume["volume"]
    s.add(json.dumps(no_volume), "malformed", ("volume",))
    q10 = market["QQQ"].iloc[START + 10]
    low_high = float(min(q10["open"], q10["close"])) - 0.01  # high < max(open, close)
    rule = ("high", "high_below_open_close")
    s.bar(10, "QQQ", "malformed", rule, high=low_high, low=low_high - 0.01)
    s.minute(10)
    up = {"close": float(q10["close"]) + 0.5, "high": float(q10["high"]) + 0.5}
    s.bar(10, "QQQ", "duplicate", ("QQQ",), **up)  # minute 10 is decided: a later copy
    s.bar(11, "QQQ")
    s.bar(11, "TQQQ")
    t11 = market["TQQQ"].iloc[START + 11]
    up = {"close": float(t11["close"]) + 0.25, "high": float(t11["high"]) + 1}
    s.bar(11, "TQQQ", "duplicate", ("TQQQ",), **up)  # the same symbol twice in one minute
    s.bar(11, "PSQ")
    s.bar(11, "SQQQ")
    s.decided.append(11)
    s.minute(12)
    s.bar(5, "QQQ", "late", ("QQQ", "14:35"))  # minute 5 was decided long ago
    s.minute(13)
    # Minute 15 starts before any bar of minute 14 arrived: 14's bars are out of order and
    # minute 14 is a one-minute hole when 15 is decided.
    s.bar(15, "QQQ")
    s.bar(14, "QQQ", "out_of_order", ("QQQ", "14:44"))
    s.bar(14, "TQQQ", "out_of_order", ("TQQQ", "14:44"))
    for symbol in SYMBOLS[1:]:
        s.bar(15, symbol)
    s.decided.append(15)
    s.bar(16, "QQQ")
    evening = s.ts(16) + 8 * 60 * NS_MIN  # 17:46 New York: after the close
    s.bar(16, "QQQ", "outside_session", ("22:46",), at=evening)
    spy = bar_line(market, "QQQ", START + 16).replace('"QQQ"', '"SPY"')
    s.add(spy, "unknown_symbol", ("SPY",))
    for symbol in SYMBOLS[1:]:
        s.bar(16, symbol)
    s.decided.append(16)
    for symbol in SYMBOLS[:3]:  # minute 17 without SQQQ: decided when minute 18 starts
        s.bar(17, symbol)
    s.decided.append(17)
    s.minute(18)
    for symbol in SYMBOLS[1:]:  # minute 19 without QQQ: never decided
        s.bar(19, symbol)
    for k in range(20, 25):
        s.minute(k)
    for k in range(31, 42):  # minutes 25-30 missing: 6 > --max-gap 3, a new segment
        s.minute(k)
    for k in range(44, 48):  # minutes 42-43 missing: 2 <= --max-gap 3, the same segment
        s.minute(k)
    return s


# Loop faults the script implies (source "loop"): (fault, the minute its event is stamped with).
LOOP_FAULTS = [
    ("gap", 15),  # minute 14
    ("missing_symbol", 17),  # SQQQ
    ("missing_symbol", 19),  # QQQ: minute 19 not decided
    ("gap", 20),  # minute 19
    ("gap", 31),  # minutes 25-30, a new segment
    ("gap", 44),  # minutes 42-43
]


def run_live(artifact: Path, history: Path, folder: Path, lines: list[str]) -> dict:
    """``sentio live --feed jsonl:-`` over ``lines`` (all on stdin), then ``saudit verify``."""
    folder.mkdir()
    db = folder / "audit.db"
    done = subprocess.run(
        [
            script("sentio"), "live", "--model", str(artifact), "--feed", "jsonl:-",
            "--history", str(history), "--audit", str(db), "--state", str(folder / "state"),
            "--max-gap", str(MAX_GAP), "--json",
        ],
        input="\n".join(lines) + "\n",
        capture_output=True,
        text=True,
        timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    out = [json.loads(line) for line in done.stdout.splitlines() if line.strip()]
    verify = subprocess.run(
        [script("saudit"), "verify", "--db", str(db), "--json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    return {
        "db": db,
        "minutes": out[:-1],
        "final": out[-1]["final"],
        "verify": verify,
        "events": audit_events(db),
    }


@pytest.fixture(scope="module")
def history(market, tmp_path_factory) -> Path:
    """QQQ's bars before the feed's first, as canonical Parquet (``--history``)."""
    return write_history(market, START, tmp_path_factory.mktemp("history") / "qqq.parquet")


@pytest.fixture(scope="module")
def faulty(market, tiny_artifact, history, tmp_path_factory):
    plan = faulty_script(market)
    return plan, run_live(tiny_artifact, history, tmp_path_factory.mktemp("f") / "run", plan.lines)


@pytest.fixture(scope="module")
def clean(market, tiny_artifact, history, tmp_path_factory):
    from tests.live.conftest import json_lines

    lines = json_lines(market, range(START, START + 48))
    return run_live(tiny_artifact, history, tmp_path_factory.mktemp("c") / "run", lines)


def fault_counts(counts: dict) -> dict:
    return {k: v for k, v in counts.items() if k.startswith("fault_")}


def test_every_fault_is_counted_once_in_the_final_json(faulty):
    plan, run = faulty
    expected: dict[str, int] = {}
    for fault, _ in plan.faults + [(f, 0) for f, _ in LOOP_FAULTS]:
        expected[f"fault_{fault}"] = expected.get(f"fault_{fault}", 0) + 1
    assert fault_counts(run["final"]["counts"]) == expected
    assert run["final"]["stop_reason"] == "the feed ended"
    # the per-minute lines carry the running total; the last minute saw every fault
    assert run["minutes"][-1]["faults"] == sum(expected.values())


def test_feed_faults_name_their_stdin_line(faulty):
    plan, run = faulty
    events = [p for _, _, p in audit_events(run["db"], "feed_fault")]
    from_feed = [(p["fault"], p["source"]) for p in events if p["source"] != "loop"]
    assert from_feed == [(fault, f"stdin:line {n}") for fault, n in plan.faults]
    from_loop = [p["fault"] for p in events if p["source"] == "loop"]
    assert sorted(from_loop) == sorted(f for f, _ in LOOP_FAULTS)


def test_fault_details_say_what_was_wrong(faulty):
    plan, run = faulty
    events = audit_events(run["db"], "feed_fault")
    by_fault: dict[str, list[tuple[int, dict]]] = {}
    for ts, _, p in events:
        by_fault.setdefault(p["fault"], []).append((ts, p))
    for _, _, p in events:
        if p["source"] != "loop":
            line = int(p["source"].removeprefix("stdin:line "))
            for word in plan.says[line]:
                assert word in p["detail"], (word, p)
    missing = {ts: p["detail"] for ts, p in by_fault["missing_symbol"]}
    assert "SQQQ" in missing[plan.ts(17)] and "QQQ" in missing[plan.ts(19)]
    assert "not decided" in missing[plan.ts(19)]
    gaps = {ts: p["detail"] for ts, p in by_fault["gap"]}
    assert set(gaps) == {plan.ts(k) for f, k in LOOP_FAULTS if f == "gap"}
    assert gaps[plan.ts(15)].startswith("1 minute(s) missing")
    assert gaps[plan.ts(20)].startswith("1 minute(s) missing")
    assert (
        gaps[plan.ts(31)].startswith("6 minute(s) missing") and "new segment" in gaps[plan.ts(31)]
    )
    assert (
        gaps[plan.ts(44)].startswith("2 minute(s) missing") and "segment" not in gaps[plan.ts(44)]
    )
    # each hole starts at the first missing minute
    assert pd.Timestamp(plan.ts(25), tz="UTC").isoformat() in gaps[plan.ts(31)]
    assert pd.Timestamp(plan.ts(42), tz="UTC").isoformat() in gaps[plan.ts(44)]


def test_dropped_bars_are_not_decided(faulty, market):
    plan, run = faulty
    bars = [(ts, p) for ts, _, p in audit_events(run["db"], "bar")]
    assert [ts for ts, _ in bars] == [plan.ts(k) for k in plan.decided]
    assert len(run["minutes"]) == len(plan.decided) == run["final"]["bars"]
    decided = dict(bars)
    # the first bar of a minute is the one taken: not the value-rule breaker before it, not
    # the duplicate after it, not the late copy of minute 5
    for k in (5, 10):
        q = market["QQQ"].iloc[START + k]
        assert decided[plan.ts(k)]["bar"] == [
            float(q[c]) for c in ("open", "high", "low", "close", "volume")
        ]
    assert decided[plan.ts(11)]["close"]["TQQQ"] == float(market["TQQQ"].iloc[START + 11]["close"])
    # minute 17 lacks SQQQ: its close is the last one known (minute 16's), not a new price
    assert decided[plan.ts(17)]["close"]["SQQQ"] == float(market["SQQQ"].iloc[START + 16]["close"])


def test_segments_follow_the_holes(faulty):
    plan, run = faulty
    segment = {ts: p["segment"] for ts, _, p in audit_events(run["db"], "bar")}
    before = segment[plan.ts(24)]
    assert {segment[plan.ts(k)] for k in plan.decided if k <= 24} == {before}
    assert {segment[plan.ts(k)] for k in plan.decided if k >= 31} == {before + 1}


def test_the_faulty_run_completes_and_its_replay_verifies(faulty):
    _, run = faulty
    kinds = [k for _, k, _ in run["events"]]
    assert kinds[0] == "run_start" and kinds[-1] == "run_end"
    assert kinds.count("exit") == 1
    verify = run["verify"]
    assert verify.returncode == 3, verify.stdout[-3000:] + verify.stderr[-3000:]
    doc = json.loads(verify.stdout)
    assert doc["ok"] is True and doc["status"] == "complete", doc
    assert "jsonl" in doc["unchecked"]
    assert doc["checked"]["bars"] == len(faulty[0].decided)


def test_a_clean_feed_has_no_faults(clean):
    assert fault_counts(clean["final"]["counts"]) == {}
    assert audit_events(clean["db"], "feed_fault") == []
    assert all(m["faults"] == 0 for m in clean["minutes"])
    assert clean["final"]["bars"] == len(clean["minutes"]) == 48
    doc = json.loads(clean["verify"].stdout)
    assert clean["verify"].returncode == 3 and doc["ok"] is True, clean["verify"].stdout[-2000:]
