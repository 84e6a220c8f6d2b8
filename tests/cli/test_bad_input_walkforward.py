"""Bad invocations of ``strattest --mode walk-forward`` through the real ``sentio`` script:
each is refused with exit 2 and one line naming the flag and the rule, before any training, and
the run folder is not created.

The oracle of each case is the flag's documented meaning (``sentio strattest --help``,
docs/walkforward.md): spans are whole sessions (``5`` or ``5d``), walk-forward's own flags
belong to that mode only, and a walk-forward run trains its own models (no --model, no blocks).
"""

from __future__ import annotations

import pytest

from tests.cli.badinput import Case, assert_refused, run_script

WALK = ["strattest", "tfa", "--mode", "walk-forward"]
OUT = ["--out", "{tmp}/run"]

CASES = [
    Case("window-zero", [*WALK, *OUT, "--train-window", "0"], ["--train-window", "at least 1"]),
    Case("window-weeks", [*WALK, *OUT, "--train-window", "2w"], ["--train-window", "5d"]),
    Case("every-text", [*WALK, *OUT, "--retrain-every", "often"], ["--retrain-every", "often"]),
    Case("shadow-zero", [*WALK, *OUT, "--shadow-sessions", "0"], ["--shadow-sessions"]),
    Case("margin-negative", [*WALK, *OUT, "--gate-margin", "-1"], ["--gate-margin"]),
    Case("margin-nan", [*WALK, *OUT, "--gate-margin", "nan"], ["--gate-margin"]),
    Case("preset-unknown", [*WALK, *OUT, "--preset", "huge"], ["--preset", "huge"]),
    Case("epochs-zero", [*WALK, *OUT, "--epochs", "0"], ["--epochs"]),
    Case("lr-zero", [*WALK, *OUT, "--learning-rate", "0"], ["--learning-rate"]),
    Case("days-zero", [*WALK, *OUT, "--builtin-days", "0"], ["--builtin-days"]),
    Case("flip-negative", [*WALK, *OUT, "--signal-flip-every", "-2"], ["--signal-flip-every"]),
    Case("strength-one", [*WALK, *OUT, "--signal-strength", "1"], ["--signal-strength"]),
    Case("horizon-negative", [*WALK, *OUT, "--horizon", "-2"], ["--horizon", "1 to 10,000"]),
    Case("deadzone-nan", [*WALK, *OUT, "--label-deadzone-bp", "nan"], ["--label-deadzone-bp"]),
    Case("seed-big", [*WALK, *OUT, "--seed", str(2**40)], ["--seed", "2**31"]),
    Case("no-out", WALK, ["--out", "run folder"]),
    Case("model-given", [*WALK, *OUT, "--model", "{tmp}"], ["--model", "walk-forward"]),
    Case("blocks-given", [*WALK, *OUT, "--blocks", "3"], ["--blocks", "walk-forward"]),
    Case("block-size-given", [*WALK, *OUT, "--block-size", "390"], ["--block-size"]),
    Case("tracks-given", [*WALK, *OUT, "--tracks", "2"], ["--tracks", "walk-forward"]),
    Case("in-sample", [*WALK, *OUT, "--allow-in-sample"], ["--allow-in-sample"]),
    Case("backend-unknown", [*WALK, *OUT, "--backend", "spark"], ["--backend", "local or ray"]),
    Case("address-without-ray", [*WALK, *OUT, "--ray-address", "127.0.0.1:1"], ["--ray-address"]),
    Case("window-in-historical", ["strattest", "tfa", "--train-window", "5"], ["--train-window"]),
    Case(
        "warm-in-simulation",
        ["strattest", "tfa", "--mode", "simulation", "--warm-start"],
        ["--warm-start", "walk-forward only"],
    ),  # fmt: skip
    Case(
        "deadzone-in-historical",
        ["strattest", "tfa", "--label-deadzone-bp", "2"],
        ["--label-deadzone-bp"],
    ),  # fmt: skip
    Case("backend-in-historical", ["strattest", "tfa", "--backend", "ray"], ["--backend"]),
    Case("data-missing", [*WALK, *OUT, "--data", "{tmp}/nope.parquet"], ["--data", "nope"]),
    Case(
        "out-is-data",
        [*WALK, "--data", "{tmp}/bars.parquet", "--out", "{tmp}/bars.parquet"],
        ["--out"],
    ),  # fmt: skip
    Case(
        "window-too-long",
        [*WALK, *OUT, "--builtin-days", "20", "--train-window", "30"],
        ["sessions", "needs at least"],
    ),  # fmt: skip
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_refused(case, tmp_path):
    (tmp_path / "bars.parquet").write_bytes(b"not parquet")
    args = [a.replace("{tmp}", str(tmp_path)) for a in case.args]
    done = run_script(case.script, *args, cwd=tmp_path)
    assert_refused(done, *case.says)
    assert not (tmp_path / "run").exists()
