"""Canonical bars: vendor import, NYSE sessions and segments, alignment, the synthetic market."""

from sentio.data.align import AlignReport, align
from sentio.data.importers import FORMATS, RawBars, ReadOptions, read_file
from sentio.data.info import SymbolInfo, describe
from sentio.data.ingest import ImportReport, Split, import_files
from sentio.data.schema import COLUMNS, Bars, read_bars, write_bars
from sentio.data.segments import DEFAULT_MAX_GAP_MIN, assign_segments
from sentio.data.trading_calendar import Sessions, sessions_between, sessions_from
from sentio.data.validate import RULES, check

__all__ = [
    "AlignReport",
    "Bars",
    "COLUMNS",
    "DEFAULT_MAX_GAP_MIN",
    "FORMATS",
    "ImportReport",
    "RULES",
    "RawBars",
    "ReadOptions",
    "Sessions",
    "Split",
    "SymbolInfo",
    "align",
    "assign_segments",
    "check",
    "describe",
    "import_files",
    "read_bars",
    "read_file",
    "sessions_between",
    "sessions_from",
    "write_bars",
]
