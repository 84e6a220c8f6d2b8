"""Bad invocations of ``strattest`` through the real ``sentio`` and ``sencli`` scripts: each is
refused with exit 2 and one line naming the flag (or file) and the rule, before any work, and
nothing is written where it must not be.

Flag cases run against a stand-in artifact directory (a manifest.json and nothing else): the
flags are checked before the model is read, so if one of them got past the checks the run would
fail later on that directory with another message, and the test would fail.
"""

from __future__ import annotations

import contextlib
import hashlib
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.cli.badinput import Case, assert_refused, run_script

SPREADS = ["--half-spread-bp", "QQQ=1", "--half-spread-bp", "TQQQ=1", "--half-spread-bp", "PSQ=1"]

FLAG_CASES = [
    Case("rule-typo", ["--rule", "fited"], ["--rule", "fited", "fitted, adaptive, bands"]),
    Case("fill-typo", ["--fill", "clos"], ["--fill", "clos", "next-open, close"]),
    Case("mode-unknown", ["--mode", "live"], ["--mode", "historical, simulation"]),
    Case("strategy-unknown", ["--rule", "bands"], ["STRATEGY", "only tfa"]),
    Case("spread-no-value", ["--half-spread-bp", "QQQ"], ["--half-spread-bp", "SYMBOL=BP"]),
    Case(
        "spread-not-number",
        [*SPREADS, "--half-spread-bp", "SQQQ=wide"],
        ["--half-spread-bp", "number"],
    ),
    Case(
        "spread-nan", [*SPREADS, "--half-spread-bp", "SQQQ=nan"], ["--half-spread-bp", "between 0"]
    ),
    Case(
        "spread-negative",
        [*SPREADS, "--half-spread-bp", "SQQQ=-1"],
        ["--half-spread-bp", "between 0"],
    ),
    Case("spread-unknown-symbol", ["--half-spread-bp", "SPY=1"], ["--half-spread-bp", "SPY"]),
    Case("spread-twice", [*SPREADS, "--half-spread-bp", "QQQ=2"], ["--half-spread-bp", "twice"]),
    Case("spread-incomplete", SPREADS, ["--half-spread-bp", "missing SQQQ"]),
    Case("capital-negative", ["--capital", "-5"], ["--capital", "greater than or equal to 100"]),
    Case("capital-infinite", ["--capital", "inf"], ["--capital", "finite"]),
    # round 2: 1e-300 ran a block with no fill and exit 0; $100 is the documented floor
    Case("capital-tiny", ["--capital", "1e-300"], ["--capital", "greater than or equal to 100"]),
    Case("capital-huge", ["--capital", "1e308"], ["--capital", "less than or equal to"]),
    Case("capital-not-number", ["--capital", "lots"], ["--capital"]),
    Case("blocks-zero", ["--blocks", "0"], ["--blocks", "greater than or equal to 1"]),
    Case("block-size-one", ["--block-size", "1"], ["--block-size", "2"]),
    Case("seed-negative", ["--seed", "-1"], ["--seed"]),
    Case("commission-negative", ["--commission-per-share", "-0.01"], ["--commission-per-share"]),
    Case("commission-min-nan", ["--commission-min", "nan"], ["--commission-min", "finite"]),
    Case("sec-fee-negative", ["--sec-fee-per-million", "-1"], ["--sec-fee-per-million"]),
    Case("taf-negative", ["--taf-per-share", "-1"], ["--taf-per-share"]),
    # round 2: each cost at 1e308 gave fees of -inf and a return of inf with exit 0; the
    # bounds are docs/backtest.md's ($1/share, $1,000 per order, $10,000 per $1M, $1/share)
    Case(
        "commission-huge",
        ["--commission-per-share", "1e308"],
        ["--commission-per-share", "less than or equal to 1"],
    ),
    Case(
        "commission-min-huge",
        ["--commission-min", "1001"],
        ["--commission-min", "less than or equal to 1000"],
    ),
    Case(
        "sec-fee-huge",
        ["--sec-fee-per-million", "1e308"],
        ["--sec-fee-per-million", "less than or equal to 10000"],
    ),
    Case("taf-huge", ["--taf-per-share", "1.5"], ["--taf-per-share", "less than or equal to 1"]),
    Case(
        "spread-huge",
        [*SPREADS, "--half-spread-bp", "SQQQ=1e308"],
        ["--half-spread-bp", "between 0 and 1000"],
    ),
    Case("model-missing", ["--model", "{tmp}/nope"], ["--model", "does not exist"]),
    Case("model-a-file", ["--model", "{tmp}/model/manifest.json"], ["--model", "not a directory"]),
    Case("model-no-manifest", ["--model", "{tmp}"], ["--model", "no manifest.json"]),
    Case("data-missing", ["--data", "{tmp}/nope.parquet"], ["--data", "does not exist"]),
    Case("data-a-directory", ["--data", "{tmp}"], ["--data", "not a file"]),
    Case(
        "data-builtin-and-file",
        ["--data", "builtin", "--data", "{tmp}/bars.parquet"],
        ["--data", "builtin"],
    ),
    Case("tracks-in-historical", ["--tracks", "2"], ["--tracks", "simulation only"]),
    Case("regime-in-historical", ["--regime", "bull"], ["--regime", "simulation only"]),
    Case(
        "data-in-simulation",
        ["--mode", "simulation", "--data", "{tmp}/bars.parquet"],
        ["--data", "historical only"],
    ),
    Case(
        "out-in-simulation",
        ["--mode", "simulation", "--out", "{tmp}/o"],
        ["--out", "historical only"],
    ),
    Case(
        "audit-in-simulation",
        ["--mode", "simulation", "--audit", "{tmp}/a.db"],
        ["--audit", "historical only"],
    ),
    Case(
        "in-sample-in-simulation",
        ["--mode", "simulation", "--allow-in-sample"],
        ["--allow-in-sample", "historical only"],
    ),
    Case("regime-unknown", ["--mode", "simulation", "--regime", "crash"], ["--regime", "crash"]),
    Case("tracks-zero", ["--mode", "simulation", "--tracks", "0"], ["--tracks", "between 1"]),
    Case(
        "simulation-too-big",
        ["--mode", "simulation", "--blocks", "100000", "--block-size", "100000"],
        ["--blocks", "at most"],
    ),
    Case("rule-typo-sencli", ["--rule", "fited"], ["--rule", "fited"], script="sencli"),
    Case("capital-sencli", ["--capital", "-5"], ["--capital", "-5"], script="sencli"),
]


