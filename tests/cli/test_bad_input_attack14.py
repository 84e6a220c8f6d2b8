"""Cases found by a bad-input run over issue 14's commands (about 460 invocations of
``strattest --mode walk-forward``, ``sweep``, ``train --enable-realtime`` and ``saudit``), each
refused in one line naming the flag, file or key, with nothing written; and the documented
one-file-per-symbol layout, which walk-forward could not train on.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli.badinput import assert_refused, run_script

WALK = ["strattest", "tfa", "--mode", "walk-forward"]
TINY = [
    "--train-window", "5d", "--retrain-every", "3d", "--shadow-sessions", "1", "--epochs", "1",
    "--sequence-length", "16", "--d-model", "16", "--nhead", "2", "--num-layers", "1",
    "--horizon", "1", "--label-deadzone-bp", "0", "--feature-spec", "intraday_default",
]  # fmt: skip


@pytest.fixture(scope="module")
def market(tmp_path_factory) -> Path:
    """A built-in market written one file per symbol (`sentio data synth`), 24 sessions."""
    folder = tmp_path_factory.mktemp("attack14") / "m"
    done = run_script("sentio", "data", "synth", "--out", str(folder), "--days", "24")
    assert done.returncode == 0, done.stderr
    return folder


def test_walk_forward_trains_on_one_file_per_symbol(market, tmp_path):
    pytest.importorskip("torch", reason="torch is a train extra")
    files = [
        a for s in ("QQQ", "TQQQ", "PSQ", "SQQQ") for a in ("--data", str(market / f"{s}.parquet"))
    ]
    done = run_script("sentio", *WALK, *TINY, *files, "--out", str(tmp_path / "run"), "--json")
    assert done.returncode == 0, done.stderr[-2000:]
    document = json.loads(done.stdout)
    assert document["simulated"] == {"QQQ": True, "TQQQ": True, "PSQ": True, "SQQQ": True}
    assert len(document["folds"]) >= 2


def cases(market: Path, tmp: Path) -> list[tuple[list[str], list[str], Path | None]]:
    """(arguments, words of the message, a path that must not exist afterwards)."""
    qqq = str(market / "QQQ.parquet")
    (tmp / "policy.yaml").write_text("train_window: 5\n")
    (tmp / "policy.toml").write_text("train_window = 5\nshadow_sessions = 1\n")
    (tmp / "grid.toml").mkdir()
    (tmp / "cuda.toml").write_text('train_window = 5\nshadow_sessions = 1\ndevice = "cuda"\n')
    (tmp / "spans.json").write_text(json.dumps({"fixed": {}, "grid": {"train_window": [5, "5d"]}}))
    (tmp / "file-grid.toml").write_text(
        f'[fixed]\ndata = "{qqq}"\nbuiltin_days = 30\n\n[grid]\nseed = [7, 8]\n'
    )
    realtime = ["train", "--enable-realtime", "--policy", str(tmp / "policy.toml"),
                "--bars", str(tmp / "store"), "--registry", str(tmp / "reg")]  # fmt: skip
    return [
        (["strattest", "tfa", "--ray-address", "127.0.0.1:1"], ["--ray-address"], None),
        (
            [
                *WALK,
                *TINY,
                "--data",
                qqq,
                "--backend",
                "ray",
                "--ray-address",
                "not an address",
                "--out",
                str(tmp / "o1"),
            ],
            ["--ray-address"],
            tmp / "o1",
        ),  # fmt: skip
        (
            [
                *WALK,
                *TINY,
                "--data",
                qqq,
                "--builtin-days",
                "5",
                "--out",
                str(tmp / "o2"),
                "--audit",
                str(tmp / "new.db"),
            ],
            ["--builtin-days"],
            tmp / "new.db",
        ),  # fmt: skip
        ([*realtime, "--poll", "inf"], ["--poll"], tmp / "reg"),
        (
            [*realtime[:3], str(tmp / "policy.yaml"), *realtime[4:], "--once"],
            ["--policy", ".yaml"],
            tmp / "reg",
        ),  # fmt: skip
        (
            [*realtime, "--history", qqq, "--history", qqq, "--once"],
            ["--history", "twice"],
            tmp / "reg",
        ),  # fmt: skip
        (
            [*realtime, "--history", str(market / "TQQQ.parquet"), "--once"],
            ["--history", "no QQQ"],
            tmp / "reg",
        ),  # fmt: skip
        (
            ["sweep", "--grid", str(tmp / "grid.toml"), "--out", str(tmp / "s1")],
            ["--grid", "not a regular file"],
            tmp / "s1",
        ),  # fmt: skip
        (
            ["sweep", "--grid", str(tmp / "file-grid.toml"), "--out", str(tmp / "s2")],
            ["--grid", "fixed.builtin_days"],
            tmp / "s2",
        ),  # fmt: skip
    ]


def test_refused_in_one_line_and_nothing_written(market, tmp_path):
    for args, says, absent in cases(market, tmp_path):
        done = run_script("sentio", *args, cwd=tmp_path)
        assert_refused(done, *says)
        if absent is not None:
            assert not absent.exists(), (args, absent)
