"""The live loop: bars from a feed, decisions from the strategy, orders to a broker."""

__all__: list[str] = []
