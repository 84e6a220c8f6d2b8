"""``sentio sweep --grid FILE``: a grid of walk-forward runs, ranked, with the warning that
picking the best of many is itself a fit.

A grid file (TOML or JSON) has two tables: ``fixed``, one value per setting, shared by every
variant (the data, the walk-forward policy, epochs ...), and ``grid``, a list of values per
setting; every combination of the ``grid`` lists is one variant (the first key varies slowest,
in :data:`GRID_KEYS` order), and each variant is one walk-forward run
(:func:`sentio.backtest.walkforward.run_walkforward`) in its own folder ``variants/NNN``.
Setting names are ``strattest --mode walk-forward``'s flags with ``_`` for ``-`` (``preset``,
``horizon``, ``deadzone_bp``, ``train_window`` ...); ``seed`` is the training seed (every fold's
seed derives from it) and ``market_seed`` the seed of the built-in market and of the bootstrap,
the same for every variant so that all trade the same bars and resample them alike.

The variants are ranked by the stitched walk-forward run's mean session return (every traded
session is one block; :class:`~sentio.backtest.metrics.Summary` ``mean_rpb_pct``), with its
session-bootstrap 95% interval; the out-of-sample AUC with its session-bootstrap interval is
shown beside it. Every variant trades the same sessions: a variant's policy (a longer
``train_window`` or ``shadow_sessions``) decides when its first fold can trade, so every variant's schedule is planned before anything trains
(:func:`sentio.backtest.walkforward.planned_folds`) and all of them start trading at the latest
of those first sessions (``trade_from``; the data's end is common), which sweep.json records. A
variant the data cannot hold (no fold at all) is refused then, naming the grid file and its key. The best of ``n`` variants is the maximum of ``n`` noisy estimates, biased
upwards: the report says how many were tried and gives the best one's interval both at 95% and
at the Bonferroni level ``1 - 0.05 / n`` (the same 10,000 resamples), and says "no edge" when
that wider interval includes zero. The best variant's verdict line (``metrics.verdict``, as
strattest prints it: its net mean per session beside buy-and-hold's) states the count too.

>>> variants({"horizon": [1, 5], "seed": [7, 8]})
[{'horizon': 1, 'seed': 7}, {'horizon': 1, 'seed': 8}, {'horizon': 5, 'seed': 7}, {'horizon': 5, 'seed': 8}]
"""  # noqa: E501

from __future__ import annotations

import dataclasses
import itertools
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from sentio.backtest.metrics import bootstrap_mean_interval, verdict
from sentio.backtest.strattest import StrattestConfig
from sentio.backtest.walkforward import (
    BACKENDS,
    REPORT,
    SESSIONS,
    WalkForwardConfig,
    planned_folds,
    run_walkforward,
)
from sentio.core.errors import OptionError, SentioError, excerpt
from sentio.core.files import check_output, read_settings, write_bytes_atomic
from sentio.core.hashing import clean
from sentio.train.machine import CHOICES

SWEEP = "sweep.json"
LEVEL = 0.95
MAX_VARIANTS = 1_000  # a typo such as seed = [range of thousands] fails before any training
RANKED_BY = "walk-forward mean session return (%), stitched over every traded session"
# Settings that may vary (a list in ``grid``): model size, label, training seed, training, the
# retraining policy and the strategy's rule (horizon, dead zone and rule chosen together, net
# of costs: docs/evidence.md). In this order the variants are enumerated.
GRID_KEYS = (
    "preset", "d_model", "nhead", "num_layers", "sequence_length",
    "horizon", "deadzone_bp", "seed",
    "epochs", "learning_rate", "batch_size",
    "train_window", "retrain_every", "warm_start", "shadow_sessions", "gate_margin",
    "rule",
)  # fmt: skip
# Settings that stay (one value in ``fixed``): the data and market, the strategy's money, and
# anything of GRID_KEYS that does not vary.
FIXED_ONLY = (
    "data", "market_seed", "builtin_days", "signal_strength", "signal_flip_every",
    "feature_spec", "threads", "cpu_capability",
    "capital", "fill", "commission_per_share", "commission_min",
)  # fmt: skip
STRATTEST_KEYS = ("capital", "fill", "rule", "commission_per_share", "commission_min")
# The type of every setting's value (a TOML or JSON file could give anything); ranges are
# checked where the flags' are, when each variant's config is built.
INTS = ("d_model", "nhead", "num_layers", "sequence_length", "horizon", "seed", "epochs",
        "batch_size", "shadow_sessions", "market_seed", "builtin_days", "signal_flip_every",
        "threads")  # fmt: skip