@pytest.fixture
def stand_in(tmp_path) -> Path:
    """A directory that passes the --model check (it has a manifest.json) but is no model."""
    model = tmp_path / "model"
    model.mkdir()
    (model / "manifest.json").write_text("{}")
    (tmp_path / "bars.parquet").write_bytes(b"not read: the flags fail first")
    return model


@pytest.mark.parametrize("case", FLAG_CASES, ids=lambda c: c.id)
def test_a_bad_flag_is_refused_before_any_work(case, tmp_path, stand_in):
    args = [a.replace("{tmp}", str(tmp_path)) for a in case.args]
    strategy = "momentum" if case.id == "strategy-unknown" else "tfa"
    if not any(a == "--model" for a in args):
        args = ["--model", str(stand_in), *args]
    done = run_script(case.script, "strattest", strategy, *args, cwd=tmp_path)
    assert_refused(done, *case.says)
    assert not (tmp_path / "o").exists() and not (tmp_path / "a.db").exists()


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def artifact(tmp_path, tiny_artifact) -> Path:
    """A private copy of the tiny artifact (so that a wrongly accepted --out cannot damage
    the session's one)."""
    return Path(shutil.copytree(tiny_artifact, tmp_path / "art"))


OUT_CASES = [
    ("out-is-the-model", ["--out", "{art}"], "--out"),
    ("out-is-a-model-file", ["--out", "{art}/model.onnx"], "--out"),
    ("out-is-the-data", ["--data", "{tmp}/q.parquet", "--out", "{tmp}/q.parquet"], "--out"),
    ("out-holds-the-data", ["--data", "{tmp}/d/bars.parquet", "--out", "{tmp}/d"], "--out"),
    ("out-holds-the-audit", ["--audit", "{tmp}/d/summary.json", "--out", "{tmp}/d"], "--out"),
    ("audit-is-the-data", ["--data", "{tmp}/q.parquet", "--audit", "{tmp}/q.parquet"], "--audit"),
]


