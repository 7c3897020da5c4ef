"""SPX Terminal core library: market data, pricing, vol surface, storage. Never imports Qt."""

__version__ = "0.1.0"