NUMBERS = ("deadzone_bp", "learning_rate", "gate_margin", "signal_strength", "capital",
           "commission_per_share", "commission_min")  # fmt: skip
TEXTS = ("preset", "feature_spec", "cpu_capability", "fill", "rule")
SPANS = ("train_window", "retrain_every")  # 60 or "60d"
RENAMED = {"preset": "preset_name"}  # grid name -> WalkForwardConfig.from_flags argument
# The settings that decide whether the data holds a fold (named when a variant has none).
SCHEDULE_KEYS = ("train_window", "shadow_sessions", "sequence_length", "preset", "d_model",
                 "builtin_days", "data", "feature_spec")  # fmt: skip


@dataclass(frozen=True)
class Grid:
    """A parsed grid file: the fixed settings and the lists that vary (file order kept)."""

    file: Path
    fixed: dict
    grid: dict

    def to_dict(self) -> dict:
        return {"fixed": self.fixed, "grid": self.grid}


def _bad(file: Path, key: str, message: str) -> OptionError:
    return OptionError(f"{file}: {key}: {message}", flag="--grid")


SPAN_KEYS = ("train_window", "retrain_every")  # sessions: 5 and "5d" are one value


def read_grid(file: Path) -> Grid:
    """Read and check a grid file's shape: its tables, known keys, a list per grid key and a
    single value per fixed key. Values are checked by :func:`configs` (every variant's config
    is built before anything runs)."""
    file = Path(file)
    if not file.exists():
        raise OptionError(f"{file}: no such file", flag="--grid")
    if not file.is_file():
        raise OptionError(f"{file}: not a regular file; give a grid file", flag="--grid")
    if file.suffix.lower() not in (".toml", ".json"):
        raise OptionError(
            f"{file}: give a .toml or .json grid file, got {excerpt(file.suffix or 'none')}",
            flag="--grid",
        )
    document = read_settings(file, "--grid")
    if not isinstance(document, dict):
        raise _bad(file, "(top level)", "must be a table with 'fixed' and 'grid'")
    for key in document:
        if key not in ("fixed", "grid"):
            raise _bad(file, str(key), "unknown table; a grid file has 'fixed' and 'grid'")
    fixed, grid = document.get("fixed", {}), document.get("grid", {})
    for name, table in (("fixed", fixed), ("grid", grid)):
        if not isinstance(table, dict):
            raise _bad(file, name, f"must be a table of settings, got {excerpt(table)}")
    if not grid:
        raise _bad(file, "grid", f"give at least one list of values, of: {', '.join(GRID_KEYS)}")
    for key, values in grid.items():
        if key not in GRID_KEYS:
            hint = "fixed only: put it under 'fixed'" if key in FIXED_ONLY else "unknown setting"
            raise _bad(file, f"grid.{key}", f"{hint}; grid settings: {', '.join(GRID_KEYS)}")
        if not isinstance(values, list) or not values:
            raise _bad(file, f"grid.{key}", f"must be a non-empty list, got {excerpt(values)}")
        spans = [str(v).rstrip("d") if key in SPAN_KEYS else v for v in values]  # 5 == "5d"
        if len({json.dumps(v, sort_keys=True) for v in spans}) != len(values):
            raise _bad(file, f"grid.{key}", f"lists a value twice: {excerpt(values)}")
    for key, value in fixed.items():
        if key not in GRID_KEYS and key not in FIXED_ONLY:
            known = ", ".join((*FIXED_ONLY, *GRID_KEYS))
            raise _bad(file, f"fixed.{key}", f"unknown setting; settings: {known}")
        if key in grid:
            raise _bad(file, f"fixed.{key}", "also under 'grid'; give it in one table")
        if isinstance(value, dict) or (isinstance(value, list) and key != "data"):
            raise _bad(file, f"fixed.{key}", f"must be one value, got {excerpt(value)}")
    for key, value in [*((f"fixed.{k}", v) for k, v in fixed.items()),
                       *((f"grid.{k}[{i}]", v) for k, vs in grid.items() for i, v in enumerate(vs))]:  # fmt: skip  # noqa: E501
        problem = _type_problem(key.split(".", 1)[1].split("[")[0], value)
        if problem:
            raise _bad(file, key, f"{problem}, got {excerpt(value)}")
    data = fixed.get("data", "builtin")
    if data not in ("builtin", ["builtin"]):
        for key in ("builtin_days", "signal_strength", "signal_flip_every"):
            if key in fixed:
                raise _bad(file, f"fixed.{key}", "applies to data = 'builtin' only; drop it")
    count = math.prod(len(v) for v in grid.values())
    if count > MAX_VARIANTS:
        raise _bad(file, "grid", f"{count} variants; at most {MAX_VARIANTS}")
    return Grid(file, dict(fixed), dict(grid))


