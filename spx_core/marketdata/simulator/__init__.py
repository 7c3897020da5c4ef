"""The embedded simulated SPX option market, with SPY beside it (the default data source).

``SimulatedMarket`` is the pure, synchronous, deterministic model; ``SimulatorSource`` paces it on
the asyncio loop as a :class:`~spx_core.marketdata.source.MarketDataSource`.
"""

from spx_core.marketdata.simulator.config import (ProcessParams, QuotingParams, SimulatorConfig,
                                                  SimulatorConfigError, SpyParams, StrikeParams,
                                                  SurfaceParams)
from spx_core.marketdata.simulator.market import SimulatedMarket

__all__ = ["SimulatorConfig", "SimulatorConfigError", "ProcessParams", "SurfaceParams", "QuotingParams",
           "StrikeParams", "SpyParams", "SimulatedMarket", "SimulatorSource"]


def __getattr__(name: str):
    # the async source is imported on first use so the pure model stays importable on its own
    if name == "SimulatorSource":
        from spx_core.marketdata.simulator.source import SimulatorSource

        return SimulatorSource
    raise AttributeError(name)
