"""Review of issue 14 (walk-forward, its audit, Ray and sweeps): each test marked FIXED was a
strict xfail, a bug the review found, and passes since its fix; the plain tests beside them show
that the forger used here is caught where the verifier does its job.

The forger rewrites a whole chain the way a thorough one would: every payload it changes, every
later hash, run_end's event count and last hash, the runs table's head and config copy, and, when
it removes a bar, the run_end strategy figures replayed from the forged events (``Replay``'s own
``evaluate_run``). Recipes are tiny (30 built-in sessions, 1-layer networks, 1-2 epochs).
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import pytest

pytest.importorskip("torch", reason="torch is a train extra")

from sentio.audit import AuditStore, audited_walkforward, verify_run  # noqa: E402
from sentio.audit.store import chain_hash, genesis  # noqa: E402
from sentio.audit.verify import Mismatch, Replay  # noqa: E402
from sentio.backtest.strattest import StrattestConfig  # noqa: E402
from sentio.backtest.walkforward import WalkForwardConfig, run_walkforward  # noqa: E402
from sentio.core.errors import OptionError, SentioError  # noqa: E402
from tests.backtest.test_walkforward import recipe  # noqa: E402
from tests.cli.badinput import run_script  # noqa: E402

TINY = [
    "--builtin-days", "30", "--signal-strength", "0.3", "--train-window", "5",
    "--retrain-every", "3d", "--shadow-sessions", "1", "--epochs", "1", "--sequence-length", "16",
    "--d-model", "16", "--nhead", "2", "--num-layers", "1", "--horizon", "1",
    "--label-deadzone-bp", "0", "--feature-spec", "intraday_default",
]  # fmt: skip
WALK = ["strattest", "tfa", "--mode", "walk-forward"]


# ---------------------------------------------------------------- the forger


def chain(db: Path) -> list[list]:
    """[ts, kind, payload text] of every event, in seq order."""
    with sqlite3.connect(db) as con:
        return [
            [ts, kind, payload]
            for ts, kind, payload in con.execute(
                "SELECT ts, kind, payload FROM events ORDER BY seq"
            )
        ]


def rows(db: Path) -> list[tuple]:
    with sqlite3.connect(db) as con:
        return con.execute(
            "SELECT seq, ts, kind, payload, prev_hash, hash FROM events ORDER BY seq"
        ).fetchall()


def dump(doc: dict) -> str:
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def rebuild(db: Path, events: list[list]) -> None:
    """Write ``events`` as the run's whole chain, renumbered and rehashed."""
    with sqlite3.connect(db) as con:
        (run_id,) = con.execute("SELECT run_id FROM runs").fetchone()
        prev, out = genesis(run_id), []
        for seq, (ts, kind, payload) in enumerate(events):
            if kind == "run_end":
                payload = dump(json.loads(payload) | {"events": seq + 1, "last_hash": prev})
            digest = chain_hash(prev, kind, ts, payload)
            out.append((run_id, seq, ts, kind, payload, prev, digest))
            prev = digest
        con.execute("DELETE FROM events")
        con.executemany("INSERT INTO events VALUES (?, ?, ?, ?, ?, ?, ?)", out)
        con.execute("UPDATE runs SET head = ?, config = ?", (prev, out[0][4]))


def edit(events: list[list], index: int, change) -> None:
    doc = json.loads(events[index][2])
    change(doc)
    events[index][2] = dump(doc)


def resummarize(db: Path) -> None:
    """Put the strategy figures the replay computes from the (forged) events into run_end."""
    replay = Replay(rows(db))
    try:
        replay.run()
    except Mismatch as bad:
        assert "strategy" in bad.what, bad.what  # only the figures may disagree
    assert replay.summary is not None
    events = chain(db)
    edit(events, len(events) - 1, lambda d: d["summary"].__setitem__("strategy", replay.summary))
    rebuild(db, events)


def last_bar(events: list[list], before: int | None = None) -> int:
    """Index of the last bar event (before index ``before``): flat, no order or fill at its ts."""
    stop = len(events) if before is None else before
    index = max(i for i in range(stop) if events[i][1] == "bar")
    ts = events[index][0]
    assert not any(e[0] == ts and e[1] in ("order", "fill") for e in events)
    assert set(json.loads(events[index][2])["positions"].values()) == {0}
    return index