def _type_problem(name: str, value: object) -> str | None:
    """What is wrong with the type of ``value`` for setting ``name`` (None: nothing)."""
    integer = isinstance(value, int) and not isinstance(value, bool)
    if name in INTS and not integer:
        return "must be an integer"
    if name in ("horizon",) and integer and value < 1:
        return "must be at least 1 bar"
    if name in NUMBERS:
        if not (integer or isinstance(value, float)) or not math.isfinite(value):
            return "must be a number"
        if name == "deadzone_bp" and value < 0:
            return "must be 0 or more basis points"
    if name in TEXTS and not isinstance(value, str):
        return "must be a string"
    if name in SPANS and not (integer or isinstance(value, str)):
        return 'must be a number of sessions like 60 or "60d"'
    if name == "warm_start" and not isinstance(value, bool):
        return "must be true or false"
    if name == "data" and not (
        isinstance(value, str)
        or (
            isinstance(value, list) and value and all(isinstance(v, str) for v in value)
        )  # fmt: skip
    ):
        return 'must be a file name, "builtin", or a list of file names'
    return None


def variants(grid: dict) -> list[dict]:
    """Every combination of the grid's lists, in :data:`GRID_KEYS` order."""
    keys = [k for k in GRID_KEYS if k in grid]
    return [
        dict(zip(keys, combo, strict=True)) for combo in itertools.product(*[grid[k] for k in keys])
    ]  # noqa: E501


def config_of(fixed: dict, variant: dict) -> WalkForwardConfig:
    """One variant's walk-forward config (``strattest --mode walk-forward`` with these flags;
    the training seed set apart from the market's)."""
    settings = {**fixed, **variant}
    data = settings.pop("data", ["builtin"])
    data = [data] if isinstance(data, str) else list(data)
    market_seed = settings.pop("market_seed", 7)
    seed = settings.pop("seed", market_seed)
    strattest = StrattestConfig.from_flags(
        data=data,
        seed=market_seed,
        cache=False,
        **{k: settings.pop(k) for k in STRATTEST_KEYS if k in settings},
    )
    settings.setdefault("cpu_capability", "auto")  # as `sentio train`
    if settings["cpu_capability"] not in CHOICES:  # else it fails inside the first training
        raise OptionError(
            f"must be one of {', '.join(CHOICES)}, got {excerpt(settings['cpu_capability'])}",
            flag="--cpu-capability",
        )
    flags = {RENAMED.get(k, k): v for k, v in settings.items()}
    config = WalkForwardConfig.from_flags(strattest=strattest, **flags)
    if not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed < 2**31:
        raise OptionError(f"must be an integer 0 to 2**31 - 1, got {excerpt(seed)}", flag="seed")
    return dataclasses.replace(config, train=dataclasses.replace(config.train, seed=seed))


