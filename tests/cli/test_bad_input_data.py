"""Bad input to ``sentio data ...`` and ``sentio features ...``, through the real console script.

One case per class of bad input (issue 12, sections 2-4). Every case must exit 2 with one
``error:`` line naming the flag, file, row, field or rule (``says``), print no traceback, and
leave the folder it works in exactly as it was: no output appeared, no input changed.

The inputs are written here, so each expected row and field is known by construction.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sentio.data import write_bars
from sentio.data.synth import SynthConfig, generate
from tests.cli.badinput import Case, assert_refused, run_script
from tests.cli.test_features_cli import strict_json

HEADER = "datetime,open,high,low,close,volume\n"
GOOD_ROW = "2025-09-15 09:30:00,100,101,99,100.5,1000\n"


def ibkr_csv(path: Path, *rows: str) -> Path:
    """An IBKR-format CSV (naive New York times); the first data row is row 2."""
    path.write_text(HEADER + "".join(rows))
    return path


def edited(source: Path, target: Path, edit) -> Path:
    """A copy of a canonical table with ``edit(frame)`` applied and its metadata kept."""
    table = pq.read_table(source)
    frame = table.to_pandas()
    edit(frame)
    out = pa.Table.from_pandas(frame, schema=table.schema, preserve_index=False)
    pq.write_table(out.replace_schema_metadata(table.schema.metadata), target)
    return target


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> dict[str, Path]:
    """Every input the cases name, in one folder (``{tmp}`` is that folder)."""
    tmp = tmp_path_factory.mktemp("corpus")
    files: dict[str, Path] = {"tmp": tmp}
    files["dir"] = tmp / "folder"
    files["dir"].mkdir()
    minutes = pd.date_range("2025-09-15 09:30", periods=20, freq="1min")
    files["ok_csv"] = ibkr_csv(
        tmp / "QQQ_ok.csv", *[f"{t:%Y-%m-%d %H:%M:%S},100,101,99,100.5,1000\n" for t in minutes]
    )
    files["ok_link"] = tmp / "ok_link.csv"
    files["ok_link"].symlink_to(files["ok_csv"])
    files["generic"] = tmp / "bars.csv"
    files["generic"].write_text("t,open,high,low,close,volume\n2025-09-15 13:30:00,1,1,1,1,1\n")
    files["far"] = ibkr_csv(tmp / "QQQ_far.csv", "9999-12-31 10:00:00,1,1,1,1,1\n")
    files["y2200"] = ibkr_csv(tmp / "QQQ_2200.csv", GOOD_ROW, "2200-01-02 10:00:00,1,1,1,1,1\n")
    soon = pd.Timestamp.now(tz="America/New_York") + pd.Timedelta(days=400)
    files["soon"] = ibkr_csv(tmp / "QQQ_soon.csv", f"{soon:%Y-%m-%d} 10:00:00,1,1,1,1,1\n")
    files["huge_price"] = ibkr_csv(tmp / "QQQ_price.csv", "2025-09-15 10:00:00,1e308,1e308,1,1,1\n")
    files["huge_volume"] = ibkr_csv(tmp / "QQQ_vol.csv", "2025-09-15 10:00:00,1,1,1,1,1e14\n")
    files["epoch"] = tmp / "QQQ_epoch.csv"
    files["epoch"].write_text("ts,open,high,low,close,volume\n1e30,1,1,1,1,1\n")
    files["big_cell"] = ibkr_csv(
        tmp / "QQQ_cell.csv", "2025-09-15 10:00:00,1," + "x" * 10**7 + ",1,1,1\n"
    )
    five = pd.date_range("2025-09-15 09:30", periods=20, freq="5min")
    files["five"] = ibkr_csv(tmp / "QQQ.csv", *[f"{t:%Y-%m-%d %H:%M:%S},1,1,1,1,1\n" for t in five])

    vendor = pd.DataFrame(
        {"symbol": [None] * 3, "open": 1.0, "high": 1.0, "low": 1.0, "close": 1.0, "volume": 1.0},
        index=pd.DatetimeIndex(
            pd.date_range("2025-09-15 13:30", periods=3, freq="1min"), name="ts"
        ),
    )
    files["null_symbol"] = tmp / "nullsym.parquet"
    vendor.to_parquet(files["null_symbol"])
    files["vendor_parquet"] = tmp / "vendor.parquet"
    vendor.assign(symbol="QQQ").to_parquet(files["vendor_parquet"])
    files["text_parquet"] = tmp / "QQQ_text.parquet"
    files["text_parquet"].write_text("not parquet at all\n")

    market = generate(SynthConfig(seed=3, days=2))
    files["qqq"] = write_bars(market.bars["QQQ"], tmp / "QQQ.parquet")
    files["psq"] = write_bars(market.bars["PSQ"], tmp / "PSQ.parquet")
    files["qqq_link"] = tmp / "qqq_link.parquet"
    files["qqq_link"].symlink_to(files["qqq"])
    files["truncated"] = tmp / "QQQ_truncated.parquet"
    files["truncated"].write_bytes(files["qqq"].read_bytes()[:300])

    def nan_close(frame):
        frame.loc[10, "close"] = np.nan

    def negative_close(frame):
        frame.loc[10, ["open", "low", "close"]] = -3.0

    def duplicate_ts(frame):
        frame.loc[10, "ts"] = frame.loc[9, "ts"]

    files["nan_close"] = edited(files["qqq"], tmp / "nan_close.parquet", nan_close)
    files["negative_close"] = edited(files["qqq"], tmp / "negative.parquet", negative_close)
    files["duplicate_ts"] = edited(files["qqq"], tmp / "dup.parquet", duplicate_ts)
    table = pq.read_table(files["qqq"])
    files["bad_meta"] = tmp / "bad_meta.parquet"
    pq.write_table(table.replace_schema_metadata({b"sentio": b"{not json"}), files["bad_meta"])

    # Issue 12, round 2: tables edited after import that every command accepted.
    def symbol(text):
        def edit(frame):
            frame.loc[0, "symbol"] = text

        return edit

    def segment(frame):  # one bar in the middle of a one-segment day moved to segment 5
        frame.loc[10, "segment"] = 5

    files["symbol_newline"] = edited(files["qqq"], tmp / "sym_nl.parquet", symbol("QQQ\nerror: x"))
    files["symbol_huge"] = edited(files["qqq"], tmp / "sym_huge.parquet", symbol("Q" * 200_000))
    files["segment_edited"] = edited(files["qqq"], tmp / "segment.parquet", segment)
    meta = json.loads(table.schema.metadata[b"sentio"])

    def with_meta(name: str, **changes) -> None:
        files[name] = tmp / f"{name}.parquet"
        body = json.dumps({**meta, **changes}).encode()
        pq.write_table(table.replace_schema_metadata({b"sentio": body}), files[name])

    with_meta("relabelled_5min", interval_s=300)  # 1-minute bars said to be 5-minute bars
    with_meta("simulated_text", simulated={"QQQ": "no"})
    with_meta("other_format", format="other/9")
    offset_row = "2025-09-15 09:31:00Z,1,1,1,1,1\n"
    files["mixed_tz"] = ibkr_csv(
        tmp / "QQQ_mixed.csv", GOOD_ROW, offset_row, "2025-09-15 09:32:00,1,1,1,1,1\n"
    )
    files["fifo"] = tmp / "QQQ_fifo.csv"
    os.mkfifo(files["fifo"])

    def spec(name: str, text: str) -> None:
        files[name] = tmp / f"{name}.json"
        files[name].write_text(text)

    spec("window_1e9", json.dumps({"features": [{"op": "SMA", "window": 10**9}]}))
    spec("window_2_64", json.dumps({"features": [{"op": "SMA", "window": 2**64}]}))
    spec("ema_1e12", '{"features": [{"op": "EMA", "window": 1e12}]}')
    spec("deep", '{"features": [{"op": "EMA", "x": ' + "[" * 100_000 + "]" * 100_000 + "}]}")
    spec("bad_calibration", '{"sessions": "many"}')
    spec("window_5000_digits", '{"features": [{"op": "EMA", "window": ' + "9" * 5000 + "}]}")
    spec("name_surrogate", r'{"features": [{"op": "EMA", "window": 3, "name": "a\ud800b"}]}')
    spec("name_newline", r'{"features": [{"op": "EMA", "window": 3, "name": "a\nerror: b"}]}')
    spec("name_ts", '{"features": [{"op": "EMA", "window": 3, "name": "ts"}]}')
    spec("typo_param", '{"features": [{"op": "EMA", "windw": 5, "name": "ema5"}]}')
    spec("typo_policy", '{"features": [{"op": "EMA"}], "alignment_policy": {"pad_valu": 1}}')
    spec("param_not_taken", '{"features": [{"op": "IDENT", "window": 5}]}')
    spec("schema_99", '{"features": [{"op": "EMA"}], "schema_version": "99.0"}')
    spec("duplicate_key", '{"features": [{"op": "EMA", "window": 3, "window": 70000}]}')
    spec("k_huge", '{"features": [{"op": "BOLLINGER_UPPER", "k": 1e308}]}')
    spec("k_negative", '{"features": [{"op": "BOLLINGER_UPPER", "k": -5}]}')
    return files


CASES = [
    # --- data import: inputs that are not files, flags that cannot work
    Case("import-directory", ["data", "import", "{dir}", "--out", "{tmp}/o.parquet"],
         ["folder", "is a directory"]),
    Case("import-unknown-tz", ["data", "import", "{generic}", "--ts-col", "t", "--tz",
         "Mars/Olympus", "--symbol", "QQQ", "--out", "{tmp}/o.parquet"], ["--tz", "Mars/Olympus"]),
    Case("import-split-not-a-date", ["data", "import", "{ok_csv}", "--split", "2025-13-45:0.5",
         "--out", "{tmp}/o.parquet"], ["--split", "not a calendar date"]),
    Case("import-split-malformed", ["data", "import", "{ok_csv}", "--split", "2025-01-01",
         "--out", "{tmp}/o.parquet"], ["--split", "DATE:RATIO"]),
    Case("import-split-divides-by-zero", ["data", "import", "{ok_csv}", "--split",
         "2025-01-01:1/0", "--out", "{tmp}/o.parquet"], ["--split", "divides by zero"]),
    Case("import-interval-not-minutes", ["data", "import", "{ok_csv}", "--interval", "30s",
         "--out", "{tmp}/o.parquet"], ["--interval", "whole minutes"]),
    Case("import-max-gap-unbounded", ["data", "import", "{ok_csv}", "--max-gap",
         "99999999999999999999", "--out", "{tmp}/o.parquet"], ["--max-gap", "0 to 390"]),
    Case("import-symbol-too-long", ["data", "import", "{ok_csv}", "--symbol", "Q" * 5000,
         "--out", "{tmp}/o.parquet"], ["--symbol", "characters"]),
    # --- data import: outputs that would destroy an input
    Case("import-out-is-input", ["data", "import", "{ok_csv}", "--out", "{ok_csv}"],
         ["--out", "same file"]),
    Case("import-out-is-input-via-symlink", ["data", "import", "{ok_csv}", "--out", "{ok_link}"],
         ["--out", "same file"]),
    Case("import-out-is-a-directory", ["data", "import", "{ok_csv}", "--out", "{dir}"],
         ["--out", "is a directory"]),
    # --- data import: rows no market produces
    Case("import-date-beyond-pandas", ["data", "import", "{far}", "--out", "{tmp}/o.parquet"],
         ["row 2", "ts_out_of_range", "9999-12-31"]),
    Case("import-date-2200", ["data", "import", "{y2200}", "--out", "{tmp}/o.parquet"],
         ["row 3", "'datetime'", "ts_out_of_range", "2200-01-02"]),
    Case("import-date-next-year", ["data", "import", "{soon}", "--out", "{tmp}/o.parquet"],
         ["row 2", "ts_out_of_range"]),
    Case("import-epoch-1e30", ["data", "import", "{epoch}", "--ts-col", "ts", "--ts-unit", "s",
         "--out", "{tmp}/o.parquet"], ["row 2", "ts_out_of_range", "1e+30"]),
    Case("import-price-1e308", ["data", "import", "{huge_price}", "--out", "{tmp}/o.parquet"],
         ["row 2", "'open'", "price_too_large"]),
    Case("import-volume-1e14", ["data", "import", "{huge_volume}", "--out", "{tmp}/o.parquet"],
         ["row 2", "'volume'", "volume_too_large"]),
    Case("import-10MB-cell-is-excerpted", ["data", "import", "{big_cell}", "--out",
         "{tmp}/o.parquet"], ["row 2", "'high'", "non_numeric", "(10000002 characters)"]),
    Case("import-symbol-all-null", ["data", "import", "{null_symbol}", "--out", "{tmp}/o.parquet"],
         ["row 1", "'symbol'", "missing_symbol"]),
    Case("import-truncated-parquet", ["data", "import", "{truncated}", "--out",
         "{tmp}/o.parquet"], ["QQQ_truncated.parquet", "not a readable Parquet"]),
    Case("import-text-named-parquet", ["data", "import", "{text_parquet}", "--out",
         "{tmp}/o.parquet"], ["QQQ_text.parquet", "not a readable Parquet"]),
    Case("import-mixed-offset-and-naive-times", ["data", "import", "{mixed_tz}", "--out",
         "{tmp}/o.parquet"], ["row 3", "'datetime'", "carries a UTC offset", "2 other row(s)"]),
    Case("import-fifo-does-not-hang", ["data", "import", "{fifo}", "--out", "{tmp}/o.parquet"],
         ["QQQ_fifo.csv", "not a regular file"]),
    Case("import-split-date-repeated", ["data", "import", "{ok_csv}", "--split", "2025-09-16:2",
         "--split", "2025-09-16:2", "--out", "{tmp}/o.parquet"], ["--split", "given twice"]),
    Case("import-5min-bars-as-1min", ["data", "import", "{five}", "--out", "{tmp}/o.parquet"],
         ["rule interval", "--interval 5min"]),
    # --- data info / align: canonical tables are checked with the import's rules
    Case("info-of-a-csv", ["data", "info", "{ok_csv}"], ["QQQ_ok.csv", "not a readable Parquet"]),
    Case("info-of-a-vendor-parquet", ["data", "info", "{vendor_parquet}"],
         ["not a canonical Sentio table"]),
    Case("info-of-a-directory", ["data", "info", "{dir}"], ["is a directory"]),
    Case("info-metadata-not-json", ["data", "info", "{bad_meta}"], ["metadata is not JSON"]),
    Case("info-nan-close", ["data", "info", "{nan_close}"], ["row 11", "'close'", "non_finite"]),
    Case("info-symbol-with-newline", ["data", "info", "{symbol_newline}"],
         ["row 1", "'symbol'", "bad_symbol", r"'QQQ\nerror: x'"]),
    Case("info-symbol-200000-characters", ["data", "info", "{symbol_huge}"],
         ["row 1", "bad_symbol", "(200002 characters)"]),
    Case("info-segment-edited", ["data", "info", "{segment_edited}"],
         ["row 11", "'segment'", "rule segments", "segment 5", "give segment 0"]),
    Case("info-1min-bars-labelled-5min", ["data", "info", "{relabelled_5min}"],
         ["row 2", "rule interval", "interval_s 300"]),
    Case("info-simulated-not-a-bool", ["data", "info", "{simulated_text}"],
         ["'simulated'", "'no'"]),
    Case("info-format-not-sentio", ["data", "info", "{other_format}"],
         ["'format'", "'other/9'", "sentio.bars/1"]),
    Case("align-duplicate-ts", ["data", "align", "{duplicate_ts}", "{psq}", "--out",
         "{tmp}/a.parquet"], ["row 11", "'ts'", "duplicate_ts"]),
    Case("align-out-is-input", ["data", "align", "{qqq}", "{psq}", "--out", "{qqq_link}"],
         ["--out", "same file"]),
    # --- data synth / calibrate
    Case("synth-start-not-a-date", ["data", "synth", "--out", "{tmp}/m", "--start", "2025-13-45"],
         ["--start", "2025-13-45"]),
    Case("synth-in-the-future", ["data", "synth", "--out", "{tmp}/m", "--start", "2200-01-02",
         "--days", "3"], ["--start", "in the future"]),
    Case("synth-days-unbounded", ["data", "synth", "--out", "{tmp}/m", "--days", "1000000000"],
         ["--days", "10,000"]),
    Case("synth-out-is-a-file", ["data", "synth", "--out", "{ok_csv}", "--days", "2"],
         ["--out", "is a file"]),
    Case("synth-calibration-invalid", ["data", "synth", "--out", "{tmp}/m", "--days", "2",
         "--calibration", "{bad_calibration}"], ["bad_calibration.json", "sessions"]),
    Case("synth-calibration-is-a-fifo", ["data", "synth", "--out", "{tmp}/m", "--days", "2",
         "--calibration", "{fifo}"], ["QQQ_fifo.csv", "not a regular file"]),
    Case("calibrate-out-is-input", ["data", "calibrate", "{ok_csv}", "--out", "{ok_link}"],
         ["--out", "same file"]),
    Case("calibrate-directory", ["data", "calibrate", "{dir}", "--out", "{tmp}/c.json"],
         ["is a directory"]),
    # --- features
    Case("features-spec-is-a-directory", ["features", "compute", "--spec", "{dir}", "--data",
         "{qqq}", "--out", "{tmp}/f.parquet"], ["folder", "is not a file"]),
    Case("features-window-1e9", ["features", "compute", "--spec", "{window_1e9}", "--data",
         "{qqq}", "--out", "{tmp}/f.parquet"], ["'window'", "100,000"]),
    Case("features-window-2-64", ["features", "list", "--spec", "{window_2_64}"],
         ["'window'", "18446744073709551616"]),
    Case("features-ema-window-1e12", ["features", "hash", "{ema_1e12}"],
         ["'window'", "valid integer"]),
    Case("features-spec-nested-100000", ["features", "check", "--spec", "{deep}", "--data",
         "{qqq}"], ["deep.json", "nested too deeply"]),
    Case("features-out-is-data", ["features", "compute", "--spec", "intraday_default", "--data",
         "{qqq}", "--out", "{qqq}"], ["--out", "same file"]),
    Case("features-out-is-data-via-symlink", ["features", "compute", "--spec", "intraday_default",
         "--data", "{qqq}", "--out", "{qqq_link}"], ["--out", "same file"]),
    Case("features-negative-close", ["features", "compute", "--spec", "intraday_default",
         "--data", "{negative_close}", "--out", "{tmp}/f.parquet"],
         ["row 11", "non_positive_price"]),
    Case("features-unknown-symbol", ["features", "compute", "--spec", "intraday_default",
         "--data", "{qqq}", "--symbol", "XYZ", "--out", "{tmp}/f.parquet"],
         ["'XYZ'", "not in this table"]),
    Case("synth-seed-negative", ["data", "synth", "--out", "{tmp}/m", "--days", "2", "--seed",
         "-1"], ["--seed", "got -1"]),
    Case("features-check-seed-negative", ["features", "check", "--spec", "intraday_default",
         "--data", "{qqq}", "--seed", "-1"], ["--seed", "got -1"]),
    Case("features-window-of-5000-digits", ["features", "hash", "{window_5000_digits}"],
         ["window_5000_digits.json", "not valid JSON", "5000 digits"]),
    Case("features-name-lone-surrogate", ["features", "compute", "--spec", "{name_surrogate}",
         "--data", "{qqq}", "--out", "{tmp}/f.parquet"], ["feature 0", "'name'", "surrogate"]),
    Case("features-name-with-newline", ["features", "list", "--spec", "{name_newline}"],
         ["feature 0", "'name'", "control"]),
    Case("features-name-reserved", ["features", "compute", "--spec", "{name_ts}", "--data",
         "{qqq}", "--out", "{tmp}/f.parquet"], ["feature 0", "'name'", "'ts' is reserved"]),
    Case("features-unknown-key", ["features", "hash", "{typo_param}"],
         ["feature 0", "'windw'", "did you mean 'window'"]),
    Case("features-unknown-policy-key", ["features", "hash", "{typo_policy}"],
         ["'alignment_policy.pad_valu'", "did you mean 'pad_value'"]),
    Case("features-parameter-the-op-does-not-take", ["features", "list", "--spec",
         "{param_not_taken}"], ["feature 0", "'window'", "IDENT does not take"]),
    Case("features-unknown-schema-version", ["features", "hash", "{schema_99}"],
         ["'schema_version'", "'99.0'"]),
    Case("features-duplicate-key", ["features", "hash", "{duplicate_key}"],
         ["duplicate_key.json", "'window' is written twice"]),
    Case("features-k-1e308", ["features", "compute", "--spec", "{k_huge}", "--data", "{qqq}",
         "--out", "{tmp}/f.parquet"], ["feature 0", "'k'", "1e+308"]),
    Case("features-k-negative", ["features", "hash", "{k_negative}"],
         ["feature 0", "'k'", "got -5"]),
    Case("features-empty-symbol-is-not-every-symbol", ["features", "compute", "--spec",
         "intraday_default", "--data", "{qqq}", "--symbol", "", "--out", "{tmp}/f.parquet"],
         ["symbol ''", "not in this table"]),
    Case("features-list-markdown-and-json", ["features", "list", "--markdown", "--json"],
         ["--json", "not both"]),
    Case("features-samples-unbounded", ["features", "check", "--spec", "intraday_default",
         "--data", "{qqq}", "--samples", "1000000000000"], ["--samples"]),
]  # fmt: skip


def snapshot(folder: Path) -> dict[str, str]:
    """sha256 of every file under ``folder`` (symlinks by their target's name)."""
    out = {}
    for path in sorted(folder.rglob("*")):
        if path.is_symlink():
            out[str(path)] = f"-> {path.readlink()}"
        elif path.is_file():
            out[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
        else:
            out[str(path)] = "dir"
    return out


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_bad_input_is_one_line_and_changes_nothing(case, corpus):
    args = [arg.format(**{k: str(v) for k, v in corpus.items()}) for arg in case.args]
    before = snapshot(corpus["tmp"])
    done = run_script(case.script, *args, cwd=corpus["tmp"])
    assert_refused(done, *case.says)
    assert snapshot(corpus["tmp"]) == before  # no output appeared, no input changed


def test_repair_drop_reports_the_declared_interval_not_the_survivors_spacing(tmp_path):
    """Issue 12: three bad rows dropped left 2 bars 4 minutes apart, and the import reported
    "240 s" bars with no hole. The interval is 1 minute (the format's), so 3 minutes are a hole."""
    times = pd.date_range("2025-09-15 09:30", periods=5, freq="1min")
    rows = [
        f"{t:%Y-%m-%d %H:%M:%S},1,{0.5 if 0 < i < 4 else 1},1,1,1\n" for i, t in enumerate(times)
    ]
    path = ibkr_csv(tmp_path / "QQQ_drop.csv", *rows)
    out = tmp_path / "o.parquet"
    done = run_script("sentio", "data", "import", str(path), "--out", str(out), "--repair",
                      "drop", "--json")  # fmt: skip
    assert done.returncode == 0, done.stderr
    report = strict_json(done.stdout)
    assert report["rows_out"] == 2 and report["interval_s"] == 60
    assert report["holes"] == {"QQQ": 1} and report["hole_minutes"] == {"QQQ": 3}
    assert report["files"][0]["dropped"] == {"high_below_open_close": 3}
