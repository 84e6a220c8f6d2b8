"""``sentio train --enable-realtime``: the retraining policy applied to the bars a live loop
stores, while it trades (issue 14 section 3).

A :class:`Retrainer` watches the bar store of ``sentio live --bar-store STORE`` (one canonical
Parquet table per closed session, ``STORE/YYYY-MM-DD.parquet``) and, with the same
:class:`~sentio.train.policy.RetrainPolicy` the walk-forward backtest replays, keeps the model
registry's ``current`` version fresh. One :meth:`Retrainer.check`:

1. lists the closed sessions in the store (file names only) and counts those newer than the
   newest session the last retraining saw (``WORK/state.json``; without one, the newest session
   of the current model's data): fewer than ``retrain_every`` (and a current model exists) ->
   nothing to do;
2. combines the history files (the bars before the store, which the first model trained on and
   the features warm up on) and the store into one canonical table ``WORK/bars.parquet``
   (written atomically; a bar in both comes from the store);
3. trains a candidate exactly as a walk-forward fold (``walkforward.fold_run``): on the newest
   ``train_window`` sessions before the newest ``shadow_sessions`` (sessions with a warmed-up
   window), the shadow sessions as its test part (never trained on), seed
   ``fold_seed(seed, retrain number)``, warm-started from ``current`` when the policy says so;
4. runs every ``sentio model verify`` check on it, then the gate (``gate.shadow_gate``: the
   candidate against ``current`` on the newest shadow sessions, which neither trained on);
5. publishes it into the registry and promotes it if the gate says so, else records a
   ``refuse``: either way the history holds the decision with every number. With no current
   version the candidate is published and promoted as the first model (nothing to gate against).

A session a restart of the live loop cut in two is stored as ``YYYY-MM-DD.partial.parquet``
(the bars since the restart): it counts as a closed session and its bars are trained on; the
missing stretch before them is a new segment (the import's segment rule), so no feature window
or label spans it. A store file that cannot be read is left out (and said so in the log).

A training or gate that fails is one line in the log and the incumbent keeps trading; the state
advances, so the next attempt waits for ``retrain_every`` more sessions instead of failing at
every poll. ``WORK/lock`` keeps a second retrainer off the same work folder.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
import os
import re
import shutil
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from sentio.backtest.strattest import SYMBOLS, StrattestConfig, market_tables
from sentio.backtest.walkforward import (
    WalkForwardConfig,
    check_unseen,
    decide,
    fold_run,
    ready_sessions,
    session_dates,
    train_fold,
)
from sentio.core.clock import NEW_YORK, build_time
from sentio.core.errors import OptionError, SentioError, excerpt
from sentio.core.files import read_settings, write_bytes_atomic
from sentio.core.hashing import clean
from sentio.data import Bars, assign_segments, read_bars, write_bars
from sentio.data.segments import DEFAULT_MAX_GAP_MIN
from sentio.features import FeatureEngine
from sentio.features.inputs import clock_columns
from sentio.infer import SequenceContext
from sentio.model.artifact import load_verified, verify
from sentio.model.config import PRESETS, TFAConfig, preset
from sentio.model.signing import SigningKey
from sentio.model.versions import ModelRegistry
from sentio.train.config import TrainConfig
from sentio.train.machine import CHOICES, pin_cpu, require_torch
from sentio.train.policy import Fold, RetrainPolicy
from sentio.train.regimes import refuse_regime_spec
from sentio.train.samples import LabelSpec

STORED = re.compile(r"^(\d{4}-\d{2}-\d{2})(\.partial)?\.parquet$")
STATE = "state.json"
LOG = "retrainer.jsonl"
DATA = "bars.parquet"
WORK = "retrainer"  # the CLI's work folder, inside the registry folder


class RetrainError(SentioError):
    """A retraining step that failed (the incumbent stays)."""


# -- the policy file ---------------------------------------------------------------------------


class TrainingSettings(BaseModel):
    """The training settings of a policy file, named as ``sentio train``'s flags without
    dashes; every field has the flag's default."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True, allow_inf_nan=False)

    preset: str = "quick"  # model preset (PRESETS); quick: d_model 64, 2 layers, 48 rows
    sequence_length: int | None = Field(None, ge=1, le=4096)  # rows per window; None: preset's
    d_model: int | None = Field(None, ge=1, le=4096)  # embedding width; None: preset's
    nhead: int | None = Field(None, ge=1, le=256)  # attention heads; None: preset's
    num_layers: int | None = Field(None, ge=1, le=64)  # blocks; None: preset's
    batch_size: int = Field(256, ge=1, le=65_536)  # windows per step
    learning_rate: float = Field(3e-4, gt=0, le=1)  # peak AdamW rate
    seed: int = Field(7, ge=0, lt=2**31)  # the run's seed; retrain n trains with fold_seed(seed, n)
    threads: int = Field(1, ge=1, le=1024)  # torch intra-op threads
    device: str = Field("cpu", pattern="^(cpu|cuda)$")  # cpu or cuda
    horizon: int = Field(5, ge=1, le=390)  # label: bars ahead
    label_deadzone_bp: float = Field(1.0, ge=0, le=10_000)  # label: |return| <= this: unlabelled
    feature_spec: str = "feature_spec_55_minimal"  # spec file or shipped spec name
    cpu_capability: str = "auto"  # CPU kernels torch may use (train.machine.CHOICES)
    validation_share: float = Field(0.2, gt=0, lt=1)  # newest share of the window: validation


