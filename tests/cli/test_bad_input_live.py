"""Bad invocations of ``sentio live`` (and ``sencli live``, ``sentio live status``) through the
real console scripts: each is refused with exit 2 and one ``error:`` line naming the flag, file
or setting, with no traceback, and nothing is written: no state folder, no audit file, an
existing audit or state byte for byte (and modification time) as it was.

The oracle of every case is the input itself: what the flag, file or setting says is wrong
(``docs/live.md``, ``sentio live --help``, ``sentio.live.config``'s module doc). Most cases are
refused before any model loads; those that need a model use the session's ``tiny_artifact``
(read only) and a second tiny model trained here with another seed ("another model").

The cases that were accepted or refused badly when first written (FIXED) stay as a record of
what was found and mended.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.cli.badinput import Case, assert_refused, run_script, script

FEED = ["--feed", "jsonl:-"]  # a valid feed that needs no file; empty stdin ends it at once
SPREADS = ["--half-spread-bp", "QQQ=1", "--half-spread-bp", "TQQQ=1", "--half-spread-bp", "PSQ=1"]
SETTINGS = (  # `sentio.live.config.DEFAULTS`: what the message of an unknown key lists
    "allocation, allow_in_sample, bar_store, block_size, blocks, broker, capital"
)

# -- what a case may point at (prepared by the `inputs` fixture) -------------------------------
# {tmp}: the test's folder (the command's cwd); {art}: the tiny artifact; {tmp}/notes.txt: a text
# file; {tmp}/empty: an empty folder; {tmp}/fake: a folder with a manifest.json that is no
# artifact; {tmp}/q.parquet: a Parquet file that is not an audit store; {tmp}/cfg/*: config files.
CONFIGS = {
    "bad.toml": 'feed = "jsonl:-"\ncapital = [\n',
    "bad.json": '{"feed": "jsonl:-",\n',
    "unknown.toml": 'feed = "jsonl:-"\nmodel = "{art}"\nbogus = 1\n',
    "unknown.json": '{"feed": "jsonl:-", "model": "{art}", "max-daily-loss": 3}',
    "table.toml": 'feed = "jsonl:-"\n[risk]\nmax_daily_loss = 3\n',
    "list.json": '["feed", "jsonl:-"]',
    "duplicate.json": '{"feed": "jsonl:-", "capital": 1000, "capital": 2000}',
    "loss.toml": 'feed = "jsonl:-"\nmodel = "{art}"\nmax_daily_loss = 150\n',
    "capital.json": '{"feed": "jsonl:-", "model": "{art}", "capital": -5}',
    "capital-text.toml": 'feed = "jsonl:-"\nmodel = "{art}"\ncapital = "lots"\n',
    "rule.toml": 'feed = "jsonl:-"\nmodel = "{art}"\nrule = "x"\n',
    "speed.toml": 'feed = "replay:builtin@0"\nmodel = "{art}"\n',
    "orders.toml": 'feed = "jsonl:-"\nmodel = "{art}"\nmax_orders_per_minute = 2.5\n',
    "dry.toml": 'feed = "jsonl:-"\nmodel = "{art}"\ndry_run = "maybe"\n',
    # a value of the wrong TOML type, for settings the parser would type-check on a command line
    "spread-number.toml": 'feed = "jsonl:-"\nmodel = "{art}"\nhalf_spread_bp = 5\n',
    "history-number.toml": 'feed = "jsonl:-"\nmodel = "{art}"\nhistory = 5\n',
    "kill-number.toml": 'feed = "jsonl:-"\nmodel = "{art}"\nkill_file = 5\n',
    "model-number.toml": 'feed = "jsonl:-"\nmodel = 5\n',
    "blocks-bool.toml": 'feed = "replay:builtin"\nmodel = "{art}"\nblocks = true\nblock_size = 9',
}


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def snapshot(folder: Path) -> dict[str, tuple]:
    """Every file and folder under ``folder``: (size, modification time, sha256) of a file."""
    out = {}
    for path in sorted(folder.rglob("*")):
        name = str(path.relative_to(folder))
        if path.is_dir():
            out[name] = ("folder",)
        else:
            out[name] = (path.stat().st_size, path.stat().st_mtime_ns, digest(path))
    return out


@pytest.fixture
def inputs(tmp_path, tiny_artifact) -> dict[str, str]:
    """The files a case points at, and the substitutions of its arguments."""
    import pandas as pd

    (tmp_path / "notes.txt").write_text("not bars, not a database: a note\n")
    (tmp_path / "empty").mkdir()
    (tmp_path / "fake").mkdir()
    (tmp_path / "fake" / "manifest.json").write_text("{}")
    pd.DataFrame({"ts": [1, 2], "close": [1.0, 2.0]}).to_parquet(tmp_path / "q.parquet")
    cfg = tmp_path / "cfg"
    cfg.mkdir()
    for name, text in CONFIGS.items():
        (cfg / name).write_text(text.replace("{art}", str(tiny_artifact)))
    (cfg / "latin1.toml").write_bytes(b'feed = "jsonl:-"\n# caf\xe9\n')
    (cfg / "folder.toml").mkdir()
    return {"{tmp}": str(tmp_path), "{art}": str(tiny_artifact)}


def substitute(args: list[str], places: dict[str, str]) -> list[str]:
    out = []
    for arg in args:
        for key, value in places.items():
            arg = arg.replace(key, value)
        out.append(arg)
    return out


def live_args(args: list[str], places: dict[str, str]) -> list[str]:
    """``args`` with the defaults a case does not give itself: the tiny artifact (unless a
    config file names the model), a state folder and an audit store that must not appear."""
    args = substitute(args, places)
    given = set(args)
    extra = []
    if "--model" not in given and "--config" not in given:
        extra += ["--model", places["{art}"]]
    if "--state" not in given:
        extra += ["--state", f"{places['{tmp}']}/st"]
    if "--audit" not in given:
        extra += ["--audit", f"{places['{tmp}']}/a.db"]
    return [*extra, *args]


# -- refused before anything is opened: nothing at all may be written --------------------------
EARLY = [
    Case("no-feed", [], ["--feed", "give the feed"]),
    Case("feed-unknown-kind", ["--feed", "bogus:x"], ["--feed", "bogus:x", "jsonl:-"]),
    Case("feed-empty", ["--feed", ""], ["--feed", "unknown feed"]),
    Case("feed-replay-without-file", ["--feed", "replay:"], ["--feed", "replay:"]),
    Case("feed-alpaca-with-target", ["--feed", "alpaca:x"], ["--feed", "alpaca:x"]),
    # relative (the cwd is {tmp}): the message shortens a long path to its first 60 characters
    Case("replay-missing", ["--feed", "replay:nope.parquet"], ["--feed", "nope.parquet", "exist"]),
    Case("replay-a-directory", ["--feed", "replay:empty"], ["--feed", "'empty'", "not a file"]),
    Case("replay-speed-zero", ["--feed", "replay:builtin@0"], ["--feed", "speed", "'0'"]),
    Case("replay-speed-negative", ["--feed", "replay:builtin@-1"], ["--feed", "speed", "'-1'"]),
    Case("replay-speed-text", ["--feed", "replay:builtin@abc"], ["--feed", "speed", "'abc'"]),
    Case("replay-speed-nan", ["--feed", "replay:builtin@nan"], ["--feed", "speed", "'nan'"]),
    Case("jsonl-not-stdin", ["--feed", "jsonl:other"], ["--feed", "jsonl:-", "jsonl:other"]),
    Case("broker-unknown", [*FEED, "--broker", "bogus"], ["--broker", "bogus", "paper"]),
    Case("fill-typo", [*FEED, "--fill", "clos"], ["--fill", "clos", "next-open, close"]),
    Case("rule-unknown", [*FEED, "--rule", "x"], ["--rule", "'x'", "fitted, adaptive, bands"]),
    Case("allocation-unknown", [*FEED, "--allocation", "x"], ["--allocation", "'x'", "blend"]),
    Case("capital-negative", [*FEED, "--capital", "-5"], ["--capital", "100", "-5"]),
    Case("capital-not-number", [*FEED, "--capital", "lots"], ["--capital", "number"]),
    Case("gross-zero", [*FEED, "--max-gross-exposure", "0"], ["--max-gross-exposure", "than 0"]),
    Case("gross-five", [*FEED, "--max-gross-exposure", "5"], ["--max-gross-exposure", "3", "5"]),
    Case("daily-loss-zero", [*FEED, "--max-daily-loss", "0"], ["--max-daily-loss", "than 0"]),
    Case("daily-loss-150", [*FEED, "--max-daily-loss", "150"], ["--max-daily-loss", "100", "150"]),
    Case("orders-zero", [*FEED, "--max-orders-per-minute", "0"], ["--max-orders-per-minute", "1"]),
    Case("order-value-negative", [*FEED, "--max-order-value", "-1"], ["--max-order-value", "-1"]),
    Case("blocks-with-jsonl", [*FEED, "--blocks", "2"], ["--blocks", "replay"]),
    Case(
        "blocks-with-csv-tail",
        ["--feed", "csv-tail:{tmp}/notes.txt", "--blocks", "2"],
        ["--blocks", "replay"],
    ),
    Case(
        "block-size-one",
        ["--feed", "replay:builtin", "--blocks", "1", "--block-size", "1"],
        ["--block-size"],
    ),
    Case("half-spread-no-value", [*FEED, "--half-spread-bp", "QQQ"], ["--half-spread-bp", "BP"]),
    Case("half-spread-incomplete", [*FEED, *SPREADS], ["--half-spread-bp", "missing SQQQ"]),
    Case("max-gap-negative", [*FEED, "--max-gap", "-1"], ["--max-gap"]),
    Case("poll-zero", [*FEED, "--poll", "0"], ["--poll"]),
    Case("commission-negative", [*FEED, "--commission-per-share", "-1"], ["--commission-per"]),
    Case("model-missing", ["--model", "{tmp}/nope", *FEED], ["--model", "does not exist"]),
    Case("model-not-a-folder", ["--model", "{tmp}/notes.txt", *FEED], ["--model", "directory"]),
    Case("model-no-manifest", ["--model", "{tmp}/empty", *FEED], ["--model", "manifest.json"]),
    Case("unknown-flag", [*FEED, "--bogus"], ["--bogus"]),
    Case("feed-twice", [*FEED, *FEED], ["--feed", "more than once"]),
    Case("capital-twice", [*FEED, "--capital", "1e5", "--capital", "2e5"], ["--capital", "once"]),
    Case("state-twice", [*FEED, "--state", "{tmp}/s1", "--state", "{tmp}/s2"], ["--state"]),
    Case(
        "flatten-both-ways",
        [*FEED, "--flatten-on-exit", "--no-flatten-on-exit"],
        ["--flatten-on-exit", "more than once"],
    ),
    Case("audit-a-directory", [*FEED, "--audit", "{tmp}/empty"], ["--audit", "directory"]),
    Case("audit-not-sqlite", [*FEED, "--audit", "{tmp}/notes.txt"], ["notes.txt", "SQLite"]),
    Case(
        "audit-is-the-replay-file",
        ["--feed", "replay:{tmp}/q.parquet", "--audit", "{tmp}/q.parquet"],
        ["q.parquet"],
    ),
    Case(
        "audit-is-the-history",
        [*FEED, "--history", "{tmp}/q.parquet", "--audit", "{tmp}/q.parquet"],
        ["--audit", "same file"],
    ),
    Case("config-missing", ["--config", "{tmp}/cfg/nope.toml"], ["--config", "nope.toml"]),
    Case("config-a-folder", ["--config", "{tmp}/cfg/folder.toml"], ["--config", "folder.toml"]),
    Case("config-bad-toml", ["--config", "{tmp}/cfg/bad.toml"], ["--config", "bad.toml", "TOML"]),
    Case("config-bad-json", ["--config", "{tmp}/cfg/bad.json"], ["--config", "bad.json", "JSON"]),
    Case("config-not-utf8", ["--config", "{tmp}/cfg/latin1.toml"], ["--config", "latin1.toml"]),
    Case(
        "config-unknown-key",
        ["--config", "{tmp}/cfg/unknown.toml"],
        ["--config", "unknown.toml", "'bogus'", SETTINGS],
    ),
    Case(
        "config-key-with-dashes",
        ["--config", "{tmp}/cfg/unknown.json"],
        ["--config", "unknown.json", "'max-daily-loss'"],
    ),
    Case("config-a-table", ["--config", "{tmp}/cfg/table.toml"], ["--config", "'risk'"]),
    Case("config-a-list", ["--config", "{tmp}/cfg/list.json"], ["--config", "list.json"]),
    Case(
        "config-duplicate-key",
        ["--config", "{tmp}/cfg/duplicate.json"],
        ["--config", "duplicate.json", "capital"],
    ),
    Case(
        "config-daily-loss",
        ["--config", "{tmp}/cfg/loss.toml"],
        ["loss.toml", "max_daily_loss", "150"],
    ),
    Case("config-capital", ["--config", "{tmp}/cfg/capital.json"], ["capital", "-5"]),
    Case("config-capital-text", ["--config", "{tmp}/cfg/capital-text.toml"], ["capital", "lots"]),
    Case("config-rule", ["--config", "{tmp}/cfg/rule.toml"], ["rule", "'x'"]),
    Case("config-speed", ["--config", "{tmp}/cfg/speed.toml"], ["feed", "speed"]),
    Case("config-orders", ["--config", "{tmp}/cfg/orders.toml"], ["orders_per_minute", "2.5"]),
    Case("config-dry-run", ["--config", "{tmp}/cfg/dry.toml"], ["dry_run", "maybe"]),
    Case("sencli-feed", ["--feed", "bogus:x"], ["--feed", "bogus:x"], script="sencli"),
    Case("sencli-capital", [*FEED, "--capital", "-5"], ["--capital", "-5"], script="sencli"),
]


@pytest.mark.parametrize("case", EARLY, ids=lambda c: c.id)
def test_a_bad_input_is_refused_and_nothing_is_written(case, tmp_path, inputs):
    before = snapshot(tmp_path)
    done = run_script(case.script, "live", *live_args(case.args, inputs), cwd=tmp_path)
    assert_refused(done, *case.says)
    assert snapshot(tmp_path) == before  # no st/, no a.db, every input as it was


# -- refused once the model or the feed is opened (after the audit store is) --------------------
LATE = [
    Case("replay-not-parquet", ["--feed", "replay:{tmp}/notes.txt"], ["notes.txt", "Parquet"]),
    Case("csv-tail-missing", ["--feed", "csv-tail:{tmp}/nope.csv"], ["--feed", "nope.csv"]),
    Case("model-not-an-artifact", ["--model", "{tmp}/fake", *FEED], ["manifest.json"]),
    Case("history-missing", [*FEED, "--history", "{tmp}/nope.parquet"], ["nope.parquet"]),
    Case("history-not-parquet", [*FEED, "--history", "{tmp}/notes.txt"], ["notes.txt", "Parquet"]),
    Case("history-a-folder", [*FEED, "--history", "{tmp}/empty"], ["empty", "directory"]),
    Case(
        "block-longer-than-the-replay",
        ["--feed", "replay:builtin", "--blocks", "1", "--block-size", "100000"],
        ["100000"],
    ),
    Case("state-a-file", [*FEED, "--state", "{tmp}/notes.txt"], ["--state", "notes.txt", "file"]),
    Case("state-under-a-file", [*FEED, "--state", "{tmp}/notes.txt/st"], ["notes.txt"]),
]


@pytest.mark.parametrize("case", LATE, ids=lambda c: c.id)
def test_a_bad_model_or_feed_is_refused_and_no_state_is_written(case, tmp_path, inputs):
    before = snapshot(tmp_path)
    done = run_script(case.script, "live", *live_args(case.args, inputs), cwd=tmp_path)
    assert_refused(done, *case.says)
    after = snapshot(tmp_path)
    assert after == before


@pytest.mark.parametrize("case", LATE, ids=lambda c: c.id)
def test_a_bad_model_or_feed_creates_no_audit_file(case, tmp_path, inputs):
    done = run_script(case.script, "live", *live_args(case.args, inputs), cwd=tmp_path)
    assert done.returncode == 2
    assert not list(tmp_path.glob("a.db*"))


# -- once accepted, or refused badly (issue 13 review): each now refused in one line
FIXED = [
    pytest.param(
        Case("blocks-zero", ["--feed", "replay:builtin", "--blocks", "0", "--block-size", "20"]),
        ["--blocks", "1"],
        id="blocks-zero",
    ),
    pytest.param(
        Case(
            "history-with-a-replay",
            ["--feed", "replay:builtin", "--blocks", "1", "--block-size", "20"]
            + ["--history", "{tmp}/nope.parquet"],
        ),
        ["--history"],
        id="history-with-a-replay",
    ),
    pytest.param(
        Case("replay-long-path", ["--feed", "replay:{tmp}/a-long-folder-name/bars-2024.parquet"]),
        ["bars-2024.parquet"],
        id="replay-long-path-names-the-file",
    ),
    pytest.param(
        Case("config-value-file", ["--config", "{tmp}/cfg/loss.toml"]),
        ["loss.toml", "max_daily_loss"],
        id="config-bad-value-names-the-file",
    ),
    *[
        pytest.param(
            Case(f"config-{name}", ["--config", f"{{tmp}}/cfg/{name}.toml"]),
            [setting],
            id=f"config-{name}",
        )
        for name, setting in (
            ("spread-number", "half_spread_bp"),
            ("history-number", "history"),
            ("kill-number", "kill_file"),
            ("model-number", "model"),
        )
    ],
    pytest.param(
        Case("config-blocks-bool", ["--config", "{tmp}/cfg/blocks-bool.toml"]),
        ["blocks"],
        id="config-blocks-bool",
    ),
]


@pytest.mark.parametrize(("case", "says"), FIXED)
def test_known_bad_inputs(case, says, tmp_path, inputs):
    before = snapshot(tmp_path)
    done = run_script(case.script, "live", *live_args(case.args, inputs), cwd=tmp_path)
    assert_refused(done, *says)
    assert snapshot(tmp_path) == before


# -- states and audit stores of earlier runs ----------------------------------------------------


def bar_lines(minutes: int) -> list[str]:
    """``minutes`` minutes of the built-in market (every symbol, QQQ first) as jsonl:- lines."""
    from sentio.data.synth.generate import SynthConfig, generate

    market = generate(SynthConfig(seed=3, days=2))
    lines = []
    for row in range(minutes):
        for symbol in ("QQQ", "TQQQ", "PSQ", "SQQQ"):
            bar = market.bars[symbol].of(symbol).iloc[row]
            doc = {"ts": int(bar["ts"]), "symbol": symbol}
            doc |= {k: float(bar[k]) for k in ("open", "high", "low", "close", "volume")}
            lines.append(json.dumps(doc))
    return lines


def live_command(model: Path, state: Path, *more: str) -> list[str]:
    return [script("sentio"), "live", "--model", str(model), *FEED, "--state", str(state), *more]


def live_args_for(model: Path, state: Path, *more: str) -> list[str]:
    return ["--model", str(model), *FEED, "--state", str(state), *more]


@pytest.fixture(scope="module")
def earlier(tmp_path_factory, tiny_artifact) -> dict[str, Path]:
    """States of runs of the tiny artifact on six minutes of jsonl bars: ``ended`` (the feed
    ended, with its audit store ``audit``) and ``killed`` (SIGKILL after the sixth minute)."""
    root = tmp_path_factory.mktemp("earlier")
    lines = "\n".join(bar_lines(6)) + "\n"
    done = subprocess.run(
        live_command(tiny_artifact, root / "ended", "--audit", str(root / "audit.db")),
        input=lines,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    last_ts = json.loads(lines.splitlines()[-1])["ts"]
    killed = root / "killed"
    run = subprocess.Popen(
        live_command(tiny_artifact, killed, "--poll", "0.1"),
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        run.stdin.write(lines)
        run.stdin.flush()
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:  # the state after the sixth minute is on disk
            try:
                if json.loads((killed / "state.json").read_text())["last_ts"] == last_ts:
                    break
            except (OSError, ValueError, KeyError):
                pass
            time.sleep(0.02)
        run.send_signal(signal.SIGKILL)
    finally:
        run.wait(timeout=60)
    doc = json.loads((killed / "state.json").read_text())
    assert doc["last_ts"] == last_ts and not doc["ended"], "the kill came too early or late"
    assert json.loads((root / "ended" / "state.json").read_text())["ended"]
    return {"ended": root / "ended", "killed": killed, "audit": root / "audit.db"}


def state_copy(earlier: dict[str, Path], kind: str, tmp_path: Path) -> Path:
    return Path(shutil.copytree(earlier[kind], tmp_path / kind))


BROKEN_STATES = {
    "garbage": ("hello, not JSON\n", ["state.json", "not a readable live state"]),
    "json-list": ("[1, 2]", ["state.json", "JSON object"]),
    "empty": ("", ["state.json"]),
    "foreign-object": ('{"book": 1}', ["state.json", "not a sentio live state"]),
}


@pytest.mark.parametrize("kind", sorted(BROKEN_STATES))
def test_a_broken_state_is_refused_and_left_as_it_was(kind, tmp_path, tiny_artifact):
    text, says = BROKEN_STATES[kind]
    (tmp_path / "st").mkdir()
    (tmp_path / "st" / "state.json").write_text(text)
    before = snapshot(tmp_path)
    done = run_script(
        "sentio", "live", "--model", str(tiny_artifact), *FEED, "--state", "st", cwd=tmp_path
    )
    assert_refused(done, *says)
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("kind", ["garbage", "json-list", "empty"])
def test_status_of_a_broken_state_is_refused(kind, tmp_path):
    text, says = BROKEN_STATES[kind]
    (tmp_path / "st").mkdir()
    (tmp_path / "st" / "state.json").write_text(text)
    before = snapshot(tmp_path)
    done = run_script("sentio", "live", "status", "--state", "st", cwd=tmp_path)
    assert_refused(done, *says)
    assert snapshot(tmp_path) == before


def test_status_of_a_foreign_json_object_is_refused(tmp_path):
    (tmp_path / "st").mkdir()
    (tmp_path / "st" / "state.json").write_text('{"book": 1}')
    done = run_script("sentio", "live", "status", "--state", "st", cwd=tmp_path)
    assert_refused(done, "state.json")


STATUS = [
    Case("status-no-state", ["--state", "{tmp}/empty"], ["--state", "no live state"]),
    Case("status-missing-folder", ["--state", "{tmp}/nope"], ["--state", "nope"]),
    Case("status-a-file", ["--state", "{tmp}/notes.txt"], ["--state", "notes.txt"]),
    Case("status-no-flag", [], ["--state"]),
    Case("status-twice", ["--state", "{tmp}/empty", "--state", "{tmp}/empty"], ["--state"]),
    Case("status-unknown-flag", ["--state", "{tmp}/empty", "--bogus"], ["--bogus"]),
    Case("status-sencli", ["--state", "{tmp}/empty"], ["--state"], script="sencli"),
]


@pytest.mark.parametrize("case", STATUS, ids=lambda c: c.id)
def test_status_without_a_state_is_refused(case, tmp_path, inputs):
    before = snapshot(tmp_path)
    done = run_script(case.script, "live", "status", *substitute(case.args, inputs), cwd=tmp_path)
    assert_refused(done, *case.says)
    assert snapshot(tmp_path) == before


# Another run's state: the model or a setting the saved state was made with differs.
OTHER_SETTINGS = {
    "capital": ["--capital", "50000"],
    "rule": ["--rule", "bands"],
    "daily-loss": ["--max-daily-loss", "3"],
}


@pytest.mark.parametrize("kind", ["ended", "killed"])
def test_a_state_of_another_model_is_refused(kind, tmp_path, earlier, retrained_artifact):
    state = state_copy(earlier, kind, tmp_path)
    before = snapshot(tmp_path)
    done = run_script("sentio", "live", *live_args_for(retrained_artifact, state), cwd=tmp_path)
    assert_refused(done, "state.json", "--allow-model-change")
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("kind", ["ended", "killed"])
@pytest.mark.parametrize("setting", sorted(OTHER_SETTINGS))
def test_a_state_of_other_settings_is_refused(kind, setting, tmp_path, earlier, tiny_artifact):
    state = state_copy(earlier, kind, tmp_path)
    before = snapshot(tmp_path)
    more = OTHER_SETTINGS[setting]
    done = run_script("sentio", "live", *live_args_for(tiny_artifact, state, *more), cwd=tmp_path)
    assert_refused(done, "state.json", "other settings")
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("kind", ["ended", "killed"])
def test_a_state_goes_on_with_other_settings_when_allowed(kind, tmp_path, earlier, tiny_artifact):
    state = state_copy(earlier, kind, tmp_path)
    more = [*OTHER_SETTINGS["capital"], "--allow-model-change"]
    done = run_script("sentio", "live", *live_args_for(tiny_artifact, state, *more), cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    doc = json.loads((state / "state.json").read_text())
    saved = json.loads((earlier[kind] / "state.json").read_text())
    # other settings go on as a new run (never inside the old run's audit chain)
    assert doc["ended"] and doc["counts"].get("restarts", 0) == 0
    assert doc["run_id"] != saved["run_id"]


def test_a_killed_state_without_fills_resumes_with_the_same_flags(tmp_path, earlier, tiny_artifact):
    state = state_copy(earlier, "killed", tmp_path)
    assert json.loads((state / "state.json").read_text())["ledger"]["fills"] == 0
    done = run_script("sentio", "live", *live_args_for(tiny_artifact, state), cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]


@pytest.mark.parametrize("kind", ["ended", "killed"])
def test_a_state_goes_on_with_another_model_when_allowed(
    kind, tmp_path, earlier, retrained_artifact
):
    state = state_copy(earlier, kind, tmp_path)
    more = ["--allow-model-change"]
    done = run_script(
        "sentio", "live", *live_args_for(retrained_artifact, state, *more), cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr[-2000:]


def test_a_refused_run_leaves_an_existing_audit_store_unchanged_before_it_opens(
    tmp_path, earlier, tiny_artifact
):
    """Refusals in the flags leave the store alone (the store is not yet opened)."""
    audit = Path(shutil.copy2(earlier["audit"], tmp_path / "a.db"))
    before = snapshot(tmp_path)
    done = run_script(
        "sentio",
        "live",
        *["--model", str(tiny_artifact), *FEED, "--audit", str(audit), "--rule", "x"],
        cwd=tmp_path,
    )
    assert_refused(done, "--rule")
    assert snapshot(tmp_path) == before


def test_a_refused_state_leaves_an_existing_audit_store_unchanged(
    tmp_path, earlier, retrained_artifact
):
    audit = Path(shutil.copy2(earlier["audit"], tmp_path / "a.db"))
    state = state_copy(earlier, "ended", tmp_path)
    before = snapshot(tmp_path)
    more = ["--audit", str(audit)]
    done = run_script(
        "sentio", "live", *live_args_for(retrained_artifact, state, *more), cwd=tmp_path
    )
    assert_refused(done, "--allow-model-change")
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("flag", ["--state", "--audit"])
def test_an_output_inside_the_model_is_refused(flag, tmp_path, tiny_artifact):
    art = Path(shutil.copytree(tiny_artifact, tmp_path / "art"))
    before = snapshot(art)
    target = str(art) if flag == "--state" else str(art / "a.db")
    done = run_script("sentio", "live", "--model", str(art), *FEED, flag, target, cwd=tmp_path)
    assert_refused(done, flag)
    assert snapshot(art) == before
