"""The live loop: bars from a feed, decisions from the strategy, orders to a broker
(``sentio live``, docs/live.md)."""

from sentio.live.config import LiveConfig
from sentio.live.feeds import FeedSpec
from sentio.live.loop import LiveLoop
from sentio.live.risk import RiskLimits
from sentio.live.types import Broker, BrokerEvent, Feed, FeedBar, FeedFault, OrderRequest

__all__ = [
    "Broker",
    "BrokerEvent",
    "Feed",
    "FeedBar",
    "FeedFault",
    "FeedSpec",
    "LiveConfig",
    "LiveLoop",
    "OrderRequest",
    "RiskLimits",
]
