"""Feed: bridges a spx_core MarketDataSource to Qt signals and owns switching sim <-> replay <-> IB.

The core calls plain callbacks on the asyncio loop (the GUI thread under qasync); the feed re-emits
them as Qt signals so panels connect with ordinary slots. Only one source runs at a time.

Signals:
    batch(QuoteBatch): a new chain state.
    status(SourceStatus): the current source's state changed (or it has a notice for the user).
    source_changed(SourceKind): the kind of the source just switched to.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Signal

from spx_core.marketdata.source import MarketDataSource, QuoteBatch, SourceKind, SourceStatus

if TYPE_CHECKING:
    from app.settings import AppSettings
    from spx_core.execution.ib import IbSettings
    from spx_core.storage import Store

log = logging.getLogger(__name__)

__all__ = ["Feed", "ib_data_settings"]

#: the market-data connection's client id is the orders' one plus this: TWS refuses a second client with an id
#: in use (326), and orders stay bound to the orders' id
DATA_CLIENT_OFFSET = 1


def ib_data_settings(settings: AppSettings) -> IbSettings:
    """The IB connection of the "IB" market-data source: the settings' TWS, account and live switch, its own
    client id (the orders' + :data:`DATA_CLIENT_OFFSET`) so it runs beside an IB order connection."""
    from spx_core.execution.ib import IbSettings

    return IbSettings(host=settings.ib_host, port=settings.ib_port,
                      client_id=settings.ib_client_id + DATA_CLIENT_OFFSET, account=settings.ib_account,
                      live_enabled=settings.ib_live_enabled, live_confirmation=settings.ib_live_confirmation)


class Feed(QObject):
    batch = Signal(object)
    status = Signal(object)
    source_changed = Signal(object)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._source: MarketDataSource | None = None
        self._unsubscribe: Callable[[], None] | None = None
        self.batches = 0
        self.last_batch: QuoteBatch | None = None

    @property
    def source(self) -> MarketDataSource | None:
        return self._source

    @property
    def kind(self) -> SourceKind | None:
        """The running source's kind, or None when none runs."""
        return None if self._source is None else self._source.kind

    async def switch_to(self, source: MarketDataSource) -> None:
        """Stop the current source (if any), then start ``source`` and forward its events."""
        await self.stop()
        self._source = source
        self._unsubscribe = source.subscribe(self._on_batch, self._on_status)
        self.source_changed.emit(source.kind)
        await source.start()

    async def simulated(self, *, seed: int, speed: float, **config: object) -> None:
        """Switch to the embedded simulated market (``config``: further :class:`SimulatorConfig` fields)."""
        from spx_core.marketdata.simulator import SimulatorConfig, SimulatorSource

        await self.switch_to(SimulatorSource(SimulatorConfig(seed=seed, speed=speed, **config)))

    async def replay(self, store: Store, session: str, *, speed: float = 1.0, skip_gaps: bool = False) -> None:
        """Switch to a replay of a stored session."""
        from spx_core.marketdata.replay import ReplaySource

        await self.switch_to(ReplaySource(store, session=session, speed=speed, skip_gaps=skip_gaps))

    async def ib(self, settings: IbSettings, **source: object) -> None:
        """Switch to Interactive Brokers market data over its own TWS connection (closed when the feed switches
        away); ``source``: further :class:`IbMarketDataSource` options (strike_window, expiries, max_tickers).
        A failure to connect is the source's ERROR status (one line), not an exception."""
        from spx_core.execution.ib import IbConnection
        from spx_core.marketdata.ib_source import IbMarketDataSource

        await self.switch_to(IbMarketDataSource(IbConnection(settings), owns_connection=True, **source))

    async def stop(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        source, self._source = self._source, None
        if source is not None:
            await source.stop()

    def _on_batch(self, batch: QuoteBatch) -> None:
        self.batches += 1
        self.last_batch = batch
        self.batch.emit(batch)

    def _on_status(self, status: SourceStatus) -> None:
        log.info("%s: %s %s%s", status.source, status.state.value, status.message,
                 f" ({status.notice})" if status.notice else "")
        self.status.emit(status)