def policy_keys() -> list[str]:
    """Every setting a policy file may hold: the RetrainPolicy fields and the training ones.

    >>> policy_keys()[:3]
    ['batch_size', 'cpu_capability', 'd_model']
    """
    return sorted({*RetrainPolicy.model_fields, *TrainingSettings.model_fields})


def read_policy(path: Path) -> dict:
    """The settings of a TOML or JSON policy file (by its suffix), each checked for its type;
    an unknown key is refused naming it and the file."""
    flag = "--policy"
    if Path(path).suffix.lower() not in (".toml", ".json"):
        raise OptionError(
            f"{path}: give a .toml or .json policy file, got "
            f"{excerpt(Path(path).suffix or 'none')}",
            flag=flag,
        )
    doc = read_settings(path, flag)
    unknown = sorted(set(doc) - set(policy_keys()))
    if unknown:
        raise OptionError(
            f"{path}: unknown key {excerpt(unknown[0])}; a policy file holds "
            f"{', '.join(policy_keys())}",
            flag=flag,
        )
    settings(doc, str(path))  # every value checked now, not at the first retraining
    return doc


def settings(
    doc: dict, source: str, flags: dict[str, str] | None = None
) -> tuple[RetrainPolicy, TrainingSettings]:
    """The policy and the training settings of ``doc`` (a policy file's keys, the command
    line's flags merged in), each bad value one line naming ``source`` and the key, or the
    flag that gave it (``flags``: key -> flag)."""

    def refuse(key: str, message: str) -> OptionError:
        if flags and key in flags:
            return OptionError(message, flag=flags[key])
        return OptionError(f"{source}: {key}: {message}", flag="--policy")

    policy_part = {k: v for k, v in doc.items() if k in RetrainPolicy.model_fields}
    training_part = {k: v for k, v in doc.items() if k in TrainingSettings.model_fields}
    try:
        policy = RetrainPolicy.model_validate(policy_part, strict=True)
        training = TrainingSettings.model_validate(training_part)
    except ValidationError as exc:
        first = exc.errors()[0]
        key = ".".join(str(p) for p in first.get("loc", ())) or "?"
        got = excerpt(first.get("input"))
        raise refuse(key, f"{first.get('msg', 'invalid')}, got {got}") from None
    for key, allowed in (("preset", PRESETS), ("cpu_capability", CHOICES)):
        if getattr(training, key) not in allowed:
            got = excerpt(getattr(training, key))
            raise refuse(key, f"must be one of {', '.join(allowed)}, got {got}")
    return policy, training


# -- the retrainer -----------------------------------------------------------------------------