def configs(grid: Grid) -> list[WalkForwardConfig]:
    """Every variant's config, built (so checked) before any training: a bad value fails in
    one line naming the file and the setting."""
    out = []
    for number, variant in enumerate(variants(grid.grid)):
        try:
            out.append(config_of(grid.fixed, variant))
        except (SentioError, TypeError, ValueError) as exc:
            key = _culprit(exc, grid, variant)
            detail = " ".join(str(exc).split())
            raise _bad(grid.file, key, f"{detail} (variant {number}: {variant})") from None
    return out


def common_start(grid: Grid, built: list[WalkForwardConfig]) -> int:
    """The session number every variant starts trading at: the latest of the variants' own
    first traded sessions (:func:`~sentio.backtest.walkforward.planned_folds`: the data read,
    the features computed, nothing trained). A variant with no fold, or whose folds all end
    before that session, is refused in one line naming the grid file, the key and the
    variant's settings, before anything is written."""
    listed = variants(grid.grid)
    plans: dict[str, list] = {}
    schedules = []
    for number, (variant, config) in enumerate(zip(listed, built, strict=True)):
        # what training does (seed, epochs ...) cannot change which sessions the data holds
        key = json.dumps({k: v for k, v in config.to_dict().items() if k != "train"},
                         sort_keys=True, default=str)  # fmt: skip
        if key not in plans:
            try:
                plans[key] = planned_folds(config)
            except SentioError as exc:
                detail = " ".join(str(exc).split())
                raise _bad(grid.file, _culprit(exc, grid, variant),
                           f"{detail} (variant {number}: {variant})") from None  # fmt: skip
        folds = plans[key]
        if not folds:
            policy = config.policy
            need = policy.train_window + policy.shadow_sessions + 1
            raise _bad(
                grid.file,
                _schedule_key(grid, variant),
                f"variant {number} ({variant}) has no fold: the data's sessions with warmed-up "
                f"features are fewer than train_window {policy.train_window} + "
                f"shadow_sessions {policy.shadow_sessions} + 1 to trade = {need}; nothing ran",
            )
        schedules.append((number, variant, folds))
    start = max(folds[0].trade[0] for _, _, folds in schedules)
    for number, variant, folds in schedules:
        if folds[-1].trade[1] < start:  # a data end the variants do not share
            raise _bad(
                grid.file,
                _schedule_key(grid, variant),
                f"variant {number} ({variant}) trades nothing from session {start}, where "
                "another variant's first fold starts; nothing ran",
            )
    return start


def _schedule_key(grid: Grid, variant: dict) -> str:
    """The setting to name for a variant without a fold: the first varying one that decides
    the schedule, else the training window (given under ``fixed`` or its default)."""
    for name in SCHEDULE_KEYS:
        if name in variant:
            return f"grid.{name}"
    return "fixed.train_window"


def _culprit(exc: Exception, grid: Grid, variant: dict) -> str:
    """The setting an error is about: the one its flag names, else the first that varies."""
    flag = getattr(exc, "flag", None) or ""
    if not flag:  # an error without the attribute names its flag first ("--preset: ...")
        flag = str(exc).split(":", 1)[0] if str(exc).startswith("--") else ""
    # the flags of strattest --mode walk-forward that a setting is not named after; its
    # --seed is the market's (this module's own check of the training seed says "seed")
    name = {"--seed": "market_seed", "--label-deadzone-bp": "deadzone_bp",
            "--days": "builtin_days"}.get(flag, flag.lstrip("-").replace("-", "_"))  # fmt: skip
    if name in grid.grid:
        return f"grid.{name}"
    if name in grid.fixed or name == "market_seed":
        return f"fixed.{name}"
    return f"grid.{next(iter(variant))}" if variant else "fixed"


