"""One connection to TWS / IB Gateway: async connect, the account, reconnect with backoff, 1100/1101/1102.

Async only: ``await connect()`` and friends run on the application's loop (qasync in the app, a plain asyncio loop
in tests); the libraries' blocking API nests event loops and breaks under qasync, so it is never called.

Events (plain callbacks; a failing callback is logged and does not stop the others):
    ``on_status(cb(ConnectionStatus))``: every state change (the status bar shows ``status.text``).
    ``on_ready(cb(data_lost: bool) -> Awaitable | None)``: after every connect / reconnect and its initial
        synchronization (awaited before ``connect()`` returns), and after TWS restores its link to IB (1101:
        ``data_lost=True``, market data must be re-requested; 1102: ``False``). Brokers reconcile orders here.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum

from spx_core.execution.broker import BrokerError
from spx_core.execution.ib.compat import ib_module
from spx_core.execution.ib.settings import (
    IbSettings,
    LiveTradingRefused,
    is_paper_account,
)

__all__ = ["ConnectionState", "ConnectionStatus", "IbConnection", "NotConnected"]

log = logging.getLogger(__name__)

#: TWS <-> IB servers link: lost, restored with data lost, restored with data kept.
LINK_LOST, LINK_RESTORED_DATA_LOST, LINK_RESTORED = 1100, 1101, 1102


class NotConnected(BrokerError):
    """A request needs the TWS connection and there is none."""


class ConnectionState(StrEnum):
    DISCONNECTED = "disconnected"
    CONNECTING = "connecting"
    CONNECTED = "connected"
    LINK_LOST = "link lost"  # TWS is up but lost IB's servers (1100): orders and data wait
    RECONNECTING = "reconnecting"


@dataclass(frozen=True, slots=True)
class ConnectionStatus:
    state: ConnectionState
    account: str = ""
    is_paper: bool = True
    message: str = ""

    @property
    def text(self) -> str:
        """One line for the status bar, e.g. ``IB DU123 (paper): connected``."""
        who = f"IB {self.account} ({'paper' if self.is_paper else 'LIVE'})" if self.account else "IB"
        return f"{who}: {self.state}" + (f" - {self.message}" if self.message else "")


class IbConnection:
    """The IB session: owns the library's ``IB`` instance (``.ib``, shared with the market-data code)."""

    def __init__(self, settings: IbSettings | None = None, *, ib: object | None = None) -> None:
        self.settings = settings or IbSettings()
        self.ib = ib if ib is not None else ib_module().IB()
        self._account = ""
        self._status = ConnectionStatus(ConnectionState.DISCONNECTED)
        self._status_cbs: list[Callable[[ConnectionStatus], None]] = []
        self._ready_cbs: list[Callable[[bool], Awaitable[None] | None]] = []
        self._closing = False
        self._reconnect_task: asyncio.Task | None = None
        self._tasks: set[asyncio.Task] = set()
        self.loop: asyncio.AbstractEventLoop | None = None
        self.ib.disconnectedEvent += self._on_disconnected
        self.ib.errorEvent += self._on_error

    # --- state ---------------------------------------------------------------------------------------------
    @property
    def account(self) -> str:
        return self._account

    @property
    def is_paper(self) -> bool:
        return is_paper_account(self._account) if self._account else not self.settings.is_live_port

    @property
    def status(self) -> ConnectionStatus:
        return self._status

    @property
    def connected(self) -> bool:
        return self._status.state in (ConnectionState.CONNECTED, ConnectionState.LINK_LOST) and \
            self.ib.isConnected()

    def on_status(self, cb: Callable[[ConnectionStatus], None]) -> Callable[[], None]:
        self._status_cbs.append(cb)
        return lambda: self._status_cbs.remove(cb) if cb in self._status_cbs else None

    def on_ready(self, cb: Callable[[bool], Awaitable[None] | None]) -> Callable[[], None]:
        self._ready_cbs.append(cb)
        return lambda: self._ready_cbs.remove(cb) if cb in self._ready_cbs else None

    def _set_state(self, state: ConnectionState, message: str = "") -> None:
        self._status = ConnectionStatus(state, self._account, self.is_paper, message)
        log.info("%s", self._status.text)
        for cb in list(self._status_cbs):
            try:
                cb(self._status)
            except Exception:
                log.exception("IB status callback %r failed", cb)

    # --- connect / disconnect ------------------------------------------------------------------------------
    async def connect(self) -> None:
        """Connect, synchronize, check the account, then run the ready callbacks (reconciliation).

        Raises :class:`LiveTradingRefused` for a live port/account without the confirmation, ``ConnectionError``
        / ``TimeoutError`` (one line) when TWS is not reachable."""
        self.settings.check_port()
        self.loop = asyncio.get_running_loop()
        self._closing = False
        await self._connect_once()

    async def connect_retrying(self) -> None:
        """:meth:`connect`, trying again with the reconnect backoff while TWS is not reachable (the app may start
        before TWS; the status says when the next try is). Returns once connected; stops when :meth:`disconnect`
        is called meanwhile (ConnectionError). A refusal that needs the user (a live port or account without
        the confirmation, an account TWS does not manage) is raised at once, never retried."""
        delay = self.settings.reconnect_delay
        while True:
            try:
                await self.connect()
                return
            except (ConnectionError, TimeoutError) as exc:
                if self._closing:
                    raise
                self._set_state(ConnectionState.RECONNECTING, f"{exc}; next try in {delay:g} s")
            await asyncio.sleep(delay)
            if self._closing:  # disconnect() was called while we waited
                raise ConnectionError("IB connection closed before TWS could be reached")
            delay = min(delay * 2, self.settings.reconnect_max_delay)

    async def _connect_once(self) -> None:
        s = self.settings
        self._set_state(ConnectionState.CONNECTING, f"{s.host}:{s.port}")
        try:
            await self.ib.connectAsync(s.host, s.port, clientId=s.client_id, timeout=s.connect_timeout,
                                       account=s.account)
        except (OSError, TimeoutError, ConnectionError) as exc:
            self._set_state(ConnectionState.DISCONNECTED, "not reachable")
            raise ConnectionError(f"cannot reach TWS/IB Gateway at {s.host}:{s.port} ({type(exc).__name__}: "
                                  f"{exc}); start it and enable the API socket port in its settings") from None
        accounts = list(self.ib.managedAccounts())
        if s.account and s.account not in accounts:
            self._drop()
            raise BrokerError(f"TWS manages accounts {', '.join(accounts) or 'none'}, not {s.account}; "
                              f"fix the account in the IB settings")
        account = s.account or (accounts[0] if accounts else "")
        try:
            s.check_account(account)
        except LiveTradingRefused:
            self._drop()
            raise
        self._account = account
        if s.market_data_type != 1:
            self.ib.reqMarketDataType(s.market_data_type)
        self._set_state(ConnectionState.CONNECTED)
        await self._run_ready(data_lost=True)

    async def _run_ready(self, *, data_lost: bool) -> None:
        for cb in list(self._ready_cbs):
            try:
                out = cb(data_lost)
                if inspect.isawaitable(out):
                    await out
            except Exception:
                log.exception("IB ready callback %r failed", cb)

    def _drop(self) -> None:
        self._closing = True
        self.ib.disconnect()
        self._closing = False
        self._set_state(ConnectionState.DISCONNECTED)

    async def disconnect(self) -> None:
        """Close the session for good (no reconnect)."""
        self._closing = True
        task, self._reconnect_task = self._reconnect_task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for t in list(self._tasks):
            t.cancel()
        self.ib.disconnect()
        self._set_state(ConnectionState.DISCONNECTED)

    # --- drops and TWS link messages -----------------------------------------------------------------------
    def _on_disconnected(self) -> None:
        if self._closing or self._status.state in (ConnectionState.CONNECTING, ConnectionState.DISCONNECTED):
            return  # our own disconnect, or a failed attempt that the reconnect loop is already handling
        if self._reconnect_task is None or self._reconnect_task.done():
            self._set_state(ConnectionState.RECONNECTING, "connection to TWS dropped")
            self._reconnect_task = self._spawn(self._reconnect_loop())

    async def _reconnect_loop(self) -> None:
        delay = self.settings.reconnect_delay
        while not self._closing:
            await asyncio.sleep(delay)
            try:
                await self._connect_once()
                return
            except LiveTradingRefused as exc:
                self._set_state(ConnectionState.DISCONNECTED, str(exc))
                return
            except (ConnectionError, TimeoutError, OSError, BrokerError) as exc:
                delay = min(delay * 2, self.settings.reconnect_max_delay)
                self._set_state(ConnectionState.RECONNECTING, f"{exc}; next try in {delay:g} s")

    def _on_error(self, req_id: int, code: int, text: str, contract: object = None) -> None:
        if code == LINK_LOST:
            self._set_state(ConnectionState.LINK_LOST, "TWS lost its connection to IB; orders wait")
        elif code in (LINK_RESTORED_DATA_LOST, LINK_RESTORED):
            self._set_state(ConnectionState.CONNECTED)
            self._spawn(self._run_ready(data_lost=code == LINK_RESTORED_DATA_LOST))

    def _spawn(self, coro) -> asyncio.Task:
        loop = self.loop or asyncio.get_event_loop()
        task = loop.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def wait_ready(self, timeout: float) -> None:
        """Wait until connected (e.g. after a drop); raises TimeoutError saying what was awaited."""
        deadline = asyncio.get_running_loop().time() + timeout
        while not self.connected:
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"IB not connected within {timeout:g} s (state: {self._status.text})")
            await asyncio.sleep(0.02)