@pytest.mark.parametrize(("name", "args", "flag"), OUT_CASES, ids=[c[0] for c in OUT_CASES])
def test_an_output_that_is_an_input_is_refused_and_the_input_kept(
    tmp_path, artifact, name, args, flag
):
    (tmp_path / "d").mkdir()
    inputs = [tmp_path / "q.parquet", tmp_path / "d" / "bars.parquet", tmp_path / "d/summary.json"]
    for path in inputs:
        path.write_bytes(b"an input of the run: " + path.name.encode())
    inputs += sorted(artifact.iterdir())
    before = {p: digest(p) for p in inputs}
    args = [a.replace("{art}", str(artifact)).replace("{tmp}", str(tmp_path)) for a in args]
    done = run_script("sentio", "strattest", "tfa", "--model", str(artifact), *args, cwd=tmp_path)
    assert_refused(done, flag, "same file as the input")
    assert {p: digest(p) for p in inputs} == before
    assert sorted(artifact.iterdir()) == sorted(p for p in inputs if p.parent == artifact)


def test_out_into_a_read_only_directory_is_refused_before_the_run(tmp_path, artifact):
    source, mount = tmp_path / "src", tmp_path / "ro"
    source.mkdir()
    mount.mkdir()
    done = subprocess.run(["mount", "--bind", "-o", "ro", source, mount], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot make a read-only bind mount here: {done.stderr!r}")
    try:
        for flag in ("--out", "--audit"):
            target = mount / ("runs" if flag == "--out" else "a.db")
            done = run_script(
                "sentio", "strattest", "tfa", "--model", str(artifact), flag, str(target)
            )
            assert_refused(done, flag, "cannot write into", str(mount))
    finally:
        with contextlib.suppress(Exception):
            subprocess.run(["umount", str(mount)], check=True)
    assert list(source.iterdir()) == []


def test_no_model_or_data_flag_names_the_chosen_ones_and_the_flags(tmp_path, artifact):
    empty = run_script("sentio", "strattest", "tfa", cwd=tmp_path)
    assert_refused(empty, "no artifact under artifacts/TFA", "--model")
    chosen = tmp_path / "artifacts" / "TFA" / "v1"
    shutil.copytree(artifact, chosen)
    # the tiny model's built-in market has 783 bars after its validation end (12 sessions,
    # tests/conftest.tiny_run), fewer than one block of 1,000
    done = run_script("sentio", "strattest", "tfa", "--block-size", "1000", cwd=tmp_path)
    message = assert_refused(done, "bars lie outside the model's data")
    for words in (
        "model artifacts/TFA/v1",
        "newest artifact under artifacts/TFA, as no --model was given",
        "data builtin",
        "built-in market",
        "--data",
        "--allow-in-sample",
        "New York",
    ):
        assert words in message, (words, message)


def test_capital_that_cannot_buy_one_share_is_refused(tmp_path, artifact):
    """$100 passes the floor, but the tiny model's built-in market starts QQQ at $400
    (SynthConfig.start_price) and 12 sessions do not take it below $100: no share could ever
    be bought, so the run would report a flat strategy as a result (round 2: exit 0)."""
    done = run_script(
        "sentio", "strattest", "tfa", "--model", str(artifact), "--capital", "100", cwd=tmp_path
    )
    message = assert_refused(done, "--capital", "$100 cannot buy one share of QQQ")
    assert "give at least" in message and str(artifact) in message
