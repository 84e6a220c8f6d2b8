"""The live loop's saved state (``--state DIR``): what a restart needs, written after every bar.

- ``state.json``: stream context (its own JSON), strategy state, book (cash, shares), the
  paper broker's book, last bar time, model hash, settings fingerprint, counters, and the
  audit events of the last bar with the event counts before and after them (so a restart
  appends what the audit lacks). Written atomically: a new file beside it, then a rename, so
  a kill at any moment leaves the previous state or the new one, never half of one.
  It is not fsynced per bar: a killed process loses nothing (the rename is atomic), an
  operating-system crash may lose the last bars, which the restart then finds (the audit
  holds more events than the state expects) and refuses with a clear message.
- ``ledger.bin`` / ``fills.bin``: one fixed-size record per bar (time, episode, equity,
  shares) and per fill, appended; the state says how many records are valid, so records a
  killed loop wrote after its last state are cut at restart. They feed the run's metrics
  (strattest's own ``evaluate_run``) without keeping every bar in the state.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, StrictInt, ValidationError

from sentio.core.errors import LiveError
from sentio.core.hashing import unique_keys

STATE_FORMAT = "sentio.live-state/1"
FIRST_TS, LAST_TS = 0, 4_102_444_800 * 10**9  # bar times of 1970 to 2100 (ns)
BAR_RECORD = np.dtype([("ts", "<i8"), ("block", "<i8"), ("equity", "<f8"), ("shares", "<i8", 4)])
FILL_RECORD = np.dtype(
    [("bar", "<f8"), ("instrument", "<f8"), ("qty", "<f8"), ("price", "<f8"), ("fees", "<f8")]
)


class Book(BaseModel):
    cash: float
    shares: list[StrictInt] = Field(min_length=4, max_length=4)


class Audit(BaseModel):
    before: StrictInt = Field(ge=0)
    after: StrictInt = Field(ge=0)
    pending: list[list]


class SavedState(BaseModel):
    """The fields a restart and ``sentio live status`` read, with their types: a state.json
    that lacks one or mistypes it is refused naming the field, never a traceback."""

    model_config = ConfigDict(extra="allow")

    format: Literal["sentio.live-state/1"]
    run_id: str
    manifest_hash: str
    fingerprint: str
    book: Book
    last_ts: StrictInt | None = Field(ge=FIRST_TS, le=LAST_TS)
    segment: StrictInt
    episode: StrictInt
    in_episode: StrictInt = Field(ge=0)
    target: list[float | None] = Field(min_length=4, max_length=4)
    strategy: dict
    recent: list[list[float]]
    day: StrictInt
    day_start_equity: float
    halted: bool
    sent_at: list[StrictInt]
    counts: dict[str, StrictInt]
    stream: str
    ledger: dict[str, StrictInt]
    audit: Audit
    ended: bool
    exiting: bool
    closes: dict[str, float]
    parity: dict
    equity: float | None
    capital_start: float
    model: str
    feed: str
    stop_reason: str


class StateStore:
    """``DIR/state.json``, written atomically."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self.path = self.folder / "state.json"
        if self.folder.exists() and not self.folder.is_dir():
            raise LiveError(f"--state: {self.folder} is a file; give a folder")

    @classmethod
    def read(cls, folder: str | Path) -> dict:
        """The state in ``folder`` for a reader (``sentio live status``): creates nothing."""
        store = cls.__new__(cls)
        store.folder, store.path = Path(folder), Path(folder) / "state.json"
        doc = store.load()
        if doc is None:
            raise LiveError(f"--state: {store.folder} holds no live state (state.json)")
        return doc

    def load(self) -> dict | None:
        """The saved state, or None when the folder holds none."""
        if not self.path.exists():
            return None
        try:
            doc = json.loads(self.path.read_text(), object_pairs_hook=unique_keys)
        except (OSError, ValueError, UnicodeError) as exc:
            raise LiveError(f"{self.path}: not a readable live state ({exc})") from None
        if not isinstance(doc, dict):
            raise LiveError(f"{self.path}: not a live state (a JSON object)")
        try:
            SavedState.model_validate(doc)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(x) for x in first["loc"])
            raise LiveError(
                f"{self.path}: not a sentio live state ({STATE_FORMAT}): {where}: {first['msg']}"
            ) from None
        return doc

    def save(self, doc: dict) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)  # at the first save, not before
        tmp = self.path.with_name(f".state.{os.getpid()}.tmp")
        with open(tmp, "w") as out:
            json.dump(doc, out, separators=(",", ":"))
        os.replace(tmp, self.path)


