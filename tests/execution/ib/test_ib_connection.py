"""IbConnection and IbBroker reconciliation against the fake gateway: sync, live refusal, drops, 1100/1101/1102."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest

from spx_core.execution.ib import (
    LIVE_CONFIRMATION,
    ConnectionState,
    IbBroker,
    IbConnection,
    IbSettings,
    LiveTradingRefused,
)
from spx_core.execution.orders import OrderState, OrderStatus
from tests.execution.ib.harness import (
    TODAY,
    VERSIONS,
    Session,
    credit_vertical,
    run,
    settings_for,
)
from tests.fakes.ib_gateway import FakeGateway

pytestmark = pytest.mark.parametrize("version", VERSIONS)

REQ_OPEN_ORDERS = 5


def _refs_placed(gw: FakeGateway) -> list[str]:
    return [ref for fields in gw.placed_orders() for ref in fields if ref.startswith("r-")]


def test_connect_and_sync_shows_the_paper_account(version):
    async def body(s: Session) -> None:
        assert s.conn.connected and s.broker.connected
        assert (s.conn.account, s.conn.is_paper, s.broker.account, s.broker.is_live) == \
            ("DU1234567", True, "DU1234567", False)
        assert s.conn.status.state is ConnectionState.CONNECTED
        assert s.conn.ib.client.serverVersion() == version

    s = run(version, body)
    assert s.statuses[:2] == [f"IB: connecting - 127.0.0.1:{s.gw.port}", "IB DU1234567 (paper): connected"]
    assert s.statuses[-1] == "IB DU1234567 (paper): disconnected"


def test_live_port_is_refused_before_connecting(version):
    async def main() -> None:
        conn = IbConnection(IbSettings(port=7496))
        with pytest.raises(LiveTradingRefused, match="port 7496 is a LIVE trading port; use the paper port 7497"):
            await conn.connect()
        assert conn.status.state is ConnectionState.DISCONNECTED

    asyncio.run(main())
    IbSettings(port=7496, live_enabled=True, live_confirmation=LIVE_CONFIRMATION).check_port()  # allowed
    with pytest.raises(LiveTradingRefused, match="type 'I UNDERSTAND LIVE TRADING'"):
        IbSettings(port=4001, live_enabled=True, live_confirmation="yes").check_port()


def test_live_account_is_refused_after_the_handshake(version):
    async def main() -> None:
        async with FakeGateway(server_version=version, today=TODAY, account="U7654321") as gw:
            conn = IbConnection(settings_for(gw))
            with pytest.raises(LiveTradingRefused, match="account U7654321 is a LIVE account"):
                await conn.connect()
            assert not conn.connected and conn.status.state is ConnectionState.DISCONNECTED
            live = IbConnection(settings_for(gw, live_enabled=True, live_confirmation=LIVE_CONFIRMATION))
            await live.connect()
            assert live.account == "U7654321" and not live.is_paper and IbBroker(live).is_live
            await live.disconnect()

    asyncio.run(asyncio.wait_for(main(), 10))


def test_drop_reconnect_reconciles_fills_and_sends_nothing_twice(version, ib_client_errors):
    ib_client_errors.allow("Peer closed", "API connection failed")

    async def body(s: Session) -> None:
        s.submit(credit_vertical("r-rest", 5650, 5625, limit=5.0))
        state = await s.status("r-rest", OrderStatus.SUBMITTED)
        s.gw.drop_clients()
        await s.until(lambda: not s.conn.connected, what="drop seen")
        s.submit(credit_vertical("r-late", 5600, 5575, limit=5.0))  # while away: queued, sent after reconnect
        s.gw.fill_order(int(state.broker_order_id))  # filled while we were away
        await s.status("r-rest", OrderStatus.FILLED, timeout=5)
        await s.status("r-late", OrderStatus.SUBMITTED, timeout=5)
        assert len(s.fills("r-rest")) == 2
        assert "IB DU1234567 (paper): reconnecting - connection to TWS dropped" in s.statuses
        assert s.statuses[-1] == "IB DU1234567 (paper): connected"

    s = run(version, body)
    assert sorted(_refs_placed(s.gw)) == ["r-late", "r-rest"]  # each ref sent exactly once


def test_restart_adopts_working_orders_by_ref(version, ib_client_errors):
    ib_client_errors.allow(202)

    async def main() -> None:
        async with FakeGateway(server_version=version, today=TODAY) as gw:
            first = Session(gw, conn := IbConnection(settings_for(gw)), IbBroker(conn))
            first.broker.bind(first.sink)
            await conn.connect()
            first.submit(credit_vertical("r-keep", 5650, 5625, limit=5.0))
            kept = await first.status("r-keep", OrderStatus.SUBMITTED)
            first.submit(credit_vertical("r-ack", 5600, 5575, limit=6.0))
            await first.status("r-ack", OrderStatus.SUBMITTED)
            await conn.disconnect()  # the app quits with the orders working at TWS
            never_sent = OrderState.new(credit_vertical("r-lost", 5600, 5575, limit=5.0))
            ack_lost = OrderState.new(first.states["r-ack"].request)  # stored PENDING: the ack never got stored

            second = Session(gw, conn2 := IbConnection(settings_for(gw)), IbBroker(conn2))
            second.broker.bind(second.sink)
            second.states.update({"r-keep": kept, "r-lost": never_sent, "r-ack": ack_lost})
            second.broker.adopt([kept, never_sent, ack_lost])
            await conn2.connect()  # reconciliation: r-keep is open at TWS, r-lost unknown there
            lost = await second.status("r-lost", OrderStatus.CANCELLED)
            assert "never reached TWS" in lost.reason
            assert second.states["r-keep"].status is OrderStatus.SUBMITTED
            await second.status("r-ack", OrderStatus.SUBMITTED)  # TWS knows the ref: adopted, not re-sent
            second.broker._cancel("r-keep")
            await second.status("r-keep", OrderStatus.CANCELLED)
            await conn2.disconnect()
            assert _refs_placed(gw) == ["r-keep", "r-ack"]

    asyncio.run(asyncio.wait_for(main(), 15))


def test_link_lost_then_restored_reconciles(version, ib_client_errors):
    ib_client_errors.allow(1100, 1101, 1102)  # the library logs TWS's link messages as errors

    async def body(s: Session) -> None:
        lost_data: list[bool] = []
        s.conn.on_ready(lambda data_lost: lost_data.append(data_lost))
        s.gw.connectivity_lost()
        await s.until(lambda: s.conn.status.state is ConnectionState.LINK_LOST, what="1100")
        assert "TWS lost its connection to IB" in s.statuses[-1]
        before = s.gw.count(REQ_OPEN_ORDERS)
        s.gw.connectivity_restored()
        await s.until(lambda: lost_data == [False], what="1102 ready")
        assert s.conn.status.state is ConnectionState.CONNECTED
        await s.until(lambda: s.gw.count(REQ_OPEN_ORDERS) > before, what="reconciliation after 1102")
        s.gw.connectivity_restored(data_lost=True)
        await s.until(lambda: lost_data == [False, True], what="1101 ready (resubscribe)")

    run(version, body)


def test_adopted_order_filled_while_away_gets_its_fills(version):
    async def main() -> None:
        async with FakeGateway(server_version=version, today=TODAY) as gw:
            first = Session(gw, conn := IbConnection(settings_for(gw)), IbBroker(conn))
            first.broker.bind(first.sink)
            await conn.connect()
            first.submit(credit_vertical("r-away", 5650, 5625, limit=5.0, quantity=2))
            kept = await first.status("r-away", OrderStatus.SUBMITTED)
            await conn.disconnect()
            gw.fill_order(int(kept.broker_order_id))

            second = Session(gw, conn2 := IbConnection(settings_for(gw)), IbBroker(conn2))
            second.broker.bind(second.sink)
            second.states["r-away"] = kept
            second.broker.adopt([replace(kept)])
            await conn2.connect()
            state = await second.status("r-away", OrderStatus.FILLED)
            assert state.filled == 2 and len(second.fills("r-away")) == 2
            await conn2.disconnect()

    asyncio.run(asyncio.wait_for(main(), 15))
