"""IbConnection and IbBroker reconciliation against the fake gateway: sync, live refusal, drops, 1100/1101/1102."""

from __future__ import annotations

import asyncio
import math
import socket
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
    """Our refs of the orders TWS got, once per TWS order id (a modify re-sends an id: not a new order)."""
    by_id = {fields[1]: ref for fields in gw.placed_orders() for ref in fields if ref.startswith("r-")}
    return list(by_id.values())


def test_connect_and_sync_shows_the_paper_account(version):
    async def body(s: Session) -> None:
        assert s.conn.connected and s.broker.connected
        assert (s.conn.account, s.conn.is_paper, s.broker.account, s.broker.is_live) == \
            ("DU1234567", True, "DU1234567", False)
        assert s.conn.status.state is ConnectionState.CONNECTED
        assert s.conn.ib.client.serverVersion() == version
        # the account line's figures: IB's own (the fake's account holds 1,000,000), its daily P&L subscribed
        await s.until(lambda: not math.isnan(s.broker.account_figures().day_pnl), what="IB's daily P&L")
        figures = s.broker.account_figures()
        assert (figures.net_liquidation, figures.day_pnl) == (1_000_000.0, 0.0)

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
        s.submit(credit_vertical("r-late", 5600, 5575, limit=5.0))  # while away: refused, never queued
        assert "not connected to TWS" in s.states["r-late"].reason
        assert s.states["r-late"].status is OrderStatus.REJECTED
        s.gw.fill_order(int(state.broker_order_id))  # filled while we were away
        with pytest.raises(TimeoutError, match="IB not connected within 0.001 s"):
            await s.conn.wait_ready(0.001)
        await s.conn.wait_ready(5)
        await s.status("r-rest", OrderStatus.FILLED, timeout=5)
        assert len(s.fills("r-rest")) == 2
        assert "IB DU1234567 (paper): reconnecting - connection to TWS dropped" in s.statuses
        assert s.statuses[-1] == "IB DU1234567 (paper): connected"

    s = run(version, body, settings={"reconnect_delay": 0.2})
    assert _refs_placed(s.gw) == ["r-rest"]  # sent exactly once


def test_order_lost_in_a_drop_is_sent_once_after_the_reconnect(version, ib_client_errors):
    ib_client_errors.allow("Peer closed")

    async def body(s: Session) -> None:
        client = s.conn.ib.client
        real_place = client.placeOrder
        client.placeOrder = lambda *args: None  # the bytes go into a socket that is already dead
        s.submit(credit_vertical("r-lost", 5650, 5625, limit=5.0))
        await s.until(lambda: s.broker.tracker.orders["r-lost"].order_id is not None, what="sent")
        del client.placeOrder
        assert client.placeOrder == real_place
        s.gw.drop_clients()
        await s.until(lambda: not s.conn.connected, what="drop seen")
        state = await s.status("r-lost", OrderStatus.SUBMITTED, timeout=5)  # TWS did not know it: re-sent
        assert state.broker_order_id != "None"

    s = run(version, body)
    assert _refs_placed(s.gw) == ["r-lost"]


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
            second.broker._modify(kept.request.with_terms(limit=4.5))  # re-sent as TWS echoed it after restart
            await second.until(lambda: second.states["r-keep"].limit == 4.5, what="amend after restart")
            assert [o.lmt_price for o in gw.orders() if o.order_ref == "r-keep"] in ([4.5], [-4.5])
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


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_connect_retrying_waits_for_tws_to_start(version, ib_client_errors):
    """The app starts before TWS: it keeps trying with the backoff (the status says so) and connects once TWS
    listens; a refusal that needs the user (a live port) is not retried."""
    ib_client_errors.allow("API connection failed", "Make sure API port")

    async def main() -> None:
        port = _free_port()
        conn = IbConnection(IbSettings(port=port, connect_timeout=1.0, reconnect_delay=0.05, reconnect_max_delay=0.1))
        seen: list[str] = []
        conn.on_status(lambda s: seen.append(s.text))
        task = asyncio.get_running_loop().create_task(conn.connect_retrying())
        while not any("next try in" in text for text in seen):
            await asyncio.sleep(0.01)
        assert conn.status.state is ConnectionState.RECONNECTING and not task.done()
        assert "cannot reach TWS/IB Gateway" in conn.status.message
        async with FakeGateway(server_version=version, today=TODAY, port=port):
            await asyncio.wait_for(task, 5)
            assert conn.connected and conn.account == "DU1234567"
            await conn.disconnect()
        with pytest.raises(LiveTradingRefused):
            await asyncio.wait_for(IbConnection(IbSettings(port=7496)).connect_retrying(), 2)

    asyncio.run(asyncio.wait_for(main(), 15))
