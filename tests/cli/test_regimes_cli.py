"""``sentio data regimes`` as a user runs it, through the real console script.

Every figure the command prints in --json is recomputed here from its --out file with pandas
and plain Python (dates by pandas' New York conversion, not the exchange calendar; modes by
``value_counts``; transitions by counting pairs), and the agreement with the built-in market's
true regimes from the generator's own ``regimes.parquet``.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sentio.features.regimes import HMM_BURN
from tests.cli.badinput import Case, assert_refused, run_script

NAMES = ["bull", "bear", "sideways", "volatile"]  # the documented order (ties, columns)
P = [f"p_{n}" for n in NAMES]
DAYS = 40  # sessions of the test market; the default fit is the first int(0.7 * 40) = 28
WARM_UP = 390  # the labeller's trend window: the first 390 bars are not fitted on
# the first bars without a label: the trend window, and for hmm the filter's burn-in as well
LABEL_WARM_UP = {"rules": WARM_UP, "hmm": WARM_UP + HMM_BURN}


def sentio(*args: str, cwd: Path | None = None):
    return run_script("sentio", *args, cwd=cwd)


def synth(out: Path, days: int, seed: int) -> Path:
    done = sentio("data", "synth", "--days", str(days), "--seed", str(seed), "--out", str(out))
    assert done.returncode == 0, done.stderr
    return out


def digest(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


@pytest.fixture(scope="module")
def market(tmp_path_factory) -> Path:
    return synth(tmp_path_factory.mktemp("market"), DAYS, 3)


@pytest.fixture(scope="module")
def labelled(market, tmp_path_factory):
    """labeller -> (--json document, --out frame), one run each."""
    tmp = tmp_path_factory.mktemp("labels")
    runs = {}
    for labeller in ("rules", "hmm"):
        out = tmp / f"{labeller}.parquet"
        done = sentio(
            "data", "regimes", str(market / "QQQ.parquet"), "--labeller", labeller,
            "--out", str(out), "--json",
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        runs[labeller] = (json.loads(done.stdout), pd.read_parquet(out))
    return runs


def session_day(ts: pd.Series) -> pd.Series:
    return pd.to_datetime(ts, utc=True).dt.tz_convert("America/New_York").dt.date


def shares(regime: pd.Series) -> dict:
    labelled = regime[regime != ""]
    counts = labelled.value_counts()
    return {n: counts.get(n, 0) / len(labelled) for n in NAMES}


@pytest.mark.parametrize("labeller", ["rules", "hmm"])
def test_labels_file_and_every_json_figure(market, labelled, labeller):
    doc, frame = labelled[labeller]
    bars = pd.read_parquet(market / "QQQ.parquet")
    assert len(frame) == len(bars) == DAYS * 390
    assert (frame["ts"].to_numpy() == bars["ts"].to_numpy()).all()
    probs = frame[P].to_numpy(np.float64)
    ready = frame["regime_id"].to_numpy() >= 0
    # one segment: exactly the first bars of the warm-up are unlabelled, with every p_* zero
    warm = LABEL_WARM_UP[labeller]
    assert not ready[:warm].any() and ready[warm:].all()
    assert (probs[~ready] == 0).all() and (frame["regime"][~ready] == "").all()
    tolerance = 0 if labeller == "rules" else 1e-5
    assert np.abs(probs[ready].sum(axis=1) - 1).max() <= tolerance
    if labeller == "rules":
        assert set(np.unique(probs)) <= {0.0, 1.0}
    argmax = np.array(NAMES)[probs[ready].argmax(axis=1)]
    assert (frame["regime"][ready].to_numpy() == argmax).all()
    assert (frame["regime_id"][ready].to_numpy() == probs[ready].argmax(axis=1)).all()

    # bar shares: all, and the fit's sessions (the first 28 New York dates) against the rest
    day = session_day(frame["ts"])
    dates = sorted(set(day))
    fit = day.isin(dates[: int(0.7 * DAYS)]).to_numpy()
    assert doc["fit"]["first_session"] == str(dates[0])
    assert doc["fit"]["last_session"] == str(dates[int(0.7 * DAYS) - 1])
    assert doc["fit"]["sessions"] == int(0.7 * DAYS) and doc["fit"]["bars"] == fit.sum() - WARM_UP
    assert doc["in_sample_bars"] == fit.sum() and doc["out_of_sample_bars"] == (~fit).sum()
    got = doc["bar_shares"]
    assert got["all"]["before_warm_up"] == warm
    for key, rows in (("all", slice(None)), ("in_sample", fit), ("out_of_sample", ~fit)):
        want = shares(frame["regime"][rows])
        assert got[key]["share"] == pytest.approx(want, abs=1e-12)
        assert sum(got[key]["share"].values()) == pytest.approx(1.0)

    # session regimes: the mode of each date's labelled bars, ties to the earliest name
    by_day = {}
    for date, names in frame["regime"][ready].groupby(day[ready], sort=True):
        counts = names.value_counts()
        top = counts.max()
        by_day[date] = min((n for n in counts.index if counts[n] == top), key=NAMES.index)
    sessions = doc["session_shares"]
    assert sessions["sessions"] == DAYS and sessions["without_label"] == DAYS - len(by_day)
    modes = Counter(by_day.values())
    assert sessions["count"] == {n: modes.get(n, 0) for n in NAMES}

    # transitions between consecutive labelled sessions, counted pair by pair
    regimes = [by_day[d] for d in sorted(by_day)]
    pairs = Counter(zip(regimes[:-1], regimes[1:], strict=True))
    moves = doc["transitions"]
    for a in NAMES:
        row = {b: pairs.get((a, b), 0) for b in NAMES}
        assert moves["count"][a] == row
        if sum(row.values()):
            assert moves["share"][a] == pytest.approx(
                {b: v / sum(row.values()) for b, v in row.items()}
            )
            assert sum(moves["share"][a].values()) == pytest.approx(1.0)

    # persistence: consecutive labelled bars of one date that keep their name
    same = (day == day.shift(-1)) & pd.Series(ready) & pd.Series(ready).shift(-1, fill_value=False)
    kept = (frame["regime"] == frame["regime"].shift(-1))[same]
    assert doc["bar_persistence"]["pairs"] == same.sum()
    assert doc["bar_persistence"]["kept"] == kept.sum()


def test_rules_recognise_the_built_in_markets_volatile_regime(market, labelled):
    doc, frame = labelled["rules"]
    truth = pd.read_parquet(market / "regimes.parquet")[["ts", "regime"]]
    both = frame.merge(truth, on="ts", suffixes=("", "_true"), validate="one_to_one")
    both = both[both["regime"] != ""]
    volatile = both[both["regime_true"] == "volatile"]
    recognised = (volatile["regime"] == "volatile").mean()
    assert recognised > 0.5, recognised  # a random labelling gives 0.25
    assert doc["truth"] == {"available": True, "source": str(market / "regimes.parquet")}
    table = pd.crosstab(both["regime_true"], both["regime"])
    agreement = doc["agreement"]["all"]
    for t in NAMES:
        assert agreement["confusion"][t] == {n: int(table.get(n, {}).get(t, 0)) for n in NAMES}
    assert agreement["accuracy"] == pytest.approx((both["regime"] == both["regime_true"]).mean())
    assert agreement["bars"] == len(both)


def test_truth_is_regenerated_when_regimes_parquet_is_not_beside(market, labelled, tmp_path):
    (tmp_path / "QQQ.parquet").write_bytes((market / "QQQ.parquet").read_bytes())
    done = sentio("data", "regimes", str(tmp_path / "QQQ.parquet"), "--labeller", "rules", "--json")
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert doc["truth"]["source"] == "regenerated" and doc["truth"]["config"]["seed"] == 3
    assert doc["agreement"] == labelled["rules"][0]["agreement"]


def test_fit_on_another_file_records_it(market, tmp_path):
    other = synth(tmp_path / "other", 30, 5) / "QQQ.parquet"
    done = sentio(
        "data", "regimes", str(market / "QQQ.parquet"), "--labeller", "hmm", "--seed", "11",
        "--fit-on", str(other), "--json",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    fit = doc["fit"]
    assert fit["file"] == str(other) and fit["symbol"] == "QQQ" and fit["seed"] == 11
    assert fit["sha256"] == hashlib.sha256(other.read_bytes()).hexdigest()
    assert fit["sessions"] == 30 and fit["bars"] == 30 * 390 - WARM_UP
    # another seed's market shares no bar with this one: every bar is out-of-sample
    assert doc["in_sample_bars"] == 0 and doc["out_of_sample_bars"] == DAYS * 390


def test_reading_never_writes(market, tmp_path):
    before = digest(market)
    done = sentio(
        "data", "regimes", str(market / "QQQ.parquet"), "--labeller", "rules", cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    for words in ("in-sample", "out-of-sample", "bar persistence", "Agreement, out-of-sample"):
        assert words in done.stdout
    assert digest(market) == before and list(tmp_path.iterdir()) == []


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> Path:
    """Three sessions: the first 70 % leave 2 x 390 - 390 bars past the warm-up, under 1,000."""
    return synth(tmp_path_factory.mktemp("small"), 3, 1)


REGIMES = ["data", "regimes", "{market}/QQQ.parquet"]
CASES = [
    Case("missing_file", ["data", "regimes", "{tmp}/none.parquet", "--labeller", "rules"],
         ["none.parquet", "not found"]),
    Case("not_canonical", ["data", "regimes", "{market}/regimes.parquet", "--labeller", "rules"],
         ["regimes.parquet", "canonical"]),
    Case("symbol_absent", [*REGIMES, "--labeller", "rules", "--symbol", "SPY"],
         ["QQQ.parquet", "SPY", "it has QQQ"]),
    Case("too_few_bars", ["data", "regimes", "{small}/QQQ.parquet", "--labeller", "rules"],
         ["390 bars", "1,000"]),
    Case("too_few_bars_fit_on", [*REGIMES, "--labeller", "hmm", "--fit-on", "{small}/QQQ.parquet"],
         ["780 bars", "1,000"]),
    Case("labeller_unknown", [*REGIMES, "--labeller", "kmeans"], ["--labeller", "kmeans"]),
    Case("labeller_missing", REGIMES, ["--labeller"]),
    Case("out_folder", [*REGIMES, "--labeller", "rules", "--out", "{tmp}"], ["--out", "directory"]),
    Case("out_is_file", [*REGIMES, "--labeller", "rules", "--out", "{market}/QQQ.parquet"],
         ["--out", "same file"]),
    Case("out_is_fit_on", [*REGIMES, "--labeller", "rules", "--fit-on", "{small}/QQQ.parquet",
                           "--out", "{small}/QQQ.parquet"], ["--out", "same file"]),
    Case("fit_on_missing", [*REGIMES, "--labeller", "rules", "--fit-on", "{tmp}/none.parquet"],
         ["--fit-on", "none.parquet"]),
    Case("fit_on_symbol_absent", [*REGIMES, "--labeller", "rules", "--fit-on",
                                  "{market}/TQQQ.parquet"], ["--fit-on", "TQQQ"]),
    Case("seed_negative", [*REGIMES, "--labeller", "hmm", "--seed", "-1"], ["--seed"]),
]  # fmt: skip


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_bad_input_is_refused_in_one_line(case, market, small, tmp_path):
    places = {"market": market, "small": small, "tmp": tmp_path}
    before = (digest(market), digest(small))
    done = sentio(*(a.format(**places) for a in case.args), cwd=tmp_path)
    assert_refused(done, *case.says)
    assert (digest(market), digest(small)) == before and list(tmp_path.iterdir()) == []