def run_sweep(
    grid: Grid,
    out: Path,
    *,
    backend: str = "local",
    address: str | None = None,
    progress: Callable[[int, int, str, int, int], None] | None = None,
) -> dict:
    """Run every variant (each a walk-forward run under ``out/variants/NNN``), rank them and
    write ``out/sweep.json``; returns its document. ``progress(variant, variants, stage, done,
    total)``. Every variant trades from :func:`common_start`'s session, and a variant without
    a fold is refused before ``out`` is created. On ``backend="ray"`` one Ray (local, or the
    cluster at ``address``) serves every variant, whose folds run as its tasks; the files are
    the same bytes as on ``local``."""
    if backend not in BACKENDS:
        raise OptionError(f"must be one of {', '.join(BACKENDS)}, got {excerpt(backend)}",
                          flag="--backend")  # fmt: skip
    if address is not None and backend != "ray":
        raise OptionError("applies to --backend ray only", flag="--ray-address")
    built = configs(grid)
    out = check_output(Path(out).absolute(), grid.file, flag="--out", directory=True)
    if out.exists() and any(out.iterdir()):
        raise OptionError(f"{out} exists and is not empty; choose a new folder", flag="--out")
    trade_from = common_start(grid, built)  # every schedule checked before anything is written
    tell = progress or (lambda *args: None)
    session = _backend_session(backend, address)
    with session:
        for number, config in enumerate(built):
            run_walkforward(
                config,
                out / "variants" / f"{number:03d}",
                backend=backend,
                address=address,
                trade_from=trade_from,
                progress=lambda stage, done, total, n=number: tell(
                    n, len(built), stage, done, total
                ),  # fmt: skip
            )
    document = summarize_sweep(grid, out)
    text = json.dumps(document, indent=2, sort_keys=True, allow_nan=False) + "\n"
    write_bytes_atomic(out / SWEEP, text.encode("utf-8"))
    return document


def _backend_session(backend: str, address: str | None):
    """One Ray for the whole sweep (its workers keep torch loaded between variants)."""
    if backend != "ray":
        import contextlib

        return contextlib.nullcontext()
    from sentio.backtest.cluster import ray_session

    return ray_session(address)


def summarize_sweep(grid: Grid, out: Path) -> dict:
    """The ranked table from the variants' walkforward.json and sessions.csv files."""
    listed = variants(grid.grid)
    rows = []
    traded = set()  # each variant's (first session, its traded dates)
    for number, variant in enumerate(listed):
        folder = out / "variants" / f"{number:03d}"
        report = json.loads((folder / REPORT).read_text())
        dates = pd.read_csv(folder / SESSIONS, dtype={"date": str})["date"].tolist()
        traded.add((report["schedule"][0]["trade"][0], tuple(dates)))
        summary = report["summary"]["walk_forward"]
        oos = report["out_of_sample"]["walk_forward"]
        rows.append(
            {
                "variant": number,
                "folder": f"variants/{number:03d}",
                "settings": variant,
                "folds": len(report["folds"]),
                "promoted": sum(bool(f["promoted"]) for f in report["folds"]),
                "sessions": report["sessions"],
                "mean_session_return_pct": summary["mean_rpb_pct"],
                "session_return_ci95_pct": summary["rpb_ci95_pct"],
                "single_mean_session_return_pct": report["summary"]["single_model"]["mean_rpb_pct"],
                "oos_auc": oos["auc"],
                "oos_auc_ci95": oos["auc_ci95"],
                "sharpe": summary["sharpe"],
                "max_drawdown_pct": summary["max_drawdown_pct"],
            }
        )
    ranked = sorted(rows, key=_rank_key)
    for rank, row in enumerate(ranked, 1):
        row["rank"] = rank
    best = ranked[0]
    tried = len(rows)
    level = 1 - (1 - LEVEL) / tried
    best_report = json.loads((out / best["folder"] / REPORT).read_text())
    seed = best_report["config"]["strattest"]["seed"]
    returns = pd.read_csv(out / best["folder"] / SESSIONS)["walk_forward_return_pct"]
    low, high = bootstrap_mean_interval(returns.to_numpy(np.float64) / 100, seed, level)
    adjusted = [100 * low, 100 * high]
    edge = not (adjusted[0] <= 0 <= adjusted[1]) and all(map(math.isfinite, adjusted))
    return clean(
        {
            "mode": "sweep",
            "grid": grid.to_dict(),
            "ranked_by": RANKED_BY,
            "variants_tried": tried,
            "sessions": _sessions_record(traded),
            "ranked": ranked,
            "best": {
                "variant": best["variant"],
                "settings": best["settings"],
                "mean_session_return_pct": best["mean_session_return_pct"],
                "session_return_ci95_pct": best["session_return_ci95_pct"],
                "bonferroni_level": level,
                "session_return_ci_bonferroni_pct": adjusted,
                "edge": edge,
            },
            "verdict": verdict(
                best_report["summary"]["walk_forward"],
                best_report["summary"]["buy_and_hold_qqq"],
                unit="session",
                tried=tried,
                corrected=adjusted,
            ).to_dict(),
            "warning": selection_warning(best, tried, level, adjusted, edge),
        }
    )