@dataclass(frozen=True)
class RetrainerConfig:
    """Everything a retrainer depends on (its policy and training settings are recorded in
    every decision's log line and in each candidate's artifact)."""

    policy: RetrainPolicy
    bar_store: Path  # sentio live --bar-store: one canonical table per closed session
    registry: Path  # the model registry it publishes into and promotes in
    work: Path  # state, log, the combined bars and the candidate being trained
    history: tuple[Path, ...] = ()  # canonical tables of the bars before the store
    model: TFAConfig = field(default_factory=lambda: preset("quick"))
    train: TrainConfig = field(default_factory=lambda: TrainConfig(epochs=3))
    label: LabelSpec = field(default_factory=LabelSpec)
    feature_spec: str = "feature_spec_55_minimal"
    validation_share: float = 0.2  # newest share of each training window: validation
    cpu_capability: str = "auto"  # sentio.train.machine.CHOICES
    signing_key: SigningKey | None = None  # signs every candidate when given

    @classmethod
    def from_settings(
        cls, doc: dict, source: str, flags: dict[str, str] | None = None, **places
    ) -> RetrainerConfig:
        """A config from a policy file's keys (``read_policy``; ``flags``: the keys the
        command line gave, key -> flag) and the folders (``bar_store``, ``registry``,
        ``work``, ``history``, ``signing_key``)."""
        policy, t = settings(doc, source, flags)
        try:
            model = preset(t.preset, seq_len=t.sequence_length, d_model=t.d_model,
                           nhead=t.nhead, num_layers=t.num_layers)  # fmt: skip
            epochs = policy.epochs or 3  # as the walk-forward backtest of the same policy
            train = TrainConfig(epochs=epochs, batch_size=t.batch_size, seed=t.seed,
                                learning_rate=t.learning_rate, threads=t.threads,
                                device=t.device)  # fmt: skip
            label = LabelSpec(horizon=t.horizon, deadzone_bp=t.label_deadzone_bp)
            refuse_regime_spec(FeatureEngine(t.feature_spec).spec)  # fails now, not later
        except SentioError as exc:
            raise OptionError(f"{source}: {exc}", flag="--policy") from None
        return cls(policy=policy, model=model, train=train, label=label,
                   feature_spec=t.feature_spec, validation_share=t.validation_share,
                   cpu_capability=t.cpu_capability, **places)  # fmt: skip

    def walkforward(self, data: Path) -> WalkForwardConfig:
        """The walk-forward config whose folds this retrainer trains: the same code path."""
        return WalkForwardConfig(
            policy=self.policy,
            strattest=StrattestConfig(data=(str(data),), cache_dir=None, seed=self.train.seed),
            model=self.model,
            train=self.train,
            label=self.label,
            feature_spec=self.feature_spec,
            validation_share=self.validation_share,
            cpu_capability=self.cpu_capability,
        )

    def to_dict(self) -> dict:
        return {
            "policy": self.policy.model_dump(),
            "model": self.model.to_dict(),
            "train": self.train.to_dict(),
            "label": dataclasses.asdict(self.label),
            "feature_spec": self.feature_spec,
            "validation_share": self.validation_share,
            "cpu_capability": self.cpu_capability,
        }


@dataclass(frozen=True)
class Stored:
    """One session file of the bar store."""

    date: str  # New York date, YYYY-MM-DD
    path: Path
    partial: bool  # cut by a restart of the live loop: the bars since the restart


@dataclass(frozen=True)
class CheckResult:
    """What one check did: ``wait`` (nothing to do), ``first`` (the first model promoted),
    ``promote``, ``refuse`` (gated, kept the incumbent), ``failed`` (training or gate failed,
    kept the incumbent) or ``stopped`` (asked to stop before it decided)."""

    action: str
    detail: str  # one line
    retrain: int | None = None  # the retraining's number (its fold seed's)
    version: str | None = None  # the candidate's registry version
    gate: dict | None = None  # the gate's numbers (GateDecision.to_dict), when one decided
    new_sessions: int = 0
    seconds: float | None = None  # wall time from combining the bars to the decision

    @property
    def trained(self) -> bool:
        return self.retrain is not None

    def line(self) -> str:
        head = "retrainer" if self.retrain is None else f"retrain {self.retrain}"
        took = "" if self.seconds is None else f" ({self.seconds:.2f} s)"
        return f"{head}: {self.action}: {self.detail}{took}"


