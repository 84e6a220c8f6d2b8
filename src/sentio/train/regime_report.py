"""What a fitted regime labeller says about a bar table (``sentio data regimes``).

Every figure is over LABELLED bars (``regime_id >= 0``; bars before the labeller's warm-up
carry -1 and are only counted):

- bar shares: the share of labelled bars in each regime;
- session regimes: a session's regime is the most frequent label among its labelled bars, a
  tie going to the earliest name in ``NAMES`` order (bull, bear, sideways, volatile); a session
  with no labelled bar has none;
- the transition matrix: counts of (regime of a session, regime of the next session of the
  table that has one), rows = from; each row divided by its total (rows sum to 1; a regime
  never left has no row);
- bar persistence: the share of pairs of consecutive labelled bars of one session that keep
  their label;
- agreement with a known truth (the built-in market's own regimes): the confusion matrix of
  true names (rows) against labels (columns), and the share of labelled bars whose label is
  the true name.

>>> ids = np.array([-1, 0, 0, 3, 3, 3, 1, 1])
>>> session = np.array([0, 0, 0, 0, 1, 1, 1, 1])
>>> bar_shares(ids)["count"], bar_shares(ids)["share"]["volatile"]
({'bull': 2, 'bear': 2, 'sideways': 0, 'volatile': 3}, 0.42857142857142855)
>>> session_regimes(ids, session)[1].tolist()  # session 1: volatile 2, bear 2 -> bear first
[0, 1]
>>> persistence(ids, session)  # pairs (0,0) (0,3) | (3,3) (3,1) (1,1)
(3, 5)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from sentio.core.hashing import content_hash
from sentio.features.regimes import NAMES

FIT_FRACTION = 0.7  # without --fit-on: the first 70 % of the table's sessions

_K = len(NAMES)


def fit_sessions(session: np.ndarray, fraction: float = FIT_FRACTION) -> np.ndarray:
    """The bars of the first ``fraction`` of the table's sessions (at least one session).

    >>> fit_sessions(np.array([5, 5, 6, 6, 7, 8]), 0.5).tolist()
    [True, True, True, True, False, False]
    """
    days = np.unique(session)
    keep = days[: max(1, int(len(days) * fraction))]
    return np.isin(session, keep)


def bar_shares(regime_id: np.ndarray) -> dict:
    """Counts and shares of labelled bars per regime, and the bars before the warm-up.

    >>> bar_shares(np.array([-1, -1, 2]))["before_warm_up"]
    2
    """
    ids = np.asarray(regime_id)
    labelled = ids[ids >= 0]
    counts = np.bincount(labelled, minlength=_K)
    return {
        "bars": len(ids),
        "labelled": int(counts.sum()),
        "before_warm_up": int((ids < 0).sum()),
        "count": dict(zip(NAMES, counts.tolist(), strict=True)),
        "share": _shares(counts),
    }


def session_regimes(regime_id: np.ndarray, session: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(sessions in table order, regime index of each; -1 where no bar is labelled).

    >>> session_regimes(np.array([-1, 2, 2, 3]), np.array([4, 4, 9, 9]))[1].tolist()
    [2, 2]
    """
    ids, session = np.asarray(regime_id), np.asarray(session)
    days, first = np.unique(session, return_index=True)
    days = days[np.argsort(first)]
    out = np.full(len(days), -1, dtype=np.int64)
    for i, day in enumerate(days):
        mine = ids[(session == day) & (ids >= 0)]
        if len(mine):
            out[i] = int(np.argmax(np.bincount(mine, minlength=_K)))  # ties: the first name
    return days, out


def transitions(day_regime: np.ndarray) -> np.ndarray:
    """(4, 4) counts of regime -> next labelled session's regime (sessions without one skipped).

    >>> transitions(np.array([0, 0, -1, 3, 0]))[0].tolist()
    [1, 0, 0, 1]
    """
    known = np.asarray(day_regime)
    known = known[known >= 0]
    out = np.zeros((_K, _K), dtype=np.int64)
    np.add.at(out, (known[:-1], known[1:]), 1)
    return out


