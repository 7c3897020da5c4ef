"""One fake gateway + IbConnection + IbBroker per test, on a plain asyncio loop (``asyncio.run``)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import date

from spx_core.domain.contracts import OptionContract, Right, Root
from spx_core.execution.ib import IbBroker, IbConnection, IbSettings
from spx_core.execution.orders import (
    EventKind,
    OrderEvent,
    OrderRequest,
    OrderState,
    OrderStatus,
    Side,
    apply,
)
from spx_core.strategies.structure import Leg
from tests.fakes.ib_gateway import FakeGateway

TODAY = date(2026, 12, 3)  # a Thursday: SPXW 0DTE today, SPX monthly 2026-12-18 (a third Friday)
EXPIRY = date(2026, 12, 4)
MONTHLY = date(2026, 12, 18)
VERSIONS = [157, 176]


def put(strike: float, expiry: date = EXPIRY, root: Root = Root.SPXW) -> OptionContract:
    return OptionContract(root=root, expiry=expiry, strike=strike, right=Right.PUT)


def credit_vertical(ref: str, short: float, long: float, *, limit: float, quantity: int = 1) -> OrderRequest:
    """SELL (+short put, -long put) at ``limit`` credit: the put credit vertical in our price convention."""
    return OrderRequest(ref=ref, legs=(Leg(put(short), 1), Leg(put(long), -1)), side=Side.SELL, quantity=quantity,
                        limit=limit, broker="ib")


@dataclass
class Session:
    gw: FakeGateway
    conn: IbConnection
    broker: IbBroker
    events: list[OrderEvent] = field(default_factory=list)
    states: dict[str, OrderState] = field(default_factory=dict)
    statuses: list[str] = field(default_factory=list)

    def sink(self, event: OrderEvent) -> None:
        """What the order service does: fold the event into the state (raises on an illegal one)."""
        self.events.append(event)
        state = self.states[event.ref]
        self.states[event.ref] = apply(state, event)

    def submit(self, request: OrderRequest) -> None:
        # The gate (another branch) mints approvals; the adapter's own send path is tested directly here.
        self.states[request.ref] = OrderState.new(request)
        self.broker._submit(request)

    def kinds(self, ref: str) -> list[tuple[str, str]]:
        return [(e.kind.value, (e.status.value if e.status else "")) for e in self.events if e.ref == ref]

    def fills(self, ref: str) -> list:
        return [e.fill for e in self.events if e.ref == ref and e.kind is EventKind.FILL]

    async def until(self, predicate: Callable[[], bool], timeout: float = 2.0, what: str = "condition") -> None:
        deadline = asyncio.get_running_loop().time() + timeout
        while not predicate():
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"{what} not met within {timeout} s; events: {self.events}")
            await asyncio.sleep(0.01)

    async def status(self, ref: str, status: OrderStatus, timeout: float = 2.0) -> OrderState:
        await self.until(lambda: self.states[ref].status is status, timeout, f"{ref} {status}")
        return self.states[ref]


def settings_for(gw: FakeGateway, **overrides) -> IbSettings:
    base = {"host": gw.host, "port": gw.port, "client_id": 17, "connect_timeout": 3.0, "request_timeout": 3.0,
                "reconnect_delay": 0.05, "reconnect_max_delay": 0.2, "commission_wait": 0.5}
    base.update(overrides)
    return IbSettings(**base)


def run(version: int, body: Callable[[Session], Awaitable[None]], *, settings: dict | None = None,
        timeout: float = 15.0, **gw_args) -> Session:
    """Start a fake gateway, connect the adapter, run ``body(session)``, disconnect; returns the session."""

    async def main() -> Session:
        async with FakeGateway(server_version=version, today=TODAY, **gw_args) as gw:
            conn = IbConnection(settings_for(gw, **(settings or {})))
            broker = IbBroker(conn)
            session = Session(gw, conn, broker)
            conn.on_status(lambda s: session.statuses.append(s.text))
            broker.bind(session.sink)
            await conn.connect()
            try:
                await body(session)
            finally:
                broker.close()
                await conn.disconnect()
            return session

    return asyncio.run(asyncio.wait_for(main(), timeout))
