"""A fake IB Gateway that the real ib_insync / ib_async client talks to over a loopback socket.

Use it as an async context manager inside a running loop, or from a background thread (Qt/qasync tests):

    async with FakeGateway(server_version=176) as gw:
        ib = IB(); await ib.connectAsync(gw.host, gw.port, clientId=1)

    gw = FakeGateway(); host, port = gw.start_in_thread(); ...; gw.stop()

Hooks are plain methods, safe to call from any thread (they run on the gateway's loop). Every message received
is recorded in ``received`` as ``(msg_id, fields)`` and in ``received_log`` with its time and client id.
A failure inside the fake (a bug in it, not in the client) is collected in ``failures`` and raised on exit.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any, Self, TypeVar

from tests.fakes import ib_trading
from tests.fakes.ib_book import OptionBook
from tests.fakes.ib_codec import API_PREFIX, FrameBuffer
from tests.fakes.ib_orders import Blotter, OrderRecord, PositionRecord
from tests.fakes.ib_session import Session, push_pnl
from tests.fakes.ib_trading import Instruction, WhatIfAnswer

__all__ = ["FakeGateway", "OrderRecord", "Received", "WhatIfAnswer"]

_log = logging.getLogger("tests.fakes.ib_gateway")
T = TypeVar("T")
SUPPORTED_VERSIONS = range(157, 179)  # never a protobuf version (>= 201)


@dataclass(frozen=True, slots=True)
class Received:
    msg_id: int
    fields: list[str]
    at: float  # time.monotonic()
    client_id: int | None


class FakeGateway:
    """The gateway: server, scenario hooks, recorded requests. See tests/fakes/README.md for the API."""

    def __init__(self, *, server_version: int = 176, account: str = "DU1234567", today: date | None = None,
                 spot: float = 5800.0, vol: float = 0.16, auto_fill: bool = True,
                 commission_per_contract: float = 0.65, validate_ticks: bool = True,
                 pacing_limit: int | None = None, port: int = 0, daily_expiries: int = 5) -> None:
        if server_version not in SUPPORTED_VERSIONS:
            raise ValueError(f"server_version {server_version} unsupported: use 157..178 (157 and 176 are tested)")
        self.server_version = server_version
        self.accounts = [account]
        self.book = OptionBook(today=today or date.today(), spot=spot, vol=vol, daily_expiries=daily_expiries)
        self.blotter = Blotter(self.book, account, commission_per_contract=commission_per_contract)
        self.auto_fill = auto_fill
        self.validate_ticks = validate_ticks  # off-grid limit prices get error 110, as at TWS
        self.pacing_limit = pacing_limit  # messages/s per client beyond which error 100 and the message is dropped
        self.pacing_violations = 0
        self.instructions: deque[Instruction] = deque()
        self.what_if_answer: WhatIfAnswer | None = None
        self.no_subscription = False
        self.delayed_enabled = True
        self.vega_theta_missing = False
        self.received: list[tuple[int, list[str]]] = []
        self.received_log: list[Received] = []
        self.failures: list[str] = []
        self.host = "127.0.0.1"
        self.port = port  # 0: an ephemeral port, read back after start
        self._sessions: list[Session] = []
        self._tasks: set[asyncio.Task] = set()
        self._server: asyncio.AbstractServer | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle ----------------------------------------------------------------------------------------
    async def start(self) -> tuple[str, int]:
        self._loop = asyncio.get_running_loop()
        self._server = await asyncio.start_server(self._serve, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.host, self.port

    async def aclose(self) -> None:
        if self._server is not None:
            self._server.close()
        for s in list(self._sessions):
            s.close()
        if self._tasks:  # closing our side ends each connection's read loop
            await asyncio.wait(self._tasks, timeout=2)
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
        if self.failures and exc[0] is None:
            raise AssertionError("fake gateway failed:\n" + "\n".join(self.failures))

    def start_in_thread(self) -> tuple[str, int]:
        """Run the gateway on its own loop in a daemon thread; returns (host, port)."""
        started = concurrent.futures.Future()

        def run() -> None:
            loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)
            try:
                try:
                    started.set_result(loop.run_until_complete(self.start()))
                except OSError as e:  # e.g. the port is taken: tell the caller at once
                    started.set_exception(e)
                    return
                loop.run_forever()
                loop.run_until_complete(self.aclose())
            finally:
                loop.close()

        self._thread = threading.Thread(target=run, name="fake-ib-gateway", daemon=True)
        self._thread.start()
        return started.result(timeout=5)

    def stop(self) -> None:
        """Stop a gateway started with ``start_in_thread``; raises if the fake itself failed."""
        if self._thread is not None and self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=5)
            self._thread = None
        if self.failures:
            raise AssertionError("fake gateway failed:\n" + "\n".join(self.failures))

    @property
    def address(self) -> tuple[str, int]:
        return self.host, self.port

    # --- connections --------------------------------------------------------------------------------------
    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        session = Session(self, writer)
        self._sessions.append(session)
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        frames = FrameBuffer()
        try:
            if await reader.readexactly(len(API_PREFIX)) != API_PREFIX:
                return
            while data := await reader.read(65536):
                for fields in frames.feed(data):
                    try:
                        session.on_message(fields)
                    except Exception:  # noqa: BLE001 - a bug in the fake: keep serving, fail the test on exit
                        self.failures.append(f"handling {fields[:6]}...: {traceback.format_exc()}")
                        _log.exception("fake gateway failed on %s", fields[:6])
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            session.closed = True
            self._sessions.remove(session)
            self._tasks.discard(task)
            writer.close()

    def live_sessions(self) -> list[Session]:
        return [s for s in self._sessions if s.ready and not s.closed]

    def session_for(self, client_id: int) -> Session | None:
        return next((s for s in self.live_sessions() if s.client_id == client_id), None)

    def record(self, msg_id: int, fields: list[str], client_id: int | None) -> None:
        self.received.append((msg_id, fields))
        self.received_log.append(Received(msg_id, fields, time.monotonic(), client_id))

    def _call(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn`` on the gateway loop (now if already there) and return its result."""
        loop = self._loop
        if loop is None or not loop.is_running() or self._thread is None or \
                threading.current_thread() is self._thread:
            return fn(*args)
        done: concurrent.futures.Future = concurrent.futures.Future()

        def run() -> None:
            try:
                done.set_result(fn(*args))
            except BaseException as e:  # noqa: BLE001 - hand the error to the calling thread
                done.set_exception(e)

        loop.call_soon_threadsafe(run)
        return done.result(timeout=5)

    # --- recorded requests --------------------------------------------------------------------------------
    def count(self, msg_id: int) -> int:
        return sum(1 for m, _ in self.received if m == msg_id)

    def placed_orders(self) -> list[list[str]]:
        """Every placeOrder (3) received, what-ifs included (their whatIf flag is in the fields)."""
        return [f for m, f in self.received if m == 3]

    def max_rate(self, window: float = 1.0, msg_ids: set[int] | None = None) -> int:
        """The most messages received within any ``window`` seconds (for pacing checks)."""
        times = [r.at for r in self.received_log if msg_ids is None or r.msg_id in msg_ids]
        best, start = 0, 0
        for end, t in enumerate(times):
            while t - times[start] > window:
                start += 1
            best = max(best, end - start + 1)
        return best

    # --- scenario hooks: market ---------------------------------------------------------------------------
    def move_market(self, *, spot: float | None = None, vol: float | None = None) -> None:
        """Move spot/vol, re-send ticks to every streaming subscription, fill resting orders that now cross."""
        self._call(self._move_market, spot, vol)

    def _move_market(self, spot: float | None, vol: float | None) -> None:
        self.book.move(spot=spot, vol=vol)
        for s in self.live_sessions():
            for sub in list(s.tickers.values()):
                s.send_ticks(sub)
            push_pnl(s)
        if self.auto_fill:
            for o in list(self.blotter.orders.values()):
                if o.is_live:
                    ib_trading.try_fill(self, o)

    def set_no_subscription(self, enabled: bool = True, *, delayed_enabled: bool = True) -> None:
        """No market data subscription: 354 for live data, 10167 + delayed ticks (type 3/4), or 10168."""
        self.no_subscription, self.delayed_enabled = enabled, delayed_enabled

    def set_vega_theta_missing(self, missing: bool = True) -> None:
        """Send vega and theta as -2 (IB's "not computed") in option computation ticks."""
        self.vega_theta_missing = missing

    # --- scenario hooks: orders ---------------------------------------------------------------------------
    def fill_next(self, quantity: float | None = None, *, price: float | None = None) -> None:
        """Fill the next new order: all of it (None), a fraction (0 < q < 1) or ``quantity`` contracts."""
        self._call(self.instructions.append, Instruction("fill", quantity, price))

    def partial_fill_next(self, quantity: float, *, price: float | None = None) -> None:
        """Fill ``quantity`` of the next new order; the rest stays working."""
        self._call(self.instructions.append, Instruction("partial", quantity, price))

    def reject_next(self, code: int = 201, text: str = "Order rejected - reason:Price exceeds the limit band") -> None:
        self._call(self.instructions.append, Instruction("reject", code=code, text=text))

    def fill_order(self, order_id: int, quantity: float | None = None, price: float | None = None) -> None:
        """Fill a working order (all that remains by default) at ``price`` (default: its limit)."""
        self._call(self._fill_order, order_id, quantity, price)

    def _fill_order(self, order_id: int, quantity: float | None, price: float | None) -> None:
        o = self.blotter.orders[order_id]
        if not o.is_live:
            raise ValueError(f"order {order_id} is {o.status}, not working")
        price = ib_trading.default_fill_price(self, o) if price is None else price
        ib_trading.fill_and_report(self, o, o.remaining if quantity is None else quantity, price)

    def cancel_order(self, order_id: int, reason: str = "") -> None:
        """Cancel a working order from the broker's side (orderStatus Cancelled + 202)."""
        self._call(lambda: ib_trading.cancel(self, self.blotter.orders[order_id], reason))

    def set_what_if(self, answer: WhatIfAnswer | None = None, **fields: Any) -> None:
        """Set the what-if answer (``WhatIfAnswer`` or its fields as keywords); None restores the computed one."""
        self.what_if_answer = answer if answer is not None or not fields else WhatIfAnswer(**fields)

    def set_position(self, con_id: int, quantity: float, *, avg_cost: float = 0.0) -> None:
        """Hold ``quantity`` of ``con_id`` at the account outside any API order (a trade placed in TWS by hand, an
        assignment): no execution, only the position (``avg_cost`` in dollars per contract, as IB reports it),
        pushed to clients subscribed to positions."""
        self._call(self._set_position, con_id, quantity, avg_cost)

    def _set_position(self, con_id: int, quantity: float, avg_cost: float) -> None:
        inst = self.book.by_con_id[con_id]
        self.blotter.positions[con_id] = PositionRecord(inst, float(quantity), float(avg_cost))
        ib_trading.push_positions(self, [inst])

    # --- scenario hooks: connectivity ---------------------------------------------------------------------
    def drop_clients(self) -> None:
        """Close every client socket (the clients see the peer close the connection)."""
        self._call(lambda: [s.close() for s in list(self._sessions)])

    def connectivity_lost(self) -> None:
        self._broadcast_error(1100, "Connectivity between IB and Trader Workstation has been lost.")

    def connectivity_restored(self, data_lost: bool = False) -> None:
        """1102 (data maintained) or 1101 (data lost: market data subscriptions are gone, as at IB)."""
        if data_lost:
            self._call(lambda: [s.tickers.clear() for s in self.live_sessions()])
            self._broadcast_error(1101, "Connectivity between IB and Trader Workstation has been restored - "
                                        "data lost.")
        else:
            self._broadcast_error(1102, "Connectivity between IB and Trader Workstation has been restored - "
                                        "data maintained. All data farms are connected: usopt; ushmds; secdefnj.")

    def _broadcast_error(self, code: int, text: str) -> None:
        self._call(lambda: [s.error(-1, code, text) for s in self.live_sessions()])

    # --- state views ----------------------------------------------------------------------------------------
    def orders(self) -> list[OrderRecord]:
        """Snapshot of all order records (``ib_orders.OrderRecord``), what-ifs excluded."""
        return self._call(lambda: list(self.blotter.orders.values()))

    def position(self, con_id: int) -> float:
        pos = self.blotter.positions.get(con_id)
        return pos.quantity if pos is not None else 0.0