def row_shares(counts: np.ndarray) -> list[list[float | None]]:
    """Each row divided by its total; a row without counts is all None.

    >>> row_shares(np.array([[1, 3], [0, 0]]))
    [[0.25, 0.75], [None, None]]
    """
    out = []
    for row in np.asarray(counts):
        total = row.sum()
        out.append([float(v / total) if total else None for v in row])
    return out


def persistence(regime_id: np.ndarray, session: np.ndarray) -> tuple[int, int]:
    """(pairs that keep their label, pairs) of consecutive labelled bars of one session."""
    ids, session = np.asarray(regime_id), np.asarray(session)
    pair = (ids[:-1] >= 0) & (ids[1:] >= 0) & (session[:-1] == session[1:])
    return int((ids[:-1] == ids[1:])[pair].sum()), int(pair.sum())


def agreement(true_name: np.ndarray, regime_id: np.ndarray) -> dict:
    """Confusion counts of true names (rows) x labels (columns, NAMES order) and the accuracy
    by name, over labelled bars.

    >>> a = agreement(np.array(["bull", "volatile", "bull"]), np.array([0, 3, 3]))
    >>> a["accuracy"], a["confusion"]["bull"]
    (0.6666666666666666, {'bull': 1, 'bear': 0, 'sideways': 0, 'volatile': 1})
    """
    ids = np.asarray(regime_id)
    truth = np.asarray(true_name, dtype=object)[ids >= 0]
    ids = ids[ids >= 0]
    rows = [*NAMES, *sorted(set(truth.tolist()) - set(NAMES))]  # a calibration's own names
    confusion = {
        name: dict(zip(NAMES, np.bincount(ids[truth == name], minlength=_K).tolist(), strict=True))
        for name in rows
    }
    hit = truth == np.asarray(NAMES, dtype=object)[ids]
    return {
        "bars": len(ids),
        "accuracy": float(hit.mean()) if len(ids) else None,
        "confusion": confusion,
    }


def report(labels: pd.DataFrame, session: np.ndarray, in_sample: np.ndarray, truth=None) -> dict:
    """Every figure of the module doc for ``labels`` (``regime_frame``'s output) of bars in
    ``session`` (session number per bar), split by ``in_sample`` (bars the labeller was fitted
    on); ``truth`` (true name per bar, or None) adds the agreement."""
    ids = labels["regime_id"].to_numpy(np.int64)
    in_sample = np.asarray(in_sample, dtype=bool)
    days, day_regime = session_regimes(ids, session)
    counts = np.bincount(day_regime[day_regime >= 0], minlength=_K)
    moves = transitions(day_regime)
    kept, pairs = persistence(ids, session)
    out = {
        "bar_shares": {
            "all": bar_shares(ids),
            "in_sample": bar_shares(ids[in_sample]),
            "out_of_sample": bar_shares(ids[~in_sample]),
        },
        "session_shares": {
            "sessions": len(days),
            "without_label": int((day_regime < 0).sum()),
            "count": dict(zip(NAMES, counts.tolist(), strict=True)),
            "share": _shares(counts),
            "rule": "most frequent label among the session's labelled bars; ties go to the "
            "earliest of " + ", ".join(NAMES),
        },
        "transitions": {"count": _by_name(moves.tolist()), "share": _by_name(row_shares(moves))},
        "bar_persistence": {"kept": kept, "pairs": pairs, "share": kept / pairs if pairs else None},
    }
    if truth is not None:
        truth = np.asarray(truth, dtype=object)
        out["agreement"] = {
            "all": agreement(truth, ids),
            "in_sample": agreement(truth[in_sample], ids[in_sample]),
            "out_of_sample": agreement(truth[~in_sample], ids[~in_sample]),
        }
    return out


