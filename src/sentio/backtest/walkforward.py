"""``strattest --mode walk-forward``: the retraining policy replayed over history.

A :class:`~sentio.train.policy.RetrainPolicy` cuts the sessions of the data into folds
(``fold_schedule``). Each fold trains a candidate on its ``train_window`` sessions (its own
validation part, the newest fifth of them by default, fits its thresholds), scores it against
the incumbent on the ``shadow_sessions`` sessions after its window that neither model trained on
(``gate.shadow_gate``), and then the model that won trades the fold's ``retrain_every``
sessions. The first fold's candidate is promoted without a gate (there is no incumbent).

Every traded session is one block (flat and with fresh capital at its open, flat at its close as
the strategy already is, so a swap of model between two sessions changes nothing but the
probabilities and thresholds): the live loop with ``--registry`` swaps at the first bar after a
retrainer promotes, and a retrainer promotes after a session closes, so the first bar of the next
session is where both swap. The stitched equity compounds the sessions' returns.

The same bars are traded by the model of the first fold alone (trained once, never replaced):
the comparison the issue asks for. Every fold's artifact stays under the run folder, and
``walkforward.json`` records the schedule, every seed, the gate's numbers and the results; with
``SOURCE_DATE_EPOCH`` set, a rerun writes the same bytes.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from sentio.backtest.gate import GateError, shadow_gate
from sentio.backtest.metrics import paired_difference, verdict
from sentio.backtest.strattest import (
    SYMBOLS,
    BacktestError,
    Plan,
    StrattestConfig,
    StrattestResult,
    account,
    check_capital,
    decide_blocks,
    figures_of,
    market_tables,
    prices_of,
)
from sentio.core.clock import NEW_YORK
from sentio.core.errors import OptionError, SentioError, SynthError, excerpt
from sentio.core.files import check_output, write_bytes_atomic
from sentio.core.hashing import clean
from sentio.core.seeding import rng_for
from sentio.data.synth.generate import SynthConfig
from sentio.features import FeatureEngine
from sentio.features.inputs import as_input, clock_columns
from sentio.infer import SequenceContext
from sentio.model.artifact import load_verified
from sentio.model.config import ModelConfigError, TFAConfig, preset
from sentio.model.windows import valid_windows
from sentio.train.config import TrainConfig
from sentio.train.evaluate import auc, log_loss, session_auc_interval
from sentio.train.machine import CHOICES
from sentio.train.pipeline import TrainRun, artifact_hash
from sentio.train.policy import Fold, RetrainPolicy, fold_schedule, sessions_of
from sentio.train.regimes import refuse_regime_spec
from sentio.train.samples import LabelSpec, label_bars, outside_deadzone

REPORT = "walkforward.json"
SESSIONS = "sessions.csv"
BACKENDS = ("local", "ray")
VALIDATION_SHARE = 0.2  # the newest fifth of a fold's training sessions validates it


@dataclass(frozen=True)
class WalkForwardConfig:
    """Everything a walk-forward run depends on (written into walkforward.json)."""

    policy: RetrainPolicy
    strattest: StrattestConfig  # data, capital, costs, strategy, allocation, seed
    model: TFAConfig = field(default_factory=lambda: preset("quick"))
    train: TrainConfig = field(default_factory=lambda: TrainConfig(epochs=3))
    label: LabelSpec = field(default_factory=LabelSpec)
    feature_spec: str = "feature_spec_55_minimal"
    builtin: SynthConfig = field(default_factory=lambda: SynthConfig(days=120))  # data builtin
    validation_share: float = VALIDATION_SHARE  # newest share of each training window
    cpu_capability: str = "native"  # sentio.train.machine.CHOICES

    @classmethod
    def from_flags(
        cls,
        *,
        strattest: StrattestConfig,
        train_window: str | int = 60,
        retrain_every: str | int = 5,
        warm_start: bool = False,
        shadow_sessions: int = 5,
        gate_margin: float = 0.0,
        preset_name: str = "quick",
        epochs: int | None = None,
        sequence_length: int | None = None,
        d_model: int | None = None,
        nhead: int | None = None,
        num_layers: int | None = None,
        horizon: int = 5,
        deadzone_bp: float = 1.0,
        learning_rate: float = 3e-4,
        batch_size: int = 256,
        threads: int = 1,
        feature_spec: str = "feature_spec_55_minimal",
        builtin_days: int = 120,
        signal_strength: float = 0.0,
        signal_flip_every: int = 0,
        cpu_capability: str = "native",
    ) -> WalkForwardConfig:
        """The config of ``strattest --mode walk-forward``'s flags, checked before any work
        (a bad value raises OptionError naming its flag). One ``--seed`` (the strattest
        config's) seeds the folds' training, the built-in market and the bootstrap.

        >>> c = WalkForwardConfig.from_flags(strattest=StrattestConfig(), train_window="40d")
        >>> c.policy.train_window, c.policy.retrain_every, c.train.epochs
        (40, 5, 3)
        >>> WalkForwardConfig.from_flags(strattest=StrattestConfig(), gate_margin=-1)
        Traceback (most recent call last):
        ...
        sentio.core.errors.OptionError: --gate-margin: Input should be greater than or equal to 0, got -1
        """  # noqa: E501
        from pydantic import ValidationError

        try:
            policy = RetrainPolicy(
                train_window=sessions_of(train_window, "--train-window"),
                retrain_every=sessions_of(retrain_every, "--retrain-every"),
                warm_start=warm_start,
                epochs=epochs,
                gate_margin=gate_margin,
                shadow_sessions=shadow_sessions,
            )
        except ValidationError as exc:
            first = exc.errors()[0]
            field_name = str(first["loc"][0]) if first.get("loc") else "policy"
            raise OptionError(
                f"{first['msg']}, got {excerpt(first.get('input'))}",
                flag="--" + field_name.replace("_", "-"),
            ) from None
        seed = strattest.seed
        builtin = SynthConfig(seed=seed, days=builtin_days, signal_strength=signal_strength,
                              signal_flip_every=signal_flip_every)  # fmt: skip
        try:
            builtin.validate()
        except SynthError as exc:
            flag, message = str(exc).split(" ", 1)
            flag = {"--days": "--builtin-days"}.get(flag, flag)
            raise OptionError(message, flag=flag) from None
        if isinstance(horizon, bool) or not isinstance(horizon, int) or not 1 <= horizon <= 10_000:
            raise OptionError(
                f"must be a whole number of bars, 1 to 10,000, got {excerpt(horizon)}",
                flag="--horizon",
            )
        if not isinstance(deadzone_bp, int | float) or not 0 <= deadzone_bp <= 10_000:
            raise OptionError(f"must be 0 to 10,000 basis points, got {excerpt(deadzone_bp)}",
                              flag="--label-deadzone-bp")  # fmt: skip
        if cpu_capability not in CHOICES:
            raise OptionError(
                f"must be one of {', '.join(CHOICES)}, got {excerpt(cpu_capability)}",
                flag="--cpu-capability",
            )
        try:
            refuse_regime_spec(FeatureEngine(feature_spec).spec)  # folds train plain models
        except SentioError as exc:
            raise OptionError(str(exc), flag="--feature-spec") from None
        fractions_for(policy, VALIDATION_SHARE)  # sessions left to train on, or --train-window
        if not 0 <= seed < 2**31:  # torch's manual_seed and the fold seeds take 31 bits
            raise OptionError(f"must be 0 to 2**31 - 1 for training, got {seed}", flag="--seed")
        return cls(
            policy=policy,
            strattest=strattest,
            model=network(preset_name, sequence_length, d_model, nhead, num_layers),
            train=TrainConfig(
                epochs=epochs or 3,
                batch_size=batch_size,
                learning_rate=learning_rate,
                seed=seed,
                threads=threads,
            ),  # fmt: skip
            label=LabelSpec(horizon=horizon, deadzone_bp=deadzone_bp),
            feature_spec=feature_spec,
            builtin=builtin,
            cpu_capability=cpu_capability,
        )

    def to_dict(self) -> dict:
        return {
            "policy": self.policy.model_dump(),
            "strattest": json.loads(self.strattest.model_dump_json()),
            "model": self.model.to_dict(),
            "train": self.train.to_dict(),
            "label": dataclasses.asdict(self.label),
            "feature_spec": self.feature_spec,
            "builtin": self.builtin.record() if self.strattest.data == ("builtin",) else None,
            "validation_share": self.validation_share,
            "cpu_capability": self.cpu_capability,
        }


def network(
    preset_name: str, seq_len: int | None, d_model: int | None, nhead: int | None,
    num_layers: int | None,
) -> TFAConfig:  # fmt: skip
    """The folds' network: a preset with the sizes given; a bad one is an OptionError naming
    its flag (so that a value from a settings file is told as the file's setting).

    >>> network("quick", None, 0, None, None)
    Traceback (most recent call last):
    ...
    sentio.core.errors.OptionError: --d-model: must be an integer in [1, 4096], got 0
    """
    try:
        return preset(
            preset_name, seq_len=seq_len, d_model=d_model, nhead=nhead, num_layers=num_layers
        )
    except ModelConfigError as exc:
        message = str(exc)
        if message.startswith("--"):  # "--d-model: must be ..."
            flag, _, message = message.partition(": ")
        else:  # d_model not divisible by nhead
            flag = "--d-model/--nhead" if d_model is not None else "--nhead"
        raise OptionError(message, flag=flag) from None


@dataclass
class FoldRecord:
    """One fold: its schedule, its candidate, the gate's decision and what traded."""

    fold: Fold
    seed: int
    candidate: Path
    validation: dict  # the candidate's validation auc and log loss (its artifact's metrics)
    gate: dict  # promote, reason, and the numbers (GateDecision.to_dict) or why none
    active: Path  # the model that traded the fold (the candidate if promoted)
    sessions: list[int] = field(default_factory=list)  # the traded session numbers


@dataclass
class WalkForwardResult:
    config: WalkForwardConfig
    folds: list[FoldRecord]
    walk_forward: StrattestResult  # the stitched run: each fold traded by its active model
    single: StrattestResult  # the same sessions traded by the first fold's model alone
    scores: dict  # out-of-sample AUC (with interval) of both, over every traded labelled bar
    per_fold: list[dict]  # the table printed and written
    per_session: pd.DataFrame  # date, fold, model, returns, stitched equity
    plan: Plan  # the traded blocks (the audit records the run over them)
    models: list[Path]  # the artifact that traded each block
    probabilities: dict[Path, np.ndarray]  # each model's sequence-path p of every QQQ bar


def fold_seed(seed: int, number: int) -> int:
    """The training seed of fold ``number``: its own stream of the run's seed, so folds trained
    in any order (or on Ray) get the same seed.

    >>> fold_seed(7, 0) == fold_seed(7, 0) != fold_seed(7, 1)
    True
    """
    return int(rng_for(seed, f"walk-forward.fold.{number}").integers(0, 2**31 - 1))


def fractions_for(policy: RetrainPolicy, validation_share: float) -> tuple[float, float, float]:
    """The (train, validation, test) fractions that make a fold's data of ``train_window +
    shadow_sessions`` sessions split into its training sessions, the newest
    ``validation_share`` of them as validation (at least one), and the shadow sessions as the
    test part (never trained on; the gate scores there).

    >>> fractions_for(RetrainPolicy(train_window=8, shadow_sessions=2), 0.25)
    (0.6, 0.2, 0.2)
    """
    window, shadow = policy.train_window, policy.shadow_sessions
    validation = max(1, round(window * validation_share))
    if validation >= window:
        raise OptionError(
            f"a training window of {window} session(s) leaves none to train on after "
            f"{validation} validation session(s); give a longer --train-window",
            flag="--train-window",
        )
    total = window + shadow
    return ((window - validation) / total, validation / total, shadow / total)


def fold_run(config: WalkForwardConfig, fold: Fold, folder: Path, warm: Path | None) -> TrainRun:
    """The training run of one fold (what ``sentio train`` would run with those flags)."""
    data = list(config.strattest.data)
    return TrainRun(
        data=data,
        output=folder / "model",
        model=config.model,
        train=dataclasses.replace(
            config.train,
            seed=fold_seed(config.train.seed, fold.number),
            epochs=config.policy.epochs or config.train.epochs,  # the policy's, when it says
        ),
        label=config.label,
        feature_spec=config.feature_spec,
        fractions=fractions_for(config.policy, config.validation_share),
        builtin=config.builtin,
        checkpoints=folder / "checkpoint",
        cpu_capability=config.cpu_capability,
        sessions=(fold.train[0], fold.shadow[1]),
        warm_start=warm,
    )


def train_fold(run: TrainRun) -> str:
    """Train one fold's candidate and drop its checkpoint (the artifact is what is kept);
    returns the artifact's folder. A top-level function, so Ray can ship it to a worker."""
    from sentio.train.pipeline import run_training

    run_training(run)
    shutil.rmtree(run.checkpoint_dir, ignore_errors=True)
    return str(run.output)


def train_folds(runs: list[TrainRun], backend: str, address: str | None) -> list[str]:
    """Train independent folds (no warm start) on ``backend``: one after another here, or as
    Ray tasks (each with its own fold seed, so the artifacts are the same bytes)."""
    if backend == "ray":
        from sentio.backtest.cluster import run_on_ray

        return run_on_ray(train_fold, runs, address)
    return [train_fold(run) for run in runs]


def market(config: WalkForwardConfig) -> tuple[dict[str, pd.DataFrame], dict]:
    """The bars traded: every instrument on QQQ's times (the built-in market regenerated from
    ``config.builtin``, the same one the folds train on)."""
    meta = {"data": {"synth": config.builtin.record()}}
    return market_tables(config.strattest, meta)


def session_dates(ts: np.ndarray, session: np.ndarray) -> dict[int, str]:
    """NYSE session number -> its New York date (YYYY-MM-DD)."""
    first = np.r_[True, session[1:] != session[:-1]] & (session >= 0)
    days = pd.DatetimeIndex(ts[first], tz="UTC").tz_convert(NEW_YORK).strftime("%Y-%m-%d")
    return dict(zip(session[first].tolist(), days, strict=True))


def run_walkforward(
    config: WalkForwardConfig,
    out: Path,
    *,
    backend: str = "local",
    address: str | None = None,
    progress: Callable[[str, int, int], None] | None = None,
    trade_from: int | None = None,
) -> WalkForwardResult:
    """Train, gate and trade every fold; write the artifacts and walkforward.json under
    ``out`` (a new or empty folder). ``progress(stage, done, total)``. ``trade_from``: the
    first session (number) to trade, when later than the policy allows (a sweep's variants
    all trade the same sessions)."""
    tell = progress or (lambda stage, done, total: None)
    if backend == "ray":  # the extra and the address, before anything is read or written
        from sentio.backtest.cluster import import_ray, probe_address

        import_ray()
        if address is not None:
            probe_address(address)
    out = check_output(Path(out), flag="--out", directory=True)
    if out.exists() and any(out.iterdir()):
        raise OptionError(f"{out} exists and is not empty; choose a new folder", flag="--out")
    tables, simulated = market(config)
    qqq = tables["QQQ"]
    ts = qqq["ts"].to_numpy(np.int64)
    session = clock_columns(ts)[1].astype(np.int64)
    ready = ready_sessions(config, qqq, session)
    folds = fold_schedule(ready, config.policy, trade_from)
    if not folds:
        need = config.policy.train_window + config.policy.shadow_sessions + 1
        raise BacktestError(
            f"{len(ready)} sessions in the data have a full window of warmed-up features; a "
            f"walk-forward run needs at least {need} (--train-window + the gate's "
            "--shadow-sessions + one to trade)"
        )
    out.mkdir(parents=True, exist_ok=True)
    out = out.resolve()  # the audit and the swaps name the artifacts wherever it is read from
    folders = [out / "folds" / f"{f.number:03d}" for f in folds]
    trained: dict[int, Path] = {}
    if not config.policy.warm_start:  # independent folds: all at once, on any backend
        runs = [fold_run(config, f, d, None) for f, d in zip(folds, folders, strict=True)]
        tell("train", 0, len(folds))
        for number, path in enumerate(train_folds(runs, backend, address)):
            trained[number] = Path(path)
        tell("train", len(folds), len(folds))

    probabilities: dict[Path, np.ndarray] = {}

    def probability_of(model: Path) -> np.ndarray:
        if model not in probabilities:
            context = SequenceContext(model, cache_dir=config.strattest.cache_dir)
            probabilities[model] = context.calculate_probability(qqq)
        return probabilities[model]

    records: list[FoldRecord] = []
    incumbent: Path | None = None
    for fold, folder in zip(folds, folders, strict=True):
        if fold.number not in trained:  # warm start: each fold starts from the incumbent
            run = fold_run(config, fold, folder, incumbent)
            trained[fold.number] = Path(train_fold(run))
            tell("train", fold.number + 1, len(folds))
        candidate = trained[fold.number]
        meta = load_verified(candidate)
        check_unseen(meta, ts, session, fold)
        gate = decide(config, candidate, incumbent, tables, session, fold, probability_of)
        active = candidate if gate["promote"] else incumbent
        assert active is not None  # the first fold always promotes
        records.append(
            FoldRecord(
                fold,
                int(meta["seed"]),
                candidate,
                dict(meta["metrics"]["validation"]),
                gate,
                active,
                sorted(set(session[(session >= fold.trade[0]) & (session <= fold.trade[1])])),
            )
        )
        incumbent = active
        tell("gate", fold.number + 1, len(folds))
    result = trade(config, records, tables, simulated, probability_of)
    result.probabilities = probabilities  # every model's, filled as trade() asked for them
    write_report(out, result)
    return result


def ready_sessions(config: WalkForwardConfig, qqq: pd.DataFrame, session: np.ndarray) -> list:
    """The sessions with at least one bar whose window of features is warmed up: the earlier
    ones only warm the feature engine up (warm-up is data: a fold never counts them)."""
    computed = FeatureEngine(config.feature_spec).compute(as_input(qqq))
    ok = valid_windows(qqq["segment"].to_numpy(np.int64), computed.ready, config.model.seq_len)
    return np.unique(session[ok & (session >= 0)]).tolist()


def planned_folds(config: WalkForwardConfig) -> list[Fold]:
    """The folds a run of ``config`` would train and trade (the data read, the features
    computed, nothing trained): for checking a configuration, or a common ``trade_from``."""
    tables, _ = market(config)
    ts = tables["QQQ"]["ts"].to_numpy(np.int64)
    session = clock_columns(ts)[1].astype(np.int64)
    return fold_schedule(ready_sessions(config, tables["QQQ"], session), config.policy)


def check_unseen(meta: dict, ts: np.ndarray, session: np.ndarray, fold: Fold) -> None:
    """The candidate's validation must end before the fold's shadow sessions (the split is by
    session counts; this is the check that it fell where the schedule says)."""
    last = meta["data"]["splits"]["validation"]["last_ts"]
    if session[np.searchsorted(ts, last)] >= fold.shadow[0]:
        raise BacktestError(
            f"fold {fold.number}: the candidate's validation reaches into its shadow sessions "
            f"{fold.shadow}; the training window has sessions without samples"
        )


def decide(config, candidate, incumbent, tables, session, fold, probability_of) -> dict:
    """The gate of one fold on the bars up to its shadow sessions' end (nothing later is
    shown to it): promote, why, and every number."""
    if incumbent is None:
        return {"promote": True, "reason": "first model (no incumbent to compare with)"}
    upto = int(np.searchsorted(session, fold.shadow[1], side="right"))
    seen = {name: frame.iloc[:upto].reset_index(drop=True) for name, frame in tables.items()}
    p = {"candidate": probability_of(candidate)[:upto],
         "incumbent": probability_of(incumbent)[:upto]}  # fmt: skip
    try:
        decision = shadow_gate(
            candidate,
            incumbent,
            seen,
            config.policy.shadow_sessions,
            config.strattest,
            config.policy.gate_margin,
            probabilities=p,
        )
    except GateError as exc:
        return {
            "promote": False,
            "reason": f"kept the incumbent: the gate could not compare ({exc})",
        }
    return decision.to_dict()


def trade(config, records, tables, simulated, probability_of):
    """The stitched walk-forward run and the single-model run over the same sessions."""
    qqq = tables["QQQ"]
    ts = qqq["ts"].to_numpy(np.int64)
    session = clock_columns(ts)[1].astype(np.int64)
    traded = [s for r in records for s in r.sessions]
    block = np.full(len(ts), -1, dtype=np.int64)
    block_of_session = {s: b for b, s in enumerate(traded)}
    inside = np.isin(session, traded)
    block[inside] = [block_of_session[s] for s in session[inside]]
    fold_of_block = [r.fold.number for r in records for _ in r.sessions]
    st = config.strattest.model_copy(update={"blocks": len(traded), "block_size": 390})
    prices = prices_of(tables)
    check_capital(st.capital, prices["close"][inside])
    first = records[0].active

    def plan_for(model: Path) -> Plan:
        return Plan(st, model, load_verified(model), qqq, prices, simulated, block,
                    len(traded), False)  # fmt: skip

    metas = {r.active: load_verified(r.active) for r in records}  # the first fold's included

    def rolling(b: int):
        model = records[fold_of_block[b]].active
        return probability_of(model), metas[model]["thresholds"]

    runs = {}
    plan = plan_for(first)
    for name, model_of in (
        ("walk_forward", rolling),
        ("single", lambda b: (probability_of(first), metas[first]["thresholds"])),
    ):
        used, exposure, reasons = decide_blocks(plan, model_of)
        runs[name] = (account(plan, used, exposure, reasons, {}), used)
    scores = {name: oos_scores(config, qqq, session, used, inside, st.seed)
              for name, (_, used) in runs.items()}  # fmt: skip
    wf, single = runs["walk_forward"][0], runs["single"][0]
    per_session = session_table(records, traded, fold_of_block, wf, single, ts)
    per_fold = fold_table(config, records, qqq, session, runs, per_session, st.seed)
    models = [records[f].active for f in fold_of_block]
    return WalkForwardResult(config, records, wf, single, scores, per_fold, per_session, plan,
                             models, {})  # fmt: skip


def labelled(config, qqq: pd.DataFrame, session: np.ndarray, p: np.ndarray, rows: np.ndarray):
    """(label, probability, session) of the labelled bars among ``rows`` (the run's label
    rule: horizon and dead zone) that have a probability."""
    ret, ok = label_bars(
        qqq["close"].to_numpy(np.float64), qqq["segment"].to_numpy(), session, config.label
    )
    keep = rows & ok & outside_deadzone(ret, config.label) & ~np.isnan(p)
    return (ret[keep] > 0).astype(np.float64), p[keep], session[keep]


def oos_scores(config, qqq, session, p, rows, seed: int) -> dict:
    """AUC (with its session-bootstrap interval) and log loss on the traded labelled bars."""
    y, q, days = labelled(config, qqq, session, p, rows)
    if len(y) < 2:
        return {"samples": int(len(y)), "auc": None, "auc_ci95": None, "log_loss": None}
    return {
        "samples": int(len(y)),
        "auc": auc(y, q),
        "auc_ci95": list(session_auc_interval(y, q, days, seed)),
        "log_loss": log_loss(y, q),
    }


def session_table(records, traded, fold_of_block, wf, single, ts) -> pd.DataFrame:
    """One row per traded session: its date, fold, model, the three runs' returns, its warm-up
    bars and the stitched run's costs and turnover, with the stitched equity (compounded
    session returns, starting at 1)."""
    blocks = wf.per_block
    frame = pd.DataFrame(
        {
            "date": [d[:10] for d in _ny_dates(blocks["start"])],
            "session": traded,
            "fold": fold_of_block,
            "model": [records[f].active.parent.name for f in fold_of_block],
            "walk_forward_return_pct": blocks["return_pct"].to_numpy(),
            "single_return_pct": single.per_block["return_pct"].to_numpy(),
            "buy_and_hold_return_pct": blocks["buy_and_hold_return_pct"].to_numpy(),
            "warmup_bars": blocks["warmup_bars"].to_numpy(),  # bars without a probability
            "walk_forward_costs": blocks["costs"].to_numpy(),  # $: commissions, fees, spread
            "walk_forward_turnover": blocks["turnover"].to_numpy(),
        }
    )
    for name in ("walk_forward", "single", "buy_and_hold"):
        frame[f"{name}_equity"] = np.cumprod(1 + frame[f"{name}_return_pct"].to_numpy() / 100)
    return frame


def _ny_dates(starts: pd.Series) -> list[str]:
    return [pd.Timestamp(s).tz_convert(NEW_YORK).strftime("%Y-%m-%d") for s in starts]


def fold_table(config, records, qqq, session, runs, per_session, seed) -> list[dict]:
    """The per-fold table: schedule, candidate, gate, what traded and how it did."""
    ts = qqq["ts"].to_numpy(np.int64)
    dates = session_dates(ts, session)
    rows = []
    for r in records:
        mine = per_session["fold"] == r.fold.number
        inside = np.isin(session, r.sessions)
        used = runs["walk_forward"][1]
        gate = r.gate
        rows.append(
            {
                "fold": r.fold.number,
                "train": [dates[r.fold.train[0]], dates[r.fold.train[1]]],
                "shadow": [dates[r.fold.shadow[0]], dates[r.fold.shadow[1]]],
                "trade": [dates[r.fold.trade[0]], dates[r.fold.trade[1]]],
                "seed": r.seed,
                "candidate": fold_name(r.candidate),
                "candidate_manifest_sha256": artifact_hash(r.candidate),
                "validation_auc": r.validation.get("auc"),
                "validation_log_loss": r.validation.get("log_loss"),
                "promoted": bool(gate["promote"]),
                "gate_reason": gate["reason"],
                "gate_candidate_log_loss": (gate.get("candidate") or {}).get("log_loss"),
                "gate_incumbent_log_loss": (gate.get("incumbent") or {}).get("log_loss"),
                "active": fold_name(r.active),
                "oos": oos_scores(config, qqq, session, used, inside, seed),
                "return_pct": _compound(per_session.loc[mine, "walk_forward_return_pct"]),
                "single_return_pct": _compound(per_session.loc[mine, "single_return_pct"]),
                "buy_and_hold_return_pct": _compound(
                    per_session.loc[mine, "buy_and_hold_return_pct"]
                ),
            }
        )
    return rows


def fold_name(model: Path) -> str:
    """A fold's artifact as the run folder names it (folds/NNN/model): the report reads the
    same wherever the run folder lies."""
    return "/".join(model.parts[-3:])


def _compound(returns_pct: pd.Series) -> float:
    return float(100 * (np.prod(1 + returns_pct.to_numpy() / 100) - 1))


def report_document(result: WalkForwardResult) -> dict:
    """walkforward.json: the config, the schedule with every seed, the per-fold table and the
    results of the stitched run, the single model and the baselines, their costs whole and the
    verdict (the stitched run's net mean per session vs buy-and-hold's)."""
    wf, single = result.walk_forward, result.single
    summary = wf.summary["strategy"]
    sessions = result.per_session
    over = paired_difference(
        sessions["walk_forward_return_pct"].to_numpy() / 100,
        sessions["buy_and_hold_return_pct"].to_numpy() / 100,
        result.config.strattest.seed,
    )
    judged = verdict(summary, wf.summary["buy_and_hold_qqq"], unit="session", over=over)
    return clean(
        {
            "mode": "walk-forward",
            "config": result.config.to_dict(),
            "schedule": [r.fold.to_dict() | {"seed": r.seed} for r in result.folds],
            "folds": result.per_fold,
            "gates": [r.gate for r in result.folds],
            "sessions": len(result.per_session),
            "summary": {
                "walk_forward": figures_of(wf)["strategy"],
                "single_model": figures_of(single)["strategy"],
                "buy_and_hold_qqq": figures_of(wf)["buy_and_hold_qqq"],
                "flat": figures_of(wf)["flat"],
            },
            "costs": {
                "walk_forward": wf.costs["strategy"].to_dict(),
                "single_model": single.costs["strategy"].to_dict(),
                "buy_and_hold_qqq": wf.costs["buy_and_hold_qqq"].to_dict(),
                "flat": wf.costs["flat"].to_dict(),
            },
            "verdict": judged.to_dict(),
            "out_of_sample": result.scores,
            "fill": result.config.strattest.fill,
            "optimistic_fill": result.config.strattest.fill == "close",
            "simulated": wf.simulated,
            "symbols": list(SYMBOLS),
        }
    )


def write_report(out: Path, result: WalkForwardResult) -> None:
    """walkforward.json and sessions.csv, each written atomically."""
    document = report_document(result)
    text = json.dumps(document, indent=2, sort_keys=True, allow_nan=False) + "\n"
    write_bytes_atomic(out / SESSIONS, result.per_session.to_csv(index=False).encode("utf-8"))
    write_bytes_atomic(out / REPORT, text.encode("utf-8"))


__all__ = [
    "BACKENDS",
    "FoldRecord",
    "WalkForwardConfig",
    "WalkForwardResult",
    "check_unseen",
    "decide",
    "fold_run",
    "fold_seed",
    "fold_name",
    "fractions_for",
    "planned_folds",
    "ready_sessions",
    "report_document",
    "run_walkforward",
    "session_dates",
    "train_fold",
    "train_folds",
]
