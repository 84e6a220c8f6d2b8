"""The canonical bar table and its Parquet form.

Columns: ``ts`` int64 ns UTC (bar START), ``symbol``, ``open``/``high``/``low``/``close``/``volume``
float64, ``segment`` int32. The Parquet file carries a ``sentio`` key in its schema metadata: a JSON
object with at least ``format``, ``interval_s``, ``max_gap_min`` and ``simulated`` (symbol -> bool).

:func:`write_bars` writes atomically (a unique temporary sibling, fsync, rename: a reader or a
kill -9 sees the old file or the new one, never a prefix). :func:`read_bars` refuses any table
that breaks the import's bar rules, so that training, backtests and features never run on a
table edited after import.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from sentio.core.errors import BarsError, excerpt
from sentio.core.files import atomic_output
from sentio.core.hashing import canonical_json

FORMAT = "sentio.bars/1"
PRICE_FIELDS = ("open", "high", "low", "close")
VALUE_FIELDS = (*PRICE_FIELDS, "volume")
COLUMNS = ("ts", "symbol", *VALUE_FIELDS, "segment")
ARROW_SCHEMA = pa.schema(
    [
        ("ts", pa.int64()),
        ("symbol", pa.string()),
        *[(name, pa.float64()) for name in VALUE_FIELDS],
        ("segment", pa.int32()),
    ]
)
META_KEY = b"sentio"
MAX_INTERVAL_S = 390 * 60  # one whole regular session
# A symbol is printed in every table and message: a newline in one forged an ``error:`` line and a
# 200,000-character one filled the terminal (issue 12, round 2). Tickers are short and printable.
MAX_SYMBOL = 32
_BAD_SYMBOL_CHAR = re.compile(r"[\s\x00-\x1f\x7f-\x9f\ud800-\udfff]")


def valid_symbol(symbol: str) -> bool:
    """1 to :data:`MAX_SYMBOL` characters, no whitespace or control characters.

    >>> valid_symbol("BRK.B"), valid_symbol("QQQ\\nerror: fake"), valid_symbol("Q" * 33)
    (True, False, False)
    """
    return 0 < len(symbol) <= MAX_SYMBOL and not _BAD_SYMBOL_CHAR.search(symbol)


@dataclass
class Bars:
    """A canonical bar table and its metadata.

    ``frame`` is sorted by (symbol, ts); ``meta`` holds ``interval_s``, ``max_gap_min``,
    ``simulated`` and provenance (sources, splits, generator).
    """

    frame: pd.DataFrame
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def symbols(self) -> list[str]:
        return sorted(self.frame["symbol"].unique().tolist())

    @property
    def interval_s(self) -> int:
        return int(self.meta["interval_s"])

    def of(self, symbol: str) -> pd.DataFrame:
        """The rows of one symbol (a copy), in time order."""
        rows = self.frame[self.frame["symbol"] == symbol]
        if rows.empty:
            raise BarsError(
                f"symbol {excerpt(symbol)} not in this table (it has {', '.join(self.symbols)})"
            )
        return rows.reset_index(drop=True)

    def is_simulated(self, symbol: str) -> bool:
        return bool(self.meta.get("simulated", {}).get(symbol, False))


def canonical_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """Coerce to the canonical column order and dtypes, sorted by (symbol, ts)."""
    out = pd.DataFrame(
        {
            "ts": frame["ts"].to_numpy(np.int64),
            "symbol": frame["symbol"].astype(str).to_numpy(object),
            **{name: frame[name].to_numpy(np.float64) for name in VALUE_FIELDS},
            "segment": frame["segment"].to_numpy(np.int32),
        }
    )
    return out.sort_values(["symbol", "ts"], kind="stable").reset_index(drop=True)


def write_bars(bars: Bars, path: str | Path, *, flag: str | None = "--out") -> Path:
    """Write a canonical table to Parquet atomically (deterministic bytes for the same content).

    ``flag`` names the option that chose ``path`` in an error (read-only folder, full disk).
    """
    path = Path(path)
    frame = canonical_frame(bars.frame)
    table = pa.Table.from_pandas(frame, schema=ARROW_SCHEMA, preserve_index=False)
    meta = {"format": FORMAT, **bars.meta}
    table = table.replace_schema_metadata({META_KEY: canonical_json(meta)})
    with atomic_output(path, flag=flag) as tmp:
        pq.write_table(table, tmp, compression="zstd")
    return path


def read_bars(path: str | Path) -> Bars:
    """Read a canonical Parquet table, refusing anything that is not one or breaks a bar rule."""
    path = Path(path)
    if not path.exists():
        raise BarsError("file not found", file=str(path))
    if path.is_dir():
        raise BarsError("is a directory; give a canonical Parquet file", file=str(path))
    if not path.is_file():  # a FIFO would block the reader forever
        raise BarsError(
            "is not a regular file (a FIFO, device or socket); give a canonical Parquet file",
            file=str(path),
        )
    try:
        table = pq.read_table(path)
    except (pa.ArrowException, OSError) as exc:
        raise BarsError(
            f"not a readable Parquet file ({excerpt(str(exc), 200)})", file=str(path)
        ) from exc
    raw_meta = (table.schema.metadata or {}).get(META_KEY)
    if raw_meta is None:
        raise BarsError(
            "not a canonical Sentio table (no 'sentio' metadata); "
            "turn vendor files into one with `sentio data import`",
            file=str(path),
        )
    meta = _read_meta(raw_meta, str(path))
    missing = [c for c in COLUMNS if c not in table.column_names]
    if missing:
        raise BarsError(
            f"missing canonical columns {', '.join(missing)}", file=str(path), rule="schema"
        )
    for name in COLUMNS:
        want = ARROW_SCHEMA.field(name).type
        got = table.schema.field(name).type
        text_ok = name == "symbol" and (pa.types.is_string(got) or pa.types.is_large_string(got))
        if name == "symbol" and pa.types.is_null(got):  # every symbol null: arrow's null type
            raise BarsError(
                "the symbol is missing on every row",
                file=str(path),
                row=1,
                field="symbol",
                rule="missing_symbol",
            )
        if got != want and not text_ok:
            raise BarsError(
                f"column {name!r} is {got}, expected {want}", file=str(path), rule="schema"
            )
    for name in ("ts", "segment"):
        if table.column(name).null_count:
            first = int(
                np.flatnonzero(table.column(name).is_null().to_numpy(zero_copy_only=False))[0]
            )
            raise BarsError(
                "is null",
                file=str(path),
                row=first + 1,
                field=name,
                rule="bad_timestamp" if name == "ts" else "schema",
            )
    if table.num_rows == 0:
        raise BarsError("the table holds no bars", file=str(path), rule="schema")
    frame = table.select(list(COLUMNS)).to_pandas()
    symbol = frame["symbol"]
    frame["symbol"] = symbol.astype(object).where(symbol.notna(), "").to_numpy(object)
    # Imported here, not at the top: the rules read vendor files too, and import this module.
    from sentio.data.validate import check_layout, check_table

    check_table(frame, str(path))
    check_layout(frame, int(meta["interval_s"]), int(meta.get("max_gap_min", 5)), str(path))
    meta.pop("format", None)
    return Bars(frame=frame, meta=meta)


def _read_meta(raw: bytes, file: str) -> dict[str, Any]:
    """The ``sentio`` metadata of a canonical table, its required keys checked."""
    try:
        meta = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise BarsError("its 'sentio' metadata is not JSON", file=file, rule="schema") from exc
    if not isinstance(meta, dict):
        raise BarsError("its 'sentio' metadata is not a JSON object", file=file, rule="schema")
    interval = meta.get("interval_s")
    if type(interval) is not int or not 0 < interval <= MAX_INTERVAL_S or interval % 60:
        raise BarsError(
            f"metadata interval_s must be whole minutes up to one session, got {excerpt(interval)}",
            file=file,
            field="interval_s",
            rule="schema",
        )
    gap = meta.get("max_gap_min", 5)
    if type(gap) is not int or gap < 0:
        raise BarsError(
            f"metadata max_gap_min must be an integer >= 0, got {excerpt(gap)}",
            file=file,
            field="max_gap_min",
            rule="schema",
        )
    if meta.get("format") != FORMAT:
        raise BarsError(
            f"metadata format is {excerpt(meta.get('format'))}, expected {FORMAT!r}; write the "
            "table with `sentio data import`",
            file=file,
            field="format",
            rule="schema",
        )
    simulated = meta.get("simulated", {})
    if not isinstance(simulated, dict) or not all(type(v) is bool for v in simulated.values()):
        raise BarsError(
            f"metadata simulated must map symbol -> true/false, got {excerpt(simulated)}",
            file=file,
            field="simulated",
            rule="schema",
        )
    return meta