class Ledger:
    """Per-bar equity and shares and every fill of the run, in memory and (with a state
    folder) appended to two files."""

    def __init__(self, folder: str | Path | None) -> None:
        self.folder = Path(folder) if folder is not None else None
        self._bars = np.zeros(0, BAR_RECORD)
        self._fills = np.zeros(0, FILL_RECORD)
        self.bars = self.fills_count = 0

    def _file(self, name: str) -> Path | None:
        return None if self.folder is None else self.folder / name

    def reset(self) -> None:
        self._bars, self._fills = np.zeros(64, BAR_RECORD), np.zeros(64, FILL_RECORD)
        self.bars = self.fills_count = 0
        for name in ("ledger.bin", "fills.bin"):
            path = self._file(name)
            if path is not None and path.exists():
                path.write_bytes(b"")

    def truncate(self, sizes: dict) -> None:
        """Reload the records a saved state counts; cut those a killed loop wrote after."""
        self.bars, self.fills_count = int(sizes["bars"]), int(sizes["fills"])
        for name, dtype, n, attr in (
            ("ledger.bin", BAR_RECORD, self.bars, "_bars"),
            ("fills.bin", FILL_RECORD, self.fills_count, "_fills"),
        ):
            path = self._file(name)
            data = np.fromfile(path, dtype=dtype) if path is not None and path.exists() else []
            if len(data) < n:
                raise LiveError(f"{path}: holds {len(data)} records; the state counts {n}")
            if path is not None and path.exists():
                with open(path, "r+b") as out:
                    out.truncate(n * dtype.itemsize)
            grown = np.zeros(max(64, 2 * n), dtype)
            grown[:n] = data[:n]
            setattr(self, attr, grown)

    def sizes(self) -> dict:
        return {"bars": self.bars, "fills": self.fills_count}

    def bar(self, ts: int, block: int, equity: float, shares: np.ndarray) -> None:
        self._bars = _room(self._bars, self.bars)
        self._bars[self.bars] = (ts, block, equity, shares)
        self._append("ledger.bin", self._bars[self.bars : self.bars + 1])
        self.bars += 1

    def rewrite_last(self, equity: float, shares: np.ndarray) -> None:
        """The last bar after fills that came after it (a flattening exit at its close)."""
        if not self.bars:
            return
        self._bars[self.bars - 1]["equity"] = equity
        self._bars[self.bars - 1]["shares"] = shares
        path = self._file("ledger.bin")
        if path is not None:
            with open(path, "r+b") as out:
                out.seek((self.bars - 1) * BAR_RECORD.itemsize)
                out.write(self._bars[self.bars - 1 : self.bars].tobytes())

    def fill(self, bar: int, instrument: int, qty: int, price: float, fees: float) -> None:
        self._fills = _room(self._fills, self.fills_count)
        self._fills[self.fills_count] = (bar, instrument, qty, price, fees)
        self._append("fills.bin", self._fills[self.fills_count : self.fills_count + 1])
        self.fills_count += 1

    def _append(self, name: str, record: np.ndarray) -> None:
        path = self._file(name)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(path, "ab") as out:
                out.write(record.tobytes())

    def arrays(self):
        """(ts, block, equity, shares (N, 4)) of every bar so far."""
        b = self._bars[: self.bars]
        return b["ts"], b["block"], b["equity"], b["shares"]

    def fill_array(self) -> np.ndarray:
        """Fills in the backtest's layout (bar, instrument, qty, price, fees)."""
        f = self._fills[: self.fills_count]
        return (
            np.column_stack([f["bar"], f["instrument"], f["qty"], f["price"], f["fees"]])
            if len(f)
            else np.zeros((0, 5))
        )

    def episode_bars(self, block: int) -> np.ndarray:
        b = self._bars[: self.bars]
        return b["ts"][b["block"] == block]

    def episode_fees(self, block: int) -> tuple[int, float]:
        """(fills, fees) of one episode."""
        b = self._bars[: self.bars]
        f = self._fills[: self.fills_count]
        if not len(f):
            return 0, 0.0
        mine = b["block"][np.minimum(f["bar"].astype(int), max(self.bars - 1, 0))] == block
        return int(mine.sum()), float(f["fees"][mine].sum())

    def last_equity(self) -> float | None:
        return float(self._bars[self.bars - 1]["equity"]) if self.bars else None


def _room(array: np.ndarray, n: int) -> np.ndarray:
    if n < len(array):
        return array
    grown = np.zeros(max(64, 2 * len(array)), array.dtype)
    grown[: len(array)] = array
    return grown


__all__ = ["BAR_RECORD", "FILL_RECORD", "STATE_FORMAT", "SavedState", "Ledger", "StateStore"]
