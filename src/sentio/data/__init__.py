"""Canonical bars: vendor import, NYSE sessions and segments, alignment, level shifts between
files, the synthetic market."""

from sentio.data.align import AlignReport, align
from sentio.data.importers import FORMATS, RawBars, ReadOptions, read_file
from sentio.data.info import SymbolInfo, describe
from sentio.data.ingest import ImportReport, Split, import_files
from sentio.data.levels import LevelShift, level_shifts, shifts_between
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
    "LevelShift",
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
    "level_shifts",
    "read_bars",
    "read_file",
    "sessions_between",
    "sessions_from",
    "shifts_between",
    "write_bars",
]
