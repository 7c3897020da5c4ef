"""The IB requests of the market-data source: the index, the chain listing, qualification and market-data lines.

Every message is paid for in a token bucket before it is sent (TWS disconnects a client above 50 messages/s);
qualifications go in burst-sized batches. The client libraries throttle too (45/s) but by queueing, so a window's
hundreds of requests would hold an order back for seconds; paced here, the library's queue stays empty.

Only library calls that send a message (``reqMktData``, ``cancelMktData``, ``reqMarketDataType``) or that are
awaited (``qualifyContractsAsync``, ``reqSecDefOptParamsAsync``) are used: the blocking API nests event loops and
breaks under the app's qasync loop. Request sequences (subscribe, re-centre, resubscribe) hold :attr:`io` so
they never interleave.
"""

from __future__ import annotations

import asyncio
import logging
import math

from spx_core.domain.contracts import OptionContract
from spx_core.execution.ib.compat import ib_module
from spx_core.execution.ib.connection import IbConnection
from spx_core.execution.ib.contracts import to_ib_option
from spx_core.execution.ib.pacing import TokenBucket
from spx_core.marketdata.ib_chain import ChainListing

__all__ = ["GENERIC_TICKS", "IbDataError", "IbLines"]

log = logging.getLogger(__name__)

#: generic ticks: 100 option volume, 101 open interest (model greeks come with every option line)
GENERIC_TICKS = "100,101"


class IbDataError(RuntimeError):
    """The chain cannot be set up (unlisted index, empty chain, no index price); one line saying why."""


class IbLines:
    """The index line and the option lines of one source, on ``connection``, paced by ``bucket``."""

    def __init__(self, connection: IbConnection, bucket: TokenBucket, *, underlying: str, timeout: float) -> None:
        self.connection, self.bucket = connection, bucket
        self.underlying, self.timeout = underlying, timeout
        self.io = asyncio.Lock()
        self.options: dict[OptionContract, object] = {}  # qualified IB contracts (conIds never change)
        self.tickers: dict[OptionContract, object] = {}
        self.index = self.index_ticker = None

    @property
    def ib(self):
        return self.connection.ib

    async def send(self, n: int = 1) -> None:
        await self.bucket.take(n)

    async def open_index(self) -> None:
        """Qualify the index (on CBOE) and stream it."""
        index = ib_module().Index(self.underlying, "CBOE", "USD")
        await self.send()
        await asyncio.wait_for(self.ib.qualifyContractsAsync(index), self.timeout)
        if not index.conId:
            raise IbDataError(f"IB does not list the {self.underlying} index on CBOE; check the symbol")
        self.index = index
        async with self.io:
            await self.send()
            self.index_ticker = self.ib.reqMktData(index, "", False, False)

    async def listing(self) -> ChainListing:
        """The option chain's expiries and strikes (SPX and SPXW) from ``reqSecDefOptParams``."""
        await self.send()
        chains = await asyncio.wait_for(
            self.ib.reqSecDefOptParamsAsync(self.underlying, "", "IND", self.index.conId), self.timeout)
        return ChainListing.from_params(chains, underlying=self.underlying, underlying_con_id=self.index.conId)

    def index_price(self) -> float:
        """The index level: last, else the mid, else the previous close (NaN before any tick)."""
        t = self.index_ticker
        if t is None:
            return math.nan
        for value in (t.last, (t.bid + t.ask) / 2 if t.bid > 0 and t.ask > 0 else math.nan, t.close):
            if value is not None and math.isfinite(value) and value > 0:
                return float(value)
        return math.nan

    async def apply(self, contracts: tuple[OptionContract, ...]) -> tuple[OptionContract, ...]:
        """Stream exactly ``contracts`` (those IB lists): qualify the new ones, cancel lines left outside first (the
        line count never exceeds the limit), subscribe the rest. Returns the contracts streamed; caller holds io."""
        await self.qualify([c for c in contracts if c not in self.options])
        keep = tuple(c for c in contracts if c in self.options)
        wanted = set(keep)
        for contract in [c for c in self.tickers if c not in wanted]:
            await self.send()
            self.ib.cancelMktData(self.options[contract])
            del self.tickers[contract]
        for contract in keep:
            if contract not in self.tickers:
                await self.send()
                self.tickers[contract] = self.ib.reqMktData(self.options[contract], GENERIC_TICKS, False, False)
        return keep

    async def qualify(self, contracts: list[OptionContract]) -> None:
        """Qualify in batches of the bucket's burst, each batch's messages paid for before it is sent."""
        options = [(c, to_ib_option(c)) for c in contracts]
        size = max(1, int(self.bucket.burst))
        for start in range(0, len(options), size):
            part = options[start:start + size]
            await self.send(len(part))
            await asyncio.wait_for(self.ib.qualifyContractsAsync(*(o for _, o in part)), self.timeout)
        missing = 0
        for contract, option in options:
            if option.conId:
                self.options[contract] = option
            else:
                missing += 1
        if missing:
            log.info("IB does not list %d of %d contracts of the window", missing, len(options))

    async def resubscribe(self) -> None:
        """Request every line again (after 1101, a reconnect, a data type change); the caller holds io.

        Without a cancel: TWS has dropped them, and a cancel of a line it does not know is an error."""
        if self.index is not None:
            await self.send()
            self.index_ticker = self.ib.reqMktData(self.index, "", False, False)
        for contract in list(self.tickers):
            await self.send()
            self.tickers[contract] = self.ib.reqMktData(self.options[contract], GENERIC_TICKS, False, False)

    async def set_data_type(self, data_type: int) -> None:
        await self.send()
        self.ib.reqMarketDataType(data_type)

    async def close(self, *, disconnect: bool) -> None:
        """Disconnect (TWS drops the lines with the client) or cancel every line of a shared connection."""
        if disconnect:
            await self.connection.disconnect()
        elif self.connection.connected:
            for contract in [self.index, *(self.options[c] for c in self.tickers)]:
                if contract is not None and self.ib.ticker(contract) is not None:
                    await self.send()
                    self.ib.cancelMktData(contract)
        self.tickers.clear()
        self.index_ticker = None
