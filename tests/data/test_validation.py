"""Every rule refused with file, row, field and rule, in every format; --repair drop counts exact.

The inputs are small files written here (20 bars on Monday 2025-09-15 from 09:30 New York), so
the expected row of each corruption is known by construction, not read back from the code.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sentio.core import BarsError
from sentio.core.errors import OptionError
from sentio.data import RULES, ReadOptions, import_files, read_bars, write_bars

N = 20
START = pd.Timestamp("2025-09-15 09:30", tz="America/New_York")


def base_frame() -> pd.DataFrame:
    times = pd.date_range(START, periods=N, freq="1min")
    close = 500 + np.arange(N) * 0.1
    return pd.DataFrame(
        {
            "time": times,
            "open": close - 0.05,
            "high": close + 0.2,
            "low": close - 0.2,
            "close": close,
            "volume": np.full(N, 1000.0),
        }
    ).astype({"open": object, "high": object, "low": object, "close": object, "volume": object})


def with_symbol(out: pd.DataFrame, frame: pd.DataFrame) -> pd.DataFrame:
    """A CSV carries the frame's symbol column when it has one (docs/data.md: the file's
    symbol column comes before its name)."""
    return out.assign(symbol=frame["symbol"].to_numpy()) if "symbol" in frame else out


def write(frame: pd.DataFrame, fmt: str, folder) -> tuple[str, ReadOptions, int]:
    """Write ``frame`` in ``fmt``; return (path, read options, row number of data row 0)."""
    t = frame["time"]
    values = frame[["open", "high", "low", "close", "volume"]]
    if fmt == "polygon":
        out = pd.DataFrame(
            {
                "ts_utc": [x.isoformat() if isinstance(x, pd.Timestamp) else x for x in t],
                "ts_nyt_epoch": [x.value // 10**9 if isinstance(x, pd.Timestamp) else x for x in t],
            }
        ).join(values)
        path = folder / "QQQ_polygon.csv"
        with_symbol(out, frame).to_csv(path, index=False)
        return str(path), ReadOptions(), 2
    if fmt == "ibkr":
        out = pd.DataFrame(
            {
                "datetime": [
                    x.strftime("%Y-%m-%d %H:%M:%S") if isinstance(x, pd.Timestamp) else x for x in t
                ]
            }
        ).join(values)
        path = folder / "QQQ_ibkr.csv"
        with_symbol(out, frame).to_csv(path, index=False)
        return str(path), ReadOptions(), 2
    if fmt == "generic":
        out = pd.DataFrame(
            {
                "when": [
                    x.tz_convert("UTC").strftime("%Y-%m-%d %H:%M:%S")
                    if isinstance(x, pd.Timestamp)
                    else x
                    for x in t
                ]
            }
        ).join(values)
        path = folder / "bars.csv"
        with_symbol(out, frame).to_csv(path, index=False)
        symbol = None if "symbol" in frame else "QQQ"  # --symbol would win over the column
        return str(path), ReadOptions(symbol=symbol, ts_col="when", tz="UTC"), 2
    # parquet: naive-UTC ts index and a symbol column, as the lse/ files
    out = values.copy()
    for name in out.columns:
        try:
            out[name] = pd.to_numeric(out[name])
        except (ValueError, TypeError):
            out[name] = out[name].astype(str)
    out.insert(0, "symbol", frame.get("symbol", "QQQ"))
    out.index = pd.DatetimeIndex(
        [
            x.tz_convert("UTC").tz_localize(None) if isinstance(x, pd.Timestamp) else pd.NaT
            for x in t
        ],
        name="ts",
    )
    path = folder / "QQQ.parquet"
    out.to_parquet(path)
    return str(path), ReadOptions(), 1


FORMATS = ["polygon", "ibkr", "generic", "parquet"]


def corrupt(frame: pd.DataFrame, rule: str, i: int, fmt: str) -> str:
    """Break ``rule`` at data row ``i``; return the field the refusal must name."""
    if rule == "non_numeric":
        frame.loc[i, "close"] = "abc"
        return "close"
    if rule == "non_finite":
        frame.loc[i, "volume"] = float("nan") if fmt == "parquet" else "inf"
        return "volume"
    if rule == "bad_timestamp":
        frame["time"] = frame["time"].astype(object)
        frame.loc[i, "time"] = pd.NaT if fmt == "parquet" else "not a time"
        return {"polygon": "ts_nyt_epoch", "ibkr": "datetime", "generic": "when", "parquet": "ts"}[
            fmt
        ]
    if rule == "ts_out_of_range":  # the same minute in 2200: well formed, but in the future
        frame["time"] = frame["time"].astype(object)
        frame.loc[i, "time"] = frame.loc[i, "time"].replace(year=2200)
        return {"polygon": "ts_nyt_epoch", "ibkr": "datetime", "generic": "when", "parquet": "ts"}[
            fmt
        ]
    if rule == "missing_symbol":
        frame["symbol"] = pd.Series(["QQQ"] * len(frame), dtype=object)
        frame.loc[i, "symbol"] = None
        return "symbol"
    if rule == "bad_symbol":  # issue 12, round 2: a newline in a symbol forged an error line
        frame["symbol"] = pd.Series(["QQQ"] * len(frame), dtype=object)
        frame.loc[i, "symbol"] = "QQQ\nerror: fake"
        return "symbol"
    if rule == "non_positive_price":
        frame.loc[i, "open"] = 0.0
        return "open"
    if rule == "price_too_large":  # 1e308 was accepted before issue 12
        frame.loc[i, "high"] = 1e308
        return "high"
    if rule == "volume_too_large":
        frame.loc[i, "volume"] = 1e14
        return "volume"
    if rule == "high_below_open_close":
        frame.loc[i, "high"] = float(frame.loc[i, "close"]) - 0.01
        return "high"
    if rule == "low_above_open_close":
        frame.loc[i, "low"] = float(frame.loc[i, "close"]) + 0.01
        return "low"
    if rule == "negative_volume":
        frame.loc[i, "volume"] = -5.0
        return "volume"
    ts_field = {"polygon": "ts_nyt_epoch", "ibkr": "datetime", "generic": "when", "parquet": "ts"}[
        fmt
    ]
    if rule == "outside_session":
        frame.loc[i, "time"] = frame.loc[i, "time"] - pd.Timedelta(days=2)  # Saturday
        return ts_field
    if rule == "duplicate_ts":
        frame.loc[i, "time"] = frame.loc[i - 1, "time"]
        return ts_field
    if rule == "unsorted_ts":  # swap rows i-1 and i: row i is then earlier than row i-1
        frame.loc[[i - 1, i], "time"] = frame.loc[[i, i - 1], "time"].to_numpy()
        return ts_field
    raise AssertionError(rule)


@pytest.mark.parametrize("fmt", FORMATS)
def test_clean_file_imports_every_row(tmp_path, fmt):
    path, options, _ = write(base_frame(), fmt, tmp_path)
    bars, report = import_files([path], options)
    assert len(bars.frame) == N
    assert report.files[0].dropped == {}
    assert bars.frame["ts"].iloc[0] == START.value


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("rule", list(RULES))
def test_each_rule_is_refused_with_file_row_field_and_rule(tmp_path, fmt, rule):
    frame = base_frame()
    i = 7
    field = corrupt(frame, rule, i, fmt)
    path, options, first_row = write(frame, fmt, tmp_path)
    with pytest.raises(BarsError) as caught:
        import_files([path], options)
    err = caught.value
    assert (err.file, err.row, err.field, err.rule) == (path, i + first_row, field, rule)
    text = str(err)
    assert path in text and f"row {i + first_row}" in text and rule in text and repr(field) in text


@pytest.mark.parametrize("fmt", FORMATS)
def test_repair_drop_reports_exact_counts_per_rule(tmp_path, fmt):
    frame = base_frame()
    planted = {"high_below_open_close": [3, 11], "negative_volume": [5], "non_numeric": [9]}
    if fmt != "parquet":
        planted["non_finite"] = [14]
    planted["duplicate_ts"] = [17]
    for rule, rows in planted.items():
        for i in rows:
            corrupt(frame, rule, i, fmt)
    path, options, _ = write(frame, fmt, tmp_path)
    bars, report = import_files([path], options, repair="drop")
    expected = {rule: len(rows) for rule, rows in planted.items()}
    assert report.files[0].dropped == expected
    assert len(bars.frame) == N - sum(expected.values())


@pytest.mark.parametrize("fmt", ["polygon", "ibkr", "generic"])
def test_missing_or_misnamed_column_is_refused_with_a_hint(tmp_path, fmt):
    path, options, _ = write(base_frame(), fmt, tmp_path)
    target = tmp_path / path.split("/")[-1]
    target.write_text(target.read_text().replace(",high,", ",hihg,", 1))
    with pytest.raises(BarsError) as caught:
        import_files([path], options)
    err = caught.value
    assert (err.row, err.field, err.rule) == (1, "high", "missing_column")
    assert "'hihg' looks like a misnamed 'high'" in str(err)


def test_unknown_csv_format_names_the_flags_to_give(tmp_path):
    path = tmp_path / "QQQ.csv"
    path.write_text("stamp,open,high,low,close,volume\n1,1,1,1,1,1\n")
    with pytest.raises(BarsError, match="--ts-col"):
        import_files([path])


def test_generic_naive_times_need_tz_and_numbers_need_a_unit(tmp_path):
    path = tmp_path / "QQQ.csv"
    path.write_text("t,open,high,low,close,volume\n2025-09-15 13:30:00,1,1,1,1,1\n")
    with pytest.raises(BarsError, match="--tz"):
        import_files([path], ReadOptions(ts_col="t"))
    path.write_text("t,open,high,low,close,volume\n1757943000,1,1,1,1,1\n")
    with pytest.raises(BarsError, match="--ts-unit"):
        import_files([path], ReadOptions(ts_col="t"))
    bars, _ = import_files([path], ReadOptions(ts_col="t", ts_unit="s"))
    assert bars.frame["ts"].tolist() == [1757943000 * 10**9]  # 2025-09-15 09:30 New York


def test_extended_hours_are_dropped_and_counted_never_silently(tmp_path):
    frame = base_frame()
    frame["time"] = frame["time"] - pd.Timedelta(minutes=10)  # 09:20 .. 09:39: ten pre-market bars
    path, options, _ = write(frame, "ibkr", tmp_path)
    bars, report = import_files([path], options)
    assert report.files[0].extended_hours == 10
    assert len(bars.frame) == N - 10


def test_split_adjusts_prices_and_volume_before_the_date(tmp_path):
    path, options, _ = write(base_frame(), "ibkr", tmp_path)
    plain, _ = import_files([path], options)
    from sentio.data import Split

    adjusted, report = import_files([path], options, splits=[Split.parse("2025-09-16:1/2")])
    assert np.allclose(adjusted.frame["close"], plain.frame["close"] * 0.5)
    assert np.allclose(adjusted.frame["volume"], plain.frame["volume"] * 2)
    untouched, _ = import_files([path], options, splits=[Split.parse("2025-09-15:0.5")])
    assert np.array_equal(untouched.frame["close"], plain.frame["close"])
    with pytest.raises(OptionError, match="DATE:RATIO"):
        Split.parse("2025-09-15")
    for bad in ("2025-13-45:0.5", "2025-02-30:2", "2025-01-01:1/0", "2025-01-01:0", "x:1"):
        with pytest.raises(OptionError, match="--split"):
            Split.parse(bad)


def _edited_table(tmp_path, edit):
    """The clean file imported, written canonical, then edited in place as a user could (with
    pyarrow: write_bars would sort the rows again). ``edit`` may return metadata changes."""
    path, options, _ = write(base_frame(), "ibkr", tmp_path)
    bars, _ = import_files([path], options)
    out = write_bars(bars, tmp_path / "edited.parquet")
    table = pq.read_table(out)
    frame = table.to_pandas()
    meta = {**json.loads(table.schema.metadata[b"sentio"]), **(edit(frame) or {})}
    edited = pa.Table.from_pandas(frame, schema=table.schema, preserve_index=False)
    pq.write_table(edited.replace_schema_metadata({b"sentio": json.dumps(meta).encode()}), out)
    return out


def _relabel_interval(frame):
    """Bars two minutes apart but row index 7 (row 8) one minute after row 6, declared 2-minute
    bars: row 8 is the only bar closer than the interval."""
    frame["ts"] = frame["ts"][0] + frame.index.to_numpy() * 120 * 10**9
    frame.loc[7:, "ts"] -= 60 * 10**9
    return {"interval_s": 120}


def _swap_times(frame):
    frame.loc[[6, 7], "ts"] = frame.loc[[7, 6], "ts"].to_numpy()


# edit of row index 7 (row 8 of the Parquet file), the field and rule the read must name
CANONICAL_EDITS = {
    "zero close": (lambda f: f.__setitem__("close", f["close"].where(f.index != 7, 0.0)),
                   "close", "non_positive_price"),
    "high below low": (lambda f: f.__setitem__("high", f["high"].where(f.index != 7, 1.0)),
                       "high", "high_below_open_close"),
    "unsorted": (_swap_times, "ts", "unsorted_ts"),
    "pre-market bar": (lambda f: f.__setitem__("ts", f["ts"].where(f.index != 7, f["ts"][0]
                       - 3600 * 10**9)), "ts", "extended_hours"),
    "empty symbol": (lambda f: f.__setitem__("symbol", f["symbol"].where(f.index != 7, "")),
                     "symbol", "missing_symbol"),
    # 20 bars of one morning with no hole: the import numbers them all segment 0
    "segment edited": (lambda f: f.__setitem__("segment", f["segment"].where(f.index != 7, 3)),
                       "segment", "segments"),
    "1-minute bars relabelled 2-minute": (_relabel_interval, "ts", "interval"),
}  # fmt: skip


@pytest.mark.parametrize("edit", sorted(CANONICAL_EDITS))
def test_read_bars_refuses_a_table_edited_after_import(tmp_path, edit):
    change, field, rule = CANONICAL_EDITS[edit]
    path = _edited_table(tmp_path, change)
    with pytest.raises(BarsError) as caught:
        read_bars(path)
    err = caught.value
    assert (err.file, err.row, err.field, err.rule) == (str(path), 8, field, rule)
