"""Runs the ``tests/runs`` tests read: one real audited strattest of the tiny artifact through
the console script (``--out`` folder, audit database and its ``--json`` document), built once
per process and shared by the test modules, and small walk-forward and sweep documents with
planted numbers in the layout those commands write (a real walk-forward run trains a model
per fold: too slow for these tests; tests/backtest/test_walkforward.py runs real ones)."""

from __future__ import annotations

import json
from pathlib import Path

from tests.cli.badinput import run_script

_BUILT: dict[str, tuple[Path, dict]] = {}


def strattest_run(tmp_path_factory, artifact: Path) -> tuple[Path, dict]:
    """A folder holding ``st/`` (strattest --out) and ``audit.db`` (the same run, audited),
    and the run's ``--json`` document. Built once per process."""
    if str(artifact) not in _BUILT:
        root = tmp_path_factory.mktemp("runs")
        done = run_script(
            "sentio",
            "strattest",
            "--model",
            str(artifact),
            "--blocks",
            "2",
            "--rule",
            "adaptive",
            "--no-cache",
            "--out",
            str(root / "st"),
            "--audit",
            str(root / "audit.db"),
            "--json",
            cwd=root,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        _BUILT[str(artifact)] = (root, json.loads(done.stdout))
    return _BUILT[str(artifact)]


def _summary(mean: float, low: float, high: float, blocks: int) -> dict:
    return {
        "blocks": blocks,
        "mean_rpb_pct": mean,
        "rpb_ci95_pct": [low, high],
        "sharpe": None,
        "trades": 7,
    }


def walkforward_doc() -> dict:
    """walkforward.json of a 2-fold run, numbers planted."""
    fold = {
        "active": "folds/000/model",
        "buy_and_hold_return_pct": 0.25,
        "candidate_manifest_sha256": "a" * 64,
        "fold": 0,
        "oos": {"auc": 0.53, "auc_ci95": [0.5, 0.56], "log_loss": 0.69, "samples": 900},
        "promoted": True,
        "return_pct": -0.4,
        "single_return_pct": -0.4,
        "validation_auc": 0.55,
    }
    second = fold | {
        "fold": 1,
        "candidate_manifest_sha256": "b" * 64,
        "promoted": False,
        "return_pct": 0.1,
        "oos": {"auc": 0.47},
        "validation_auc": 0.51,
    }
    return {
        "mode": "walk-forward",
        "config": {"policy": {"train_window": 8, "retrain_every": 3}, "train": {"seed": 3}},
        "folds": [fold, second],
        "sessions": 6,
        "summary": {
            "walk_forward": _summary(-0.15, -0.5, 0.2, 6),
            "single_model": _summary(-0.3, -0.6, 0.0, 6),
            "buy_and_hold_qqq": _summary(0.25, -0.1, 0.6, 6),
        },
        "costs": {"walk_forward": {"fills": 40, "spread": 12.5}},
        "out_of_sample": {"walk_forward": {"auc": 0.51, "auc_ci95": [0.49, 0.53]}},
        "verdict": {"kind": "no edge", "mean_pct": -0.15, "ci95_pct": [-0.5, 0.2], "count": 6},
    }


def sweep_doc() -> dict:
    """sweep.json of a 2-variant sweep, numbers planted."""
    return {
        "mode": "sweep",
        "grid": {"fixed": {"preset": "quick"}, "grid": {"horizon": [1, 5]}},
        "variants_tried": 2,
        "sessions": {"count": 13},
        "ranked": [{"variant": 1, "oos_auc": 0.52, "mean_session_return_pct": 0.05}],
        "best": {
            "variant": 1,
            "mean_session_return_pct": 0.05,
            "session_return_ci95_pct": [-0.1, 0.2],
            "session_return_ci_bonferroni_pct": [-0.2, 0.3],
        },
        "verdict": {"kind": "no edge", "mean_pct": 0.05, "ci95_pct": [-0.1, 0.2], "count": 13},
    }


def write_json(path: Path, doc: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc))
    return path