def stored_sessions(store: Path) -> list[Stored]:
    """The closed sessions of a bar store, oldest first, from the file names alone (a file
    the live loop is still writing has a temporary name, so it is not listed)."""
    store = Path(store)
    if not store.is_dir():
        return []
    found = []
    for path in store.iterdir():
        match = STORED.match(path.name)
        if match and path.is_file():
            found.append(Stored(match.group(1), path, bool(match.group(2))))
    return sorted(found, key=lambda s: (s.date, s.partial))


def ny_date(ts: int) -> str:
    """The New York date of a bar time (ns UTC).

    >>> ny_date(1_757_943_000_000_000_000)
    '2025-09-15'
    """
    return pd.Timestamp(int(ts), tz="UTC").tz_convert(NEW_YORK).strftime("%Y-%m-%d")


def combine(history: list[Bars], store: list[Stored], out: Path) -> tuple[Path, list[str]]:
    """History and store as one canonical table at ``out`` (atomic); returns it and the store
    files left out (unreadable). A bar in both comes from the store. A sibling (TQQQ, PSQ,
    SQQQ) is kept only where every source has it as real bars for every QQQ minute; otherwise
    it is dropped, and the gate simulates it from QQQ (labelled) as strattest does. Segments
    are numbered again over the whole table (``assign_segments``)."""
    parts, real, skipped = [], {}, []
    sources = [("history", bars) for bars in history]
    for s in store:
        try:
            sources.append(("store", read_bars(s.path)))
        except SentioError as exc:
            skipped.append(f"{s.path.name} ({' '.join(str(exc).split())})")
    max_gap = DEFAULT_MAX_GAP_MIN
    for rank, (kind, bars) in enumerate(sources):
        if bars.interval_s != 60:
            raise RetrainError(f"{kind} bars of {bars.interval_s} s; the retrainer takes 1-minute")
        max_gap = int(bars.meta.get("max_gap_min", max_gap))
        frame = bars.frame[bars.frame["symbol"].isin(SYMBOLS)].assign(_rank=rank)
        parts.append(frame)
        for symbol in frame["symbol"].unique():
            real[symbol] = real.get(symbol, True) and not bars.is_simulated(symbol)
    if not parts:
        raise RetrainError("no bars: the store is empty and no --history was given")
    frame = pd.concat(parts, ignore_index=True).sort_values(["symbol", "ts", "_rank"])
    frame = frame.drop_duplicates(["symbol", "ts"], keep="last").drop(columns="_rank")
    qqq_ts = frame.loc[frame["symbol"] == "QQQ", "ts"].to_numpy(np.int64)
    if len(qqq_ts) == 0:
        raise RetrainError("no QQQ bars in the history or the store")
    keep = ["QQQ"]
    for symbol in SYMBOLS[1:]:
        ts = frame.loc[frame["symbol"] == symbol, "ts"].to_numpy(np.int64)
        if real.get(symbol) and np.isin(qqq_ts, ts).all():
            keep.append(symbol)
    frame = frame[frame["symbol"].isin(keep)].reset_index(drop=True)
    for symbol in keep:
        rows = np.flatnonzero(frame["symbol"].to_numpy() == symbol)
        ts = frame["ts"].to_numpy(np.int64)[rows]
        frame.loc[rows, "segment"] = assign_segments(ts, 60, max_gap).segment
    meta = {"interval_s": 60, "max_gap_min": max_gap,
            "simulated": {s: False for s in keep}, "source": "sentio retrainer"}  # fmt: skip
    write_bars(Bars(frame, meta), out, flag="--registry")
    return out, skipped