def true_regimes(file: Path, meta: dict, ts: np.ndarray) -> tuple[np.ndarray | None, dict]:
    """The built-in market's own regime name of each bar ``ts`` of ``file``, and where it came
    from: ``regimes.parquet`` beside the file when its times cover the bars, else the market
    regenerated from the config in ``meta`` (only under the shipped calibration). (None, why)
    for a table that was not generated or whose regimes cannot be had."""
    from sentio.data.synth import load_params
    from sentio.data.synth.generate import SynthConfig, generate

    generator = meta.get("generator")
    if not isinstance(generator, dict) or not isinstance(generator.get("config"), dict):
        return None, {
            "available": False,
            "reason": "the table was not generated: it has no true regimes",
        }
    beside = Path(file).parent / "regimes.parquet"
    tried = ""
    if beside.is_file():
        try:
            table = pd.read_parquet(beside, columns=["ts", "regime"])
            names = _by_ts(table, ts)
        except (OSError, ValueError, KeyError, ImportError) as exc:  # pyarrow errors are these
            names, tried = None, f"{beside} unreadable ({type(exc).__name__}); "
        if names is not None:
            return names, {"available": True, "source": str(beside)}
        tried = tried or f"{beside} does not cover the table's bars; "
    params = load_params()
    shipped = content_hash(params.model_dump(mode="json"))
    if generator.get("calibration") != shipped:
        why = f"generated under calibration {generator.get('calibration')}, not the shipped one"
        return None, {"available": False, "reason": tried + why}
    try:
        config = SynthConfig(**generator["config"])
        regimes = generate(config, params).regimes
    except Exception as exc:  # noqa: BLE001 - any failure only means no truth to compare with
        return None, {"available": False, "reason": f"{tried}cannot regenerate it: {exc}"}
    names = _by_ts(regimes, ts)
    if names is None:
        return None, {"available": False, "reason": tried + "the regenerated market's times differ"}
    source = {"available": True, "source": "regenerated", "config": config.record()}
    return names, source


def _shares(counts: np.ndarray) -> dict:
    total = counts.sum()
    return {n: (float(c / total) if total else None) for n, c in zip(NAMES, counts, strict=True)}


def _by_name(matrix: list[list]) -> dict:
    """A (from, to) matrix in NAMES order as {from: {to: value}}."""
    return {a: dict(zip(NAMES, row, strict=True)) for a, row in zip(NAMES, matrix, strict=True)}


def shared_bars(frame: pd.DataFrame, other: pd.DataFrame) -> np.ndarray:
    """True for each bar of ``frame`` that ``other`` holds too: the same ts and the same open,
    high, low, close and volume (a fit file's bars that are also in the labelled file).

    >>> a = pd.DataFrame({"ts": [1, 2], "open": 1.0, "high": 1.0, "low": 1.0, "close": [1.0, 2.0],
    ...                   "volume": 5.0})
    >>> shared_bars(a, a.iloc[[1]]).tolist(), shared_bars(a, a.assign(close=9.0)).tolist()
    ([False, True], [False, False])
    """
    keys = ["ts", "open", "high", "low", "close", "volume"]
    both = frame[keys].merge(other[keys].drop_duplicates(), on=keys, how="left", indicator=True)
    return (both["_merge"] == "both").to_numpy()


def _by_ts(table: pd.DataFrame, ts: np.ndarray) -> np.ndarray | None:
    """The ``regime`` of each of ``ts`` in ``table`` (ts, regime), or None if any is missing."""
    stamps = table["ts"].to_numpy(np.int64)
    order = np.argsort(stamps, kind="stable")
    stamps = stamps[order]
    at = np.clip(np.searchsorted(stamps, ts), 0, max(len(stamps) - 1, 0))
    if len(stamps) == 0 or not (stamps[at] == ts).all():
        return None
    return table["regime"].to_numpy(object)[order][at].astype(str).astype(object)


__all__ = [
    "FIT_FRACTION",
    "agreement",
    "bar_shares",
    "fit_sessions",
    "persistence",
    "report",
    "row_shares",
    "session_regimes",
    "shared_bars",
    "transitions",
    "true_regimes",
]
