"""IbMarketDataSource: SPX/SPXW option quotes from TWS / IB Gateway as a :class:`MarketDataSource` (kind IB).

Async only (the requests are in :mod:`spx_core.marketdata.ib_lines`, the pure chain logic in
:mod:`spx_core.marketdata.ib_chain`).

Start: connect (unless connected), qualify the index and stream it, list the chain with ``reqSecDefOptParams``
(SPX and SPXW), wait for the index level, choose the strike window (:func:`~spx_core.marketdata.ib_chain.
select_window`), qualify it and subscribe, every message paced by a token bucket (:data:`DATA_SHARE` of the
settings' ``messages_per_second``; TWS disconnects a client above 50/s).

Streaming: tickers update in place as ticks arrive; every ``1/hz`` s the source reads them all, and emits one
:class:`QuoteBatch` when something moved (``changed`` = the rows that did). ``layout_changed`` when the rows
change: the first batch, and re-centring when the index has moved a quarter of the window (new strikes are
qualified and subscribed, those left behind cancelled, so the line count stays under ``max_tickers``).

Data without a subscription: error 354 (or 10168) on live data switches to delayed data
(``reqMarketDataType(3)``) and re-requests every line; 10167 confirms delayed data; 10168 means delayed data is
not enabled either. The status says so in words. Connection: TWS losing IB (1100) or the socket dropping marks
every row STALE and the status ERROR; 1102 clears it; 1101 and a reconnect re-request every line. TWS not
reachable at start (not running yet, API port closed) is an ERROR status saying when the next try is: the source
tries again with the connection's backoff (``reconnect_delay`` doubling up to ``reconnect_max_delay``) until it
starts or is stopped. A refusal that needs the user (a live port or account without the confirmation) is not
retried.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import date, datetime

import numpy as np

from spx_core.domain.calendar import ET
from spx_core.domain.snapshot import ChainSnapshot
from spx_core.execution.ib.connection import (
    ConnectionState,
    ConnectionStatus,
    IbConnection,
)
from spx_core.execution.ib.pacing import TokenBucket
from spx_core.marketdata.ib_chain import (
    ChainListing,
    ChainRows,
    Selection,
    Subscriptions,
    select_window,
)
from spx_core.marketdata.ib_lines import IbDataError, IbLines
from spx_core.marketdata.source import (
    BatchCallback,
    QuoteBatch,
    SourceKind,
    SourceState,
    SourceStatus,
    StatusCallback,
    Subscribers,
)

__all__ = ["DELAYED_NOTE", "NO_DATA_NOTE", "IbDataError", "IbMarketDataSource"]

log = logging.getLogger(__name__)

DELAYED = 3
#: the share of the connection's message rate the source uses: the rest is left to the connection's own requests
#: (about 8 at every connect) and to orders, which must never queue behind a window of market-data requests
DATA_SHARE = 0.8
#: what the user needs for live quotes (IB Account Management > Settings > Market Data Subscriptions)
SUBSCRIBE_HINT = ("subscribe to OPRA (US options) and Cboe Streaming Market Indexes in IB Account Management > "
                  "Market Data Subscriptions")
DELAYED_NOTE = f"no market data subscription for SPX options: showing delayed data (15 min); {SUBSCRIBE_HINT}"
NO_DATA_NOTE = (f"no market data subscription for SPX options and delayed data is not enabled: {SUBSCRIBE_HINT} "
                f"(or allow delayed data there)")
_NOT_SUBSCRIBED, _DELAYED_SHOWN, _DELAYED_REFUSED = 354, 10167, 10168


class IbMarketDataSource:
    """SPX options from Interactive Brokers (see the module docstring).

    Args:
        connection: the IB session (shared with the broker, or owned: ``owns_connection`` disconnects it on stop).
        underlying: the index ("SPX").
        strike_window: strikes per expiry around the money.
        expiries: how many (root, expiry) series, nearest first.
        max_tickers: market-data lines this source may hold, the index's included (TWS default: 100).
        hz: batches per second at most.
        recenter_fraction: re-centre when the index moved this share of the window's half-width.
        bucket: the message pacing bucket (shared with the broker when given).
        today: the trading date (ET) for expiry selection (default: today in New York).
        clock: snapshot time, ns since the epoch (default: the wall clock).
    """

    name = "IB"
    kind = SourceKind.IB

    def __init__(self, connection: IbConnection, *, underlying: str = "SPX", strike_window: int = 30,
                 expiries: int = 4, max_tickers: int = 100, hz: float = 4.0, recenter_fraction: float = 0.25,
                 owns_connection: bool = False, bucket: TokenBucket | None = None,
                 today: Callable[[], date] | None = None, clock: Callable[[], int] = time.time_ns) -> None:
        if strike_window < 1 or expiries < 1 or max_tickers < 3 or not hz > 0:
            raise ValueError(f"IB source needs strike_window >= 1, expiries >= 1, max_tickers >= 3 and hz > 0; got "
                             f"{strike_window}, {expiries}, {max_tickers}, {hz}")
        self.connection = connection
        self.underlying = underlying
        self.strike_window, self.expiries, self.max_tickers = strike_window, expiries, max_tickers
        self._period, self._recenter_fraction = 1.0 / hz, recenter_fraction
        self._owns = owns_connection
        rate = connection.settings.messages_per_second * DATA_SHARE
        self._timeout = connection.settings.request_timeout
        self._lines = IbLines(connection, bucket or TokenBucket(rate, max(1.0, rate / 10)), underlying=underlying,
                              timeout=self._timeout)
        self._today = today or (lambda: datetime.now(ET).date())
        self._clock = clock
        self._subs = Subscribers()
        self._status = SourceStatus(self.name, SourceState.STOPPED, "not started", self.kind)
        self._listing: ChainListing | None = None
        self._selection: Selection | None = None
        self._rows: ChainRows | None = None
        self._data_type = connection.settings.market_data_type
        self._delayed = self._no_data = False
        self._stale = ""  # why quotes are stale ("" while live)
        self._latest: ChainSnapshot | None = None
        self._last_key: tuple[float, bool] | None = None
        self._sequence = 0
        self._layout_dirty = self._applying = False
        self._paused = False
        self._task: asyncio.Task | None = None
        self._recenter_task: asyncio.Task | None = None
        self._retry_task: asyncio.Task | None = None  # the next start while TWS is not reachable
        self._side: set[asyncio.Task] = set()
        self._unhook: list[Callable[[], None]] = []

    # --- protocol ----------------------------------------------------------------------------------------
    @property
    def status(self) -> SourceStatus:
        return self._status

    @property
    def latest(self) -> ChainSnapshot | None:
        return self._latest

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def subscribe(self, on_batch: BatchCallback | None = None,
                  on_status: StatusCallback | None = None) -> Callable[[], None]:
        return self._subs.add(on_batch, on_status)

    def subscriptions(self) -> Subscriptions:
        """What is streamed now (the chain panel shows ``.text``: "IB: 98 of 240 contracts subscribed")."""
        sel, tickers = self._selection, self._lines.tickers
        return Subscriptions(tuple(tickers) if sel is None else tuple(c for c in sel.contracts if c in tickers),
                             0 if sel is None else sel.wanted, self.max_tickers - 1, self._delayed)

    @property
    def greeks(self) -> dict[str, np.ndarray]:
        """IB's model greeks per row of :attr:`latest` (iv, delta, gamma, vega per vol point, theta per day);
        NaN where IB did not compute them (consumers compute their own)."""
        return {} if self._rows is None else dict(self._rows.greeks)

    async def start(self) -> None:
        """Connect if needed, discover and subscribe, then batch at the cadence. Idempotent; a failure is an
        ERROR status with one line saying why (not raised: the app keeps running)."""
        if self.running:
            return
        s = self.connection.settings
        try:
            if not self.connection.connected:
                self._set_status(SourceState.STARTING, f"connecting to TWS at {s.host}:{s.port}")
                await self.connection.connect()
            self._hook()
            await self._discover()
        except (ConnectionError, TimeoutError) as exc:  # TWS not up (yet): try again, as the orders' connection does
            log.warning("IB market data could not start (%s); next try in %g s", _one_line(exc), s.reconnect_delay)
            self._set_status(SourceState.ERROR, f"IB market data: {_one_line(exc)}; next try in "
                                                f"{s.reconnect_delay:g} s")
            await self._release()
            self._retry_task = asyncio.get_running_loop().create_task(self._start_when_reachable(),
                                                                      name="ib-data-retry")
            return
        except Exception as exc:  # one line for the user; the log has the rest
            log.warning("IB market data failed to start", exc_info=True)
            self._set_status(SourceState.ERROR, f"IB market data: {_one_line(exc)}")
            await self._release()
            return
        self._task = asyncio.get_running_loop().create_task(self._run(), name="ib-market-data")
        self._announce()

    async def _start_when_reachable(self) -> None:
        """Start again once TWS answers: the connection tries with its own backoff (``connect_retrying``), and its
        "next try in" lines are this source's status meanwhile."""

        def relay(status: ConnectionStatus) -> None:
            if status.state is ConnectionState.RECONNECTING:
                self._set_status(SourceState.ERROR, f"IB market data: {status.message}")

        unrelay = self.connection.on_status(relay)
        try:
            await asyncio.sleep(self.connection.settings.reconnect_delay)
            if not self.connection.connected:
                await self.connection.connect_retrying()
        except Exception as exc:  # a refusal that needs the user (a live port or account): said, not retried
            self._set_status(SourceState.ERROR, f"IB market data: {_one_line(exc)}")
            return
        finally:
            unrelay()
        await self.start()

    async def stop(self) -> None:
        """Stop batching (and trying to start), cancel the lines (or disconnect an owned connection). Idempotent."""
        tasks = [t for t in (self._task, self._recenter_task, self._retry_task, *self._side) if t is not None]
        self._task = self._recenter_task = self._retry_task = None
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        await self._release()
        if self._status.state is not SourceState.ERROR:
            self._set_status(SourceState.STOPPED, "stopped")

    def pause(self) -> None:
        """Hold the batches (the lines keep streaming; resume shows the market as it is then)."""
        if not self._paused:
            self._paused = True
            self._set_status(SourceState.PAUSED, "paused")

    def resume(self) -> None:
        if self._paused:
            self._paused = False
            self._announce()

    # --- setup ---------------------------------------------------------------------------------------------
    def _hook(self) -> None:
        ib = self.connection.ib
        ib.errorEvent += self._on_error
        self._unhook = [lambda: ib.errorEvent.disconnect(self._on_error),
                        self.connection.on_status(self._on_connection), self.connection.on_ready(self._on_ready)]

    async def _release(self) -> None:
        for undo in self._unhook:
            undo()
        self._unhook = []
        await self._lines.close(disconnect=self._owns)

    async def _discover(self) -> None:
        self._set_status(SourceState.STARTING, f"listing the {self.underlying} option chain")
        await self._lines.open_index()
        self._listing = await self._lines.listing()
        if not self._listing.series(self._today()):
            raise IbDataError(f"IB lists no current SPX/SPXW option expiries for {self.underlying}")
        spot = await self._wait_for_index()
        selection = self._select(spot)
        self._set_status(SourceState.STARTING, f"qualifying {len(selection.contracts)} contracts around "
                                               f"{spot:.2f}")
        async with self._lines.io:
            await self._apply(selection)

    async def _wait_for_index(self) -> float:
        deadline = asyncio.get_running_loop().time() + self._timeout
        while not math.isfinite(spot := self._index_price()):
            if self._no_data:
                raise IbDataError(NO_DATA_NOTE)
            if asyncio.get_running_loop().time() > deadline:
                raise IbDataError(f"no {self.underlying} index level from IB within {self._timeout:g} s; "
                                  f"check the market data subscriptions in IB Account Management")
            await asyncio.sleep(0.02)
        return spot

    def _select(self, spot: float) -> Selection:
        return select_window(self._listing, spot, today=self._today(), expiries=self.expiries,
                             strike_window=self.strike_window, max_lines=self.max_tickers - 1)

    async def _apply(self, selection: Selection) -> None:
        """Stream ``selection`` (caller holds the lines' io); the next batch is a new layout."""
        self._applying = True  # lines are cancelled before new ones come: batches wait for the new layout
        try:
            keep = await self._lines.apply(selection.contracts)
        finally:
            self._applying = False
        self._selection = replace(selection, contracts=keep)
        self._rows = ChainRows(keep, self._clock())
        self._layout_dirty = True

    # --- streaming -----------------------------------------------------------------------------------------
    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time()
        while True:
            deadline = max(deadline + self._period, loop.time())
            await asyncio.sleep(deadline - loop.time())
            if self._paused:
                continue
            try:
                self._emit()
                self._maybe_recenter()
            except Exception as exc:  # report, do not die silently
                log.exception("IB market data batch failed")
                self._set_status(SourceState.ERROR, f"IB market data failed: {_one_line(exc)}")
                return

    def _emit(self) -> None:
        rows = self._rows
        if rows is None or self._applying:
            return
        now = self._clock()
        spot = self._index_price()
        if not math.isfinite(spot):
            spot = self._latest.underlying_price if self._latest is not None else self._selection.center
        changed = rows.read([self._lines.tickers.get(c) for c in rows.contracts], now)
        stale = bool(self._stale)
        layout = self._layout_dirty or self._latest is None
        if not layout and not changed.size and self._last_key == (spot, stale):
            return
        if layout or (self._last_key is not None and self._last_key[1] != stale):
            changed = np.arange(len(rows), dtype=np.int64)  # new rows, or every row's STALE flag flipped
        snap = rows.snapshot(self.underlying, now, spot, stale=stale, previous=None if layout else self._latest)
        self._latest, self._last_key, self._layout_dirty = snap, (spot, stale), False
        self._sequence += 1
        self._subs.emit_batch(QuoteBatch(snap, changed, layout, self._sequence))

    def _index_price(self) -> float:
        return self._lines.index_price()

    def _maybe_recenter(self) -> None:
        sel, listing = self._selection, self._listing
        if sel is None or listing is None or self._stale or self._no_data or not sel.contracts or \
                (self._recenter_task is not None and not self._recenter_task.done()):
            return
        spot = self._index_price()
        if not math.isfinite(spot):
            return
        first = sel.contracts[0]
        strikes = np.asarray(listing.strikes(first.root))
        per_series = sum(1 for c in sel.contracts if (c.root, c.expiry) == (first.root, first.expiry)) // 2
        moved = abs(int(np.searchsorted(strikes, spot)) - int(np.searchsorted(strikes, sel.center)))
        if moved > max(1.0, self._recenter_fraction * per_series / 2):
            self._recenter_task = asyncio.get_running_loop().create_task(self._recenter(spot), name="ib-recenter")

    async def _recenter(self, spot: float) -> None:
        selection = self._select(spot)
        async with self._lines.io:
            if selection.contracts == self._selection.contracts:
                self._selection = replace(self._selection, center=selection.center)
                return
            try:
                await self._apply(selection)
            except (TimeoutError, ConnectionError) as exc:  # keep the old window; try again on the next move
                log.warning("IB re-centre failed: %s", exc)
                return
        log.info("IB chain re-centred on %.2f: %d contracts", spot, len(self._lines.tickers))
        self._announce()

    # --- events --------------------------------------------------------------------------------------------
    def _on_error(self, req_id: int, code: int, text: str, contract: object = None) -> None:
        if code == _NOT_SUBSCRIBED and self._data_type == 1:
            self._data_type = DELAYED
            self._spawn(self._go_delayed())
        elif code == _DELAYED_SHOWN and not self._delayed:
            self._delayed = True
            self._announce()
        elif code in (_NOT_SUBSCRIBED, _DELAYED_REFUSED) and not self._no_data:
            self._no_data = True
            self._set_status(SourceState.ERROR, NO_DATA_NOTE)

    async def _go_delayed(self) -> None:
        log.info("no live market data subscription: switching to delayed data")
        async with self._lines.io:
            await self._lines.set_data_type(DELAYED)
            await self._lines.resubscribe()

    def _on_connection(self, status: ConnectionStatus) -> None:
        if status.state is ConnectionState.LINK_LOST:
            self._go_stale("TWS lost its connection to IB (1100): quotes are stale until it is restored")
        elif status.state is ConnectionState.RECONNECTING:
            self._go_stale(f"connection to TWS dropped, reconnecting: quotes are stale ({status.message})")
        elif status.state is ConnectionState.DISCONNECTED and self.running:
            self._go_stale(f"disconnected from TWS: quotes are stale{f' ({status.message})' if status.message else ''}")

    def _go_stale(self, why: str) -> None:
        self._stale = why
        self._set_status(SourceState.ERROR, why)

    async def _on_ready(self, data_lost: bool) -> None:
        """After a reconnect or 1101 (``data_lost``: every line re-requested) or 1102 (lines kept)."""
        if data_lost:
            async with self._lines.io:
                if self._data_type != self.connection.settings.market_data_type:
                    await self._lines.set_data_type(self._data_type)
                await self._lines.resubscribe()
            log.info("IB market data resubscribed: %d lines", len(self._lines.tickers) + 1)
        self._stale = ""
        self._announce()

    # --- status --------------------------------------------------------------------------------------------
    def _announce(self) -> None:
        if self._no_data:
            return  # the ERROR saying why stays until the user fixes it
        if self._stale:
            self._set_status(SourceState.ERROR, self._stale)
            return
        text = self.subscriptions().text
        self._set_status(SourceState.PAUSED if self._paused else SourceState.RUNNING,
                         f"{text}; {DELAYED_NOTE}" if self._delayed else text)

    def _set_status(self, state: SourceState, message: str) -> None:
        self._status = SourceStatus(self.name, state, message, self.kind)
        self._subs.emit_status(self._status)

    def _spawn(self, coro) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._side.add(task)
        task.add_done_callback(self._side.discard)


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    if isinstance(exc, TimeoutError):
        return text or "TWS did not answer in time; check the connection"
    return text or type(exc).__name__