def nudge_p(events: list[list], index: int) -> None:
    """Change a bar's probability on both paths alike (diff stays 0): its decision, a flat
    session_end, does not depend on it."""

    def change(doc):
        assert doc["reason"] == "session_end", doc["reason"]
        doc["p_seq"] = doc["p_stream"] = doc["p_seq"] + 1e-6

    edit(events, index, change)


def drop_bar(db: Path, events: list[list], index: int, figures: bool = True) -> None:
    """Remove the bar at ``index``, lower its block_start's bar count (a walk-forward run's
    block_start carries one), and (``figures``) replay the figures into run_end."""
    block = json.loads(events[index][2])["block"]
    start = max(
        i
        for i in range(index)
        if events[i][1] == "block_start" and json.loads(events[i][2])["block"] == block
    )
    if "bars" in json.loads(events[start][2]):
        edit(events, start, lambda d: d.__setitem__("bars", d["bars"] - 1))
    del events[index]
    rebuild(db, events)
    if figures:
        resummarize(db)


def verdict_of(db: Path):
    store = AuditStore(db)
    try:
        return verify_run(store, full=True)
    finally:
        store.close()


# ---------------------------------------------------------------- a walk-forward audit


@pytest.fixture(scope="module")
def walk_db(tmp_path_factory):
    """An audited walk-forward run on 30 built-in sessions whose signal flips every 8: 5 folds,
    13 traded sessions, 3 swaps; it verifies untouched."""
    tmp = tmp_path_factory.mktemp("review14")
    result = run_walkforward(recipe(0.3, 8, days=30), tmp / "run")
    db = tmp / "audit.db"
    store = AuditStore(db)
    try:
        audited_walkforward(result, store)
        assert verify_run(store, full=True).exit_code == 0
    finally:
        store.close()
    kinds = [kind for _, kind, _ in chain(db)]
    assert "swap" in kinds and kinds.index("swap") < len(kinds) - 500  # sessions after a swap
    return db


def forged(walk_db: Path, tmp_path: Path, forge) -> Path:
    db = tmp_path / "forged.db"
    shutil.copyfile(walk_db, db)
    events = chain(db)
    forge(db, events)
    return db


def test_a_forged_probability_before_the_first_swap_is_caught(walk_db, tmp_path):
    """The forger is sound: the same edit on a bar the run_start model decided fails."""

    def forge(db, events):
        first_swap = next(i for i, e in enumerate(events) if e[1] == "swap")
        nudge_p(events, last_bar(events, before=first_swap))
        rebuild(db, events)

    verdict = verdict_of(forged(walk_db, tmp_path, forge))
    assert not verdict.ok and "p(stream) recorded as" in verdict.problem


@pytest.fixture
def p_after_swap(walk_db, tmp_path):
    def forge(db, events):
        nudge_p(events, last_bar(events))  # the last session: a swapped-in model decided it
        rebuild(db, events)

    return forged(walk_db, tmp_path, forge)


# FIXED (review): saudit verify --full re-runs only the run_start model's bars; the probabilities
# (and closes) of every bar after the first swap are checked against nothing
def test_a_forged_probability_after_a_swap_is_caught(p_after_swap):
    verdict = verdict_of(p_after_swap)
    assert not verdict.ok, "a changed p(seq)/p(stream) after a swap verified"


@pytest.fixture
def swap_to_another_model(walk_db, tmp_path):
    def forge(db, events):
        index = next(i for i, e in enumerate(events) if e[1] == "swap")
        edit(events, index, lambda d: d.update(to="/nowhere/model", to_manifest="0" * 64))
        rebuild(db, events)

    return forged(walk_db, tmp_path, forge)


# FIXED (review): a swap's to/to_manifest and thresholds are never compared with an artifact: a
# swap naming a model that does not exist verifies with exit 0
def test_a_swap_to_a_model_that_does_not_exist_does_not_verify_clean(swap_to_another_model):
    verdict = verdict_of(swap_to_another_model)
    assert verdict.exit_code != 0, "a swap to manifest 000... verified clean"