def _sessions_record(traded: set) -> dict:
    """The sessions the variants traded: the first (its number and date), the last date, how
    many, and whether every variant traded exactly those (a sweep's ``trade_from`` makes it
    so; a run that did not is said, not hidden)."""
    first, dates = max(traded)
    return {
        "first_session": first,
        "first_date": dates[0] if dates else None,
        "last_date": dates[-1] if dates else None,
        "count": len(dates),
        "same_for_every_variant": len(traded) == 1,
    }


def _rank_key(row: dict) -> tuple:
    """Highest mean session return first; an undefined one last; ties by variant number."""
    value = row["mean_session_return_pct"]
    defined = value is not None and math.isfinite(value)
    return (not defined, -value if defined else 0.0, row["variant"])


def selection_warning(best: dict, tried: int, level: float, adjusted: list, edge: bool) -> str:
    """The multiple-comparisons paragraph: how many were tried, the best one's intervals and
    the verdict ("no edge" when the Bonferroni interval includes zero).

    >>> print(selection_warning({"variant": 2, "session_return_ci95_pct": [-0.1, 0.3]}, 4,
    ...                         0.9875, [-0.2, 0.4], False))  # doctest: +NORMALIZE_WHITESPACE
    selection: 4 variants tried; the best (variant 2) is the largest of 4 noisy estimates, so
    it overstates. Its mean session return's 95% interval is -0.100 .. 0.300 %; at the
    Bonferroni level 98.75% (0.95 shared by 4 variants) it is -0.200 .. 0.400 %, which includes
    zero: no edge.
    """
    low95, high95 = best["session_return_ci95_pct"]
    text = (
        f"selection: {tried} variant{'s' if tried != 1 else ''} tried; the best (variant "
        f"{best['variant']}) is the largest of {tried} noisy estimates, so it overstates. "
        f"Its mean session return's 95% interval is {low95:.3f} .. {high95:.3f} %; at the "
        f"Bonferroni level {100 * level:.4g}% (0.95 shared by {tried} variant"
        f"{'s' if tried != 1 else ''}) it is {adjusted[0]:.3f} .. {adjusted[1]:.3f} %, "
    )
    if edge:
        side = "positive" if adjusted[0] > 0 else "negative"
        return text + f"which excludes zero: a {side} mean session return."
    return text + "which includes zero: no edge."


__all__ = [
    "FIXED_ONLY",
    "GRID_KEYS",
    "RANKED_BY",
    "SWEEP",
    "Grid",
    "common_start",
    "config_of",
    "configs",
    "read_grid",
    "run_sweep",
    "selection_warning",
    "summarize_sweep",
    "variants",
]
