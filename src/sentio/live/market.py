"""What the feed side gives the live loop before it starts: the feed itself, the QQQ bars to
warm the model up on, the episodes of a block replay, the half-spreads, which instruments are
simulated; and the broker of ``--broker``.

A replay reads the market as strattest does (``backtest.strattest.market_tables``: the files,
a sibling they lack simulated from QQQ and labelled) and picks the same bars: every bar after
the model's validation end, or with ``--blocks`` the blocks strattest's own plan trades
(``historical_plan``: outside the model's data, after the model's warm-up), with strattest's
capital check and half-spreads (half a cent at each instrument's median price over the whole
file).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from sentio.backtest.strattest import check_capital, historical_plan, market_tables
from sentio.core.errors import LiveError, OptionError
from sentio.data import read_bars
from sentio.features.inputs import as_input
from sentio.infer.seq import data_hash
from sentio.live.config import LiveConfig
from sentio.live.feeds import CsvTailFeed, FeedSpec, JsonlFeed, ReplayFeed
from sentio.live.paper import PaperBroker
from sentio.live.types import SYMBOLS, Broker


class Market:
    """What the feed side gives the loop before it starts: the feed, the QQQ history to warm
    up on, the episodes (first ts, bars) of a block replay, the half-spreads and which
    instruments are simulated."""

    def __init__(
        self,
        feed,
        history: pd.DataFrame | None,
        episodes: list[tuple[int, int]],
        half_spread: np.ndarray | None,
        simulated: dict[str, bool],
        files: list[str],
    ) -> None:
        self.feed, self.history, self.episodes = feed, history, episodes
        self.half_spread, self.simulated, self.files = half_spread, simulated, files
        self.bars_hash: str | None = None  # a replay's QQQ bars (saudit verify re-runs them)


def open_market(config: LiveConfig, meta: dict) -> Market:
    """The feed of ``config.feed`` with its history and episodes (refusals name --feed)."""
    spec = FeedSpec.parse(config.feed)
    trading = config.trading
    if config.blocks_mode and spec.kind != "replay":
        raise OptionError(
            "--blocks replays strattest's blocks: give --feed replay:FILE", flag="--blocks"
        )
    if spec.kind == "replay":
        data = ("builtin",) if spec.target == "builtin" else (spec.target,)
        tables, simulated = market_tables(trading.model_copy(update={"data": data}), meta)
        ts = tables["QQQ"]["ts"].to_numpy(np.int64)
        validation_end = meta["data"]["splits"]["validation"]["last_ts"]
        eligible = np.ones(len(ts), bool) if trading.allow_in_sample else ts > validation_end
        if config.blocks_mode:  # strattest's own plan picks the blocks (and refuses alike)
            # (without strattest's probability cache: a live run writes only its outputs)
            plan = historical_plan(trading.model_copy(update={"data": data, "cache_dir": None}))
            rows = np.flatnonzero(plan.block >= 0)
            episodes = [
                (int(ts[rows[b * trading.block_size]]), trading.block_size)
                for b in range(plan.blocks_run)
            ]
        else:
            rows = np.flatnonzero(eligible)
            if not len(rows):
                raise LiveError(
                    f"{spec.target}: no bar after the model's validation end; "
                    "give later bars or --allow-in-sample"
                )
            rows = np.arange(rows[0], len(ts))
            episodes = []
        close = np.column_stack([tables[s]["close"].to_numpy(np.float64) for s in SYMBOLS])
        check_capital(trading.capital, close[rows])
        spreads = trading.costs.half_spreads(list(SYMBOLS), close)
        feed = ReplayFeed(
            tables,
            int(rows[0]),
            int(rows[-1]) + 1,
            speed=spec.speed,
            label=spec.target,
            poll_s=config.poll_s,
        )
        files = [] if spec.target == "builtin" else [spec.target]
        market = Market(feed, feed.history(), episodes, spreads, simulated, files)
        market.bars_hash = data_hash(as_input(tables["QQQ"]))
        return market
    history = None
    if config.history is not None:
        history = read_bars(config.history).of("QQQ")
    spreads = None
    if trading.costs.half_spread_bp is not None:
        spreads = trading.costs.half_spreads(list(SYMBOLS), np.ones((1, len(SYMBOLS))))
    real = dict.fromkeys(SYMBOLS, False)
    if spec.kind == "jsonl":
        feed = JsonlFeed(poll_s=config.poll_s)
    elif spec.kind == "csv-tail":
        feed = CsvTailFeed(spec.target, poll_s=config.poll_s)
    else:
        from sentio.live.alpaca import open_feed

        feed = open_feed(list(SYMBOLS), poll_s=config.poll_s)
    return Market(feed, history, [], spreads, real, [])


def open_broker(config: LiveConfig, half_spread: np.ndarray | None) -> Broker:
    trading = config.trading
    if config.broker == "paper":
        spreads = half_spread if half_spread is not None else np.zeros(len(SYMBOLS))
        return PaperBroker(trading.capital, trading.costs.vector(), spreads, trading.fill)
    from sentio.live.alpaca import open_broker as alpaca_broker

    return alpaca_broker()


__all__ = ["Market", "open_broker", "open_market"]