@pytest.fixture
def walk_bar_dropped(walk_db, tmp_path):
    def forge(db, events):
        drop_bar(db, events, last_bar(events))

    return forged(walk_db, tmp_path, forge)


# FIXED (review): a walk-forward block's bar count is whatever its own block_start says: a session
# with a bar removed (block_start edited, figures replayed) verifies
def test_a_session_with_a_bar_removed_does_not_verify(walk_bar_dropped):
    verdict = verdict_of(walk_bar_dropped)
    assert not verdict.ok, "a session missing a bar verified"


# ---------------------------------------------------------------- a historical run downgraded


@pytest.fixture(scope="module")
def historical_db(tmp_path_factory, tiny_artifact):
    tmp = tmp_path_factory.mktemp("review14h")
    db = tmp / "audit.db"
    done = run_script(
        "sentio", "strattest", "tfa", "--model", str(tiny_artifact), "--blocks", "2",
        "--allow-in-sample", "--no-cache", "--audit", str(db), cwd=tmp,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert verdict_of(db).exit_code == 0
    return db


def test_a_historical_run_missing_a_bar_is_caught(historical_db, tmp_path):
    """The forger is sound: a historical block one bar short fails on its block size (before
    the figures, so they are left as recorded)."""
    db = tmp_path / "h.db"
    shutil.copyfile(historical_db, db)
    drop_bar(db, chain(db), last_bar(chain(db)), figures=False)
    verdict = verdict_of(db)
    assert not verdict.ok and "block size" in verdict.problem


@pytest.fixture
def historical_downgraded(historical_db, tmp_path):
    db = tmp_path / "h.db"
    shutil.copyfile(historical_db, db)
    events = chain(db)
    edit(events, 0, lambda d: d.update(command="walk-forward", walk_forward={}))
    for index, (_, kind, _) in enumerate(events):  # the bar counts a walk-forward run carries
        if kind == "block_start":
            block = json.loads(events[index][2])["block"]
            count = sum(1 for _, k, p in events if k == "bar" and json.loads(p)["block"] == block)
            edit(events, index, lambda d, n=count: d.__setitem__("bars", n))
    rebuild(db, events)
    drop_bar(db, chain(db), last_bar(chain(db)))
    return db


# FIXED (review): verify takes 'walk-forward' from run_start's own command field: relabelling a
# historical run turns off its block-size check (and would admit swap events)
def test_a_historical_run_relabelled_walk_forward_is_still_checked(historical_downgraded):
    verdict = verdict_of(historical_downgraded)
    assert not verdict.ok, "a historical run relabelled walk-forward, one bar short, verified"


# ---------------------------------------------------------------- flags checked before any work


# FIXED (review): --train-window 1 (no session left to train on) and --cpu-capability are checked
# only after the run folder is created (fractions_for in fold_run; pin_cpu in training)
@pytest.mark.parametrize(
    "flags", [{"train_window": 1}, {"cpu_capability": "bogus"}], ids=["window-1", "cpu-bogus"]
)
def test_bad_walk_forward_values_fail_before_the_run_folder_exists(flags, tmp_path):
    config = None
    try:
        config = WalkForwardConfig.from_flags(
            strattest=StrattestConfig(cache_dir=None), builtin_days=30,
            feature_spec="intraday_default", sequence_length=16, d_model=16, nhead=2,
            num_layers=1, shadow_sessions=1, retrain_every=3, epochs=1,
            **({"train_window": 5} | flags),
        )  # fmt: skip
    except OptionError:
        return  # refused with the flags: fixed
    with pytest.raises(OptionError):
        run_walkforward(config, tmp_path / "run")
    assert not (tmp_path / "run").exists(), "refused after creating --out"


# FIXED (review): --builtin-days and --signal-strength are silently ignored when --data is a file
# (every other ignored flag is refused)
def test_builtin_only_flags_with_a_data_file_are_refused(tmp_path):
    made = run_script("sentio", "data", "synth", "--out", str(tmp_path / "m"), "--days", "22")
    assert made.returncode == 0, made.stderr
    done = run_script(
        "sentio", *WALK, *TINY, "--data", str(tmp_path / "m" / "QQQ.parquet"),
        "--out", str(tmp_path / "run"), cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 2, "ran, ignoring --builtin-days and --signal-strength"
    assert "--builtin-days" in done.stderr or "--signal-strength" in done.stderr


# FIXED (review): with --warm-start the folds train locally and --backend ray / --ray-address are
# silently ignored: an address where nothing listens is accepted
def test_a_dead_ray_address_is_not_silently_ignored_with_warm_start(tmp_path):
    done = run_script(
        "sentio", *WALK, *TINY, "--warm-start", "--backend", "ray",
        "--ray-address", "127.0.0.1:1", "--out", str(tmp_path / "run"), cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 2, "ran locally, the Ray flags ignored"


# FIXED (review): --fill close is the optimistic mode; historical and simulation reports say so,
# the walk-forward report does not (ARCHITECTURE section 2)
def test_the_walk_forward_report_says_when_fills_are_optimistic(tmp_path):
    done = run_script(
        "sentio", *WALK, *TINY, "--fill", "close", "--out", str(tmp_path / "run"), cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "optimistic" in done.stdout.lower()


# FIXED (review): --audit inside an empty --out: the store creates the database first, then the
# run refuses '--out ... is not empty', blaming the folder the user gave empty
def test_audit_inside_an_empty_out_is_not_blamed_on_out(tmp_path):
    (tmp_path / "run").mkdir()
    done = run_script(
        "sentio", *WALK, *TINY, "--out", "run", "--audit", "run/audit.db", cwd=tmp_path
    )
    assert done.returncode == 0 or "--audit" in done.stderr, done.stderr


# ---------------------------------------------------------------- sweeps


def grid_file(tmp_path: Path, grid: str, **fixed) -> Path:
    settings = {
        "builtin_days": 30, "signal_strength": 0.3, "retrain_every": 3, "shadow_sessions": 1,
        "epochs": 1, "sequence_length": 16, "d_model": 16, "nhead": 2, "num_layers": 1,
        "horizon": 1, "deadzone_bp": 0.0, "feature_spec": "intraday_default",
        "train_window": 5, "cpu_capability": "native", **fixed,
    }  # fmt: skip
    document = {"fixed": settings, "grid": json.loads(grid)}
    for key in document["grid"]:
        settings.pop(key, None)
    path = tmp_path / "grid.json"
    path.write_text(json.dumps(document))
    return path


# FIXED (review): a variant whose window the data cannot hold failed only when its turn came,
# after the earlier variants trained, without naming the grid file or the setting; run_sweep now
# plans every variant's folds (sweep.common_start) before --out is created.
def test_a_variant_the_data_cannot_hold_fails_before_any_training(tmp_path):
    from sentio.backtest.sweep import read_grid, run_sweep

    grid = read_grid(grid_file(tmp_path, '{"train_window": [5, 100]}'))
    with pytest.raises(SentioError) as caught:
        run_sweep(grid, tmp_path / "out")
    assert not (tmp_path / "out" / "variants" / "000").exists(), "variant 0 trained first"
    assert "--grid" in str(caught.value) and "train_window" in str(caught.value)


# FIXED (review): configs() did not check cpu_capability: a bad value failed inside the first
# variant's training, after its folder was made, naming no grid file or key; config_of now
# checks it against sentio.train.machine.CHOICES.
def test_a_bad_cpu_capability_in_a_grid_fails_naming_the_file_and_key(tmp_path):
    from sentio.backtest.sweep import configs, read_grid

    grid = read_grid(grid_file(tmp_path, '{"horizon": [1]}', cpu_capability="bogus"))
    try:
        configs(grid)
    except OptionError as exc:
        assert "fixed.cpu_capability" in str(exc)
        return
    raise AssertionError("configs() accepted cpu_capability 'bogus'")


# FIXED (review): docs/sweep.md said 'Every variant trades the same sessions', but a variant
# with a longer --train-window (or --shadow-sessions) started trading later, so the ranking
# compared mean session returns over different sessions; every variant now gets the latest
# first session as run_walkforward's trade_from.
def test_every_variant_trades_the_same_sessions(tmp_path):
    from sentio.backtest.sweep import read_grid, run_sweep

    document = run_sweep(read_grid(grid_file(tmp_path, '{"train_window": [5, 6]}')), tmp_path / "o")
    assert len({row["sessions"] for row in document["ranked"]}) == 1, document["ranked"]