class Retrainer:
    """The retrainer of one registry (see the module's text). ``say`` gets every line."""

    def __init__(self, config: RetrainerConfig, say: Callable[[str], None] = print) -> None:
        self.config, self.say = config, say
        self.registry = ModelRegistry(config.registry)
        if Path(config.bar_store).exists() and not Path(config.bar_store).is_dir():
            raise OptionError(f"{config.bar_store} is a file; give the folder", flag="--bars")
        self.history = [read_bars(path) for path in config.history]  # refused now, not later
        names = [str(Path(p).resolve()) for p in config.history]
        for path in config.history:
            if names.count(str(Path(path).resolve())) > 1:
                raise OptionError(f"{path} is given twice", flag="--history")
        if self.history and not any("QQQ" in bars.symbols for bars in self.history):
            held = sorted({s for bars in self.history for s in bars.symbols})
            raise OptionError(
                f"no QQQ bars in {', '.join(map(str, config.history))} (they hold "
                f"{', '.join(held)}); the model trains on QQQ",
                flag="--history",
            )
        # the CPU pin must precede torch, and a missing train extra is said at the start, not
        # at the first training hours later (which would also pay torch's import)
        pin_cpu(config.cpu_capability)
        require_torch()
        if config.train.device == "cuda":
            import torch

            if not torch.cuda.is_available():
                raise OptionError("no CUDA device is visible to torch", flag="--device")
        self.work = Path(config.work)
        self.stop = threading.Event()
        self.stopped_by = ""  # the signal that ended run(), if one did
        self._lock: int | None = None

    # -- state ---------------------------------------------------------------------------

    def state(self) -> dict:
        """``{"retrains": n, "last_session": date or None}`` from WORK/state.json."""
        path = self.work / STATE
        if not path.exists():
            return {"retrains": 0, "last_session": None}
        try:
            doc = json.loads(path.read_text())
            return {"retrains": int(doc["retrains"]), "last_session": doc["last_session"]}
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise RetrainError(f"{path}: not a retrainer state ({exc}); remove it") from None

    def _save(self, state: dict) -> None:
        text = json.dumps(state, sort_keys=True).encode()
        write_bytes_atomic(self.work / STATE, text, flag="--registry")

    def _log(self, result: CheckResult, **more) -> None:
        entry = {"at": build_time().isoformat(), "action": result.action,
                 "detail": result.detail, "retrain": result.retrain, "version": result.version,
                 "gate": result.gate, "new_sessions": result.new_sessions, **more}  # fmt: skip
        self.work.mkdir(parents=True, exist_ok=True)
        with open(self.work / LOG, "a") as out:
            out.write(json.dumps(clean(entry), sort_keys=True) + "\n")

    @contextlib.contextmanager
    def held(self):
        """Hold WORK/lock (one retrainer per work folder); re-entrant within this object."""
        if self._lock is not None:
            yield
            return
        self.work.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.work / "lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise RetrainError(
                f"another retrainer is running on {self.work} (it holds {self.work / 'lock'})"
            ) from None
        self._lock = fd
        try:
            yield
        finally:
            self._lock = None
            os.close(fd)  # closing releases the lock

    def _data_end(self, version: str) -> str:
        """The New York date of the newest bar a registry version trained or was tested on."""
        meta = load_verified(self.registry.path(version))
        return ny_date(meta["data"]["splits"]["test"]["last_ts"])

    # -- one check -----------------------------------------------------------------------

    def check(self) -> CheckResult:
        """One pass: retrain, gate and publish when the policy says it is time (see the
        module's text); records the decision and returns it."""
        with self.held():
            state = self.state()
            store = stored_sessions(self.config.bar_store)
            current = self.registry.current()
            last = state["last_session"]
            if last is None and current is not None:
                last = self._data_end(current)
            new = sorted({s.date for s in store if last is None or s.date > last})
            every = self.config.policy.retrain_every
            if last is not None and len(new) < every:
                since = f"since {last}" if last else "so far"
                return CheckResult("wait", f"{len(new)} new closed session(s) {since}, "
                                   f"retrain every {every}", new_sessions=len(new))  # fmt: skip
            return self._retrain(state, store, current, len(new))

    def _retrain(self, state: dict, store: list[Stored], current, new: int) -> CheckResult:
        number = state["retrains"]
        folder = self.work / "candidates" / f"{number:04d}"
        shutil.rmtree(folder, ignore_errors=True)  # a candidate a kill left half-written
        record: dict = {}
        started = time.monotonic()
        try:
            data, skipped = combine(self.history, store, self.work / DATA)
            config = self.config.walkforward(data)
            qqq = read_bars(data).of("QQQ")
            ts = qqq["ts"].to_numpy(np.int64)
            session = clock_columns(ts)[1].astype(np.int64)
            ready = ready_sessions(config, qqq, session)
            window, shadow = self.config.policy.train_window, self.config.policy.shadow_sessions
            if len(ready) < window + shadow:
                return CheckResult("wait", f"{len(ready)} sessions with a warmed-up window; "
                                   f"the policy needs {window + shadow} (train_window + "
                                   "shadow_sessions)", new_sessions=new)  # fmt: skip
            fold = Fold(number, (ready[-window - shadow], ready[-shadow - 1]),
                        (ready[-shadow], ready[-1]),
                        (ready[-1] + 1, ready[-1] + self.config.policy.retrain_every))  # fmt: skip
            dates = session_dates(ts, session)
            record = {"train": [dates[fold.train[0]], dates[fold.train[1]]],
                      "shadow": [dates[fold.shadow[0]], dates[fold.shadow[1]]],
                      "skipped_store_files": skipped}  # fmt: skip
            if self.stop.is_set():
                return CheckResult("stopped", "asked to stop before training", new_sessions=new)
            warm = self._warm_start(current)
            run = dataclasses.replace(fold_run(config, fold, folder, warm),
                                      signing_key=self.config.signing_key)  # fmt: skip
            candidate = Path(train_fold(run))
            record["seed"], record["warm_start"] = run.train.seed, warm and str(warm)
            meta = load_verified(candidate)
            check_unseen(meta, ts, session, fold)
            failed = [c for c in verify(candidate, self.config.signing_key, torchscript=True)
                      if c.checked and not c.passed]  # fmt: skip
            if failed:
                raise RetrainError(f"the candidate fails model verify: {failed[0].name} "
                                   f"({failed[0].detail})")  # fmt: skip
            if self.stop.is_set():
                return CheckResult("stopped", "asked to stop before the gate", new_sessions=new)
            result = self._decide(fold, candidate, current, data, record, new)
        except Exception as exc:  # a long-lived process: one line, the incumbent stays
            detail = " ".join(str(exc).split()) or type(exc).__name__
            if not isinstance(exc, SentioError):
                detail = f"{type(exc).__name__}: {detail}"
            kept = f"; kept {current}" if current else ""
            result = CheckResult("failed", f"{excerpt(detail, 400)}{kept}", number,
                                 new_sessions=new)  # fmt: skip
        # the newest closed session seen (stored, or the newest the data ends with): the next
        # retraining waits for retrain_every sessions after it, whatever this one did ("" when
        # none was seen: a failed first model waits for stored sessions, it does not spin)
        seen = [s.date for s in store] + [state["last_session"] or ""]
        seen.append(record.get("shadow", [""])[-1])
        result = dataclasses.replace(result, seconds=round(time.monotonic() - started, 3))
        self._save({"retrains": number + 1, "last_session": max(seen)})
        self._log(result, **record, config=self.config.to_dict())
        if result.action != "failed":
            shutil.rmtree(folder, ignore_errors=True)  # the registry holds its copy
        return result

    def _warm_start(self, current: str | None) -> Path | None:
        """The current version's folder when the policy warm-starts and its network and
        feature spec are this run's (else training starts from scratch)."""
        if not (self.config.policy.warm_start and current):
            return None
        path = self.registry.path(current)
        meta = load_verified(path)
        spec = FeatureEngine(self.config.feature_spec).content_hash
        same = meta["config"] == self.config.model.to_dict()
        return path if same and meta["expects"]["spec_hash"] == spec else None

    def _decide(self, fold, candidate, current, data, record, new) -> CheckResult:
        """Gate ``candidate`` against ``current``, publish it and record the decision."""
        registry, number = self.registry, fold.number
        note = f"retrain {number}: trained on {record['train'][0]}..{record['train'][1]}"
        if current is None:
            version = registry.publish(candidate, note)
            reason = "first model (no incumbent to compare with)"
            registry.promote(version, reason, retrain=record)
            return CheckResult("first", f"promoted {version}: {reason}", number, version,
                               new_sessions=new)  # fmt: skip
        incumbent = registry.path(current)
        old, new_meta = load_verified(incumbent), load_verified(candidate)
        theirs, mine = old["expects"], new_meta["expects"]
        # rows a running stream context must hold for the model: T, or a causal model's reach
        rows = [m.get("reach_rows", m["expects"]["seq_len"]) for m in (new_meta, old)]
        gate = None
        if mine["spec_hash"] != theirs["spec_hash"] or rows[0] > rows[1]:
            promote = False
            reason = (
                f"kept the incumbent: a running live loop cannot take the candidate over (spec "
                f"{mine['spec_hash'][:12]}.../{rows[0]} rows vs the incumbent's "
                f"{theirs['spec_hash'][:12]}.../{rows[1]}); promote it by hand and "
                "start sentio live with a new --state"
            )
        else:  # the walk-forward backtest's gate, on the bars up to the shadow sessions' end
            config = self.config.walkforward(data)
            tables, _ = market_tables(config.strattest, {"data": {}})
            session = clock_columns(tables["QQQ"]["ts"].to_numpy(np.int64))[1].astype(np.int64)
            found: dict[Path, np.ndarray] = {}

            def probability_of(model: Path) -> np.ndarray:
                if model not in found:
                    context = SequenceContext(model, cache_dir=None)
                    found[model] = context.calculate_probability(tables["QQQ"])
                return found[model]

            decided = decide(config, candidate, incumbent, tables, session, fold, probability_of)
            promote, reason = bool(decided["promote"]), decided["reason"]
            gate = clean(decided) if "candidate" in decided else None  # None: no numbers
        version = registry.publish(candidate, note)
        if promote:
            registry.promote(version, reason, gate=gate, retrain=record)
        else:
            registry.refuse(version, reason, gate=gate, retrain=record)
        action = "promote" if promote else "refuse"
        return CheckResult(action, f"{version}: {reason}", number, version, gate, new)

    # -- the long-lived loop -------------------------------------------------------------

    def run(
        self,
        poll_seconds: float = 60.0,
        max_retrains: int | None = None,
        stop: threading.Event | None = None,
    ) -> int:
        """Check every ``poll_seconds`` until ``stop`` is set, SIGTERM or Ctrl-C arrives (the
        step under way finishes first; a second signal interrupts it), or ``max_retrains``
        retrainings were done. Returns how many were done."""
        self.stop = stop or self.stop
        done, said = 0, ""
        old = {}

        def handler(signum, frame):  # sets flags only: printing here could re-enter a print
            if self.stop.is_set():
                raise KeyboardInterrupt
            self.stopped_by = signal.Signals(signum).name
            self.stop.set()

        if threading.current_thread() is threading.main_thread():
            old = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGINT)}
        try:
            with self.held():
                while not self.stop.is_set():
                    result = self.check()
                    if result.line() != said or result.action != "wait":
                        self.say(result.line())
                        said = result.line()
                    done += result.trained
                    if max_retrains is not None and done >= max_retrains:
                        break
                    self.stop.wait(poll_seconds)
        finally:
            for s, h in old.items():
                signal.signal(s, h)
        return done


__all__ = [
    "CheckResult",
    "RetrainError",
    "Retrainer",
    "RetrainerConfig",
    "Stored",
    "TrainingSettings",
    "combine",
    "ny_date",
    "policy_keys",
    "read_policy",
    "settings",
    "stored_sessions",
]
