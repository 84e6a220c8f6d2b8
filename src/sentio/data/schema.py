"""The canonical bar table (ARCHITECTURE.md section 3) and its Parquet form.

Columns: ``ts`` int64 ns UTC (bar START), ``symbol``, ``open``/``high``/``low``/``close``/``volume``
float64, ``segment`` int32. The Parquet file carries a ``sentio`` key in its schema metadata: a JSON
object with at least ``format``, ``interval_s``, ``max_gap_min`` and ``simulated`` (symbol -> bool).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from sentio.core.errors import BarsError
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
            raise BarsError(f"symbol {symbol!r} not in this table (has {self.symbols})")
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


def write_bars(bars: Bars, path: str | Path) -> Path:
    """Write a canonical table to Parquet (deterministic bytes for the same content)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    frame = canonical_frame(bars.frame)
    table = pa.Table.from_pandas(frame, schema=ARROW_SCHEMA, preserve_index=False)
    meta = {"format": FORMAT, **bars.meta}
    table = table.replace_schema_metadata({META_KEY: canonical_json(meta)})
    tmp = path.with_name(path.name + ".tmp")
    pq.write_table(table, tmp, compression="zstd")
    tmp.replace(path)
    return path


def read_bars(path: str | Path) -> Bars:
    """Read a canonical Parquet table, refusing anything that is not one."""
    path = Path(path)
    if not path.exists():
        raise BarsError("file not found", file=str(path))
    try:
        table = pq.read_table(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise BarsError(f"not a readable Parquet file ({exc})", file=str(path)) from exc
    raw_meta = (table.schema.metadata or {}).get(META_KEY)
    if raw_meta is None:
        raise BarsError(
            "not a canonical Sentio table (no 'sentio' metadata); "
            "turn vendor files into one with `sentio data import`",
            file=str(path),
        )
    meta = json.loads(raw_meta)
    missing = [c for c in COLUMNS if c not in table.column_names]
    if missing:
        raise BarsError(f"missing canonical columns {missing}", file=str(path), rule="schema")
    for name in COLUMNS:
        want = ARROW_SCHEMA.field(name).type
        got = table.schema.field(name).type
        text_ok = name == "symbol" and (pa.types.is_string(got) or pa.types.is_large_string(got))
        if got != want and not text_ok:
            raise BarsError(
                f"column {name!r} is {got}, expected {want}", file=str(path), rule="schema"
            )
    frame = table.to_pandas()
    frame["symbol"] = frame["symbol"].astype(str).to_numpy(object)
    meta.pop("format", None)
    return Bars(frame=frame[list(COLUMNS)], meta=meta)
