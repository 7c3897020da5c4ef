"""The fake IB Gateway against the real client library (ib_insync, or ib_async), at server versions 157 and 176.

Every test fails on an unexpected ERROR record from the client library (``ib_decoder_errors`` autouse fixture):
a field-layout mistake in the fake shows up as the decoder's "Error handling fields".
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable
from datetime import date

import pytest

from tests.fakes.ib_book import BAG_CON_ID, SPX_CON_ID
from tests.fakes.ib_client import ib_module
from tests.fakes.ib_gateway import FakeGateway

ibm = ib_module()
TODAY = date(2026, 12, 3)  # a Thursday: SPXW 0DTE today, SPX monthly 2026-12-18
EXPIRY = "20261204"
VERSIONS = [157, 176]
pytestmark = pytest.mark.parametrize("version", VERSIONS)


def run(version: int, body: Callable[[FakeGateway, object], Awaitable[None]], **gw_args) -> FakeGateway:
    """Start a gateway, connect a real client, run ``body(gw, ib)``, disconnect; returns the gateway."""

    async def main() -> FakeGateway:
        async with FakeGateway(server_version=version, today=TODAY, **gw_args) as gw:
            ib = ibm.IB()
            await ib.connectAsync(gw.host, gw.port, clientId=7, timeout=2)
            try:
                await body(gw, ib)
            finally:
                ib.disconnect()
            return gw

    return asyncio.run(asyncio.wait_for(main(), 10))


async def until(predicate: Callable[[], bool], timeout: float = 1.0) -> None:
    """Wait for ``predicate`` (polled every 10 ms); TimeoutError says it did not become true."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError(f"condition not met within {timeout} s")
        await asyncio.sleep(0.01)


async def spxw(ib, *strikes_rights: tuple[float, str]) -> list:
    contracts = [ibm.Option("SPX", EXPIRY, k, r, "SMART", tradingClass="SPXW") for k, r in strikes_rights]
    qualified = await ib.qualifyContractsAsync(*contracts)
    assert len(qualified) == len(contracts) and all(c.conId for c in qualified)
    return qualified


def vertical(short, long) -> object:
    """A put credit vertical as a BAG: BUY the package = buy the long leg, sell the short one."""
    return ibm.Contract(secType="BAG", symbol="SPX", exchange="SMART", currency="USD", comboLegs=[
        ibm.ComboLeg(conId=long.conId, ratio=1, action="BUY", exchange="SMART"),
        ibm.ComboLeg(conId=short.conId, ratio=1, action="SELL", exchange="SMART")])


def test_connect_and_sync(version):
    async def body(gw, ib):
        assert ib.client.serverVersion() == version
        assert ib.managedAccounts() == ["DU1234567"]
        assert {v.tag for v in ib.accountValues()} >= {"NetLiquidation", "BuyingPower"}
        summary = await ib.accountSummaryAsync()
        assert any(v.tag == "NetLiquidation" and float(v.value) == 1_000_000 for v in summary)

    gw = run(version, body)
    ids = {m for m, _ in gw.received}
    assert {71, 61, 5, 99, 6, 7, 62} <= ids  # startApi, positions, open/completed orders, account, executions


def test_qualify_spx_options_and_unknown(version, ib_decoder_errors):
    ib_decoder_errors.allow(200)

    async def body(gw, ib):
        spx = ibm.Index("SPX", "CBOE")
        await ib.qualifyContractsAsync(spx)
        assert spx.conId == SPX_CON_ID
        put, _call = await spxw(ib, (5750, "P"), (5850, "C"))
        assert put.localSymbol == "SPXW  261204P05750000" and put.multiplier == "100"
        monthly = ibm.Option("SPX", "20261218", 5800, "P", "SMART", tradingClass="SPX")
        assert (await ib.qualifyContractsAsync(monthly))[0].conId not in (0, put.conId)
        details = await ib.reqContractDetailsAsync(ibm.Option("SPX", EXPIRY, right="P", exchange="SMART",
                                                              tradingClass="SPXW"))
        assert len(details) == len(gw.book.strikes)
        unknown = await ib.qualifyContractsAsync(ibm.Option("SPX", EXPIRY, 5801, "P", "SMART"))
        assert [c for c in unknown if c is not None] == []  # ib_async keeps a None in the slot
        spy = ibm.Stock("SPY", "SMART", "USD")
        await ib.qualifyContractsAsync(spy)
        assert spy.conId == 756733
        # the third Friday lists SPX (AM) and SPXW (PM) at the same strike: ambiguous without tradingClass
        both = await ib.reqContractDetailsAsync(ibm.Option("SPX", "20261218", 5800, "P", "SMART"))
        assert sorted(d.contract.tradingClass for d in both) == ["SPX", "SPXW"]

    run(version, body)


def test_sec_def_opt_params(version):
    async def body(gw, ib):
        chains = await ib.reqSecDefOptParamsAsync("SPX", "", "IND", SPX_CON_ID)
        by_class = {c.tradingClass: c for c in chains}
        assert set(by_class) == {"SPX", "SPXW"}
        assert "20261218" in by_class["SPX"].expirations and EXPIRY in by_class["SPXW"].expirations
        assert by_class["SPXW"].strikes[1] - by_class["SPXW"].strikes[0] == 5

    run(version, body)


def test_streaming_option_ticks_with_greeks(version):
    async def body(gw, ib):
        (put,) = await spxw(ib, (5800, "P"))
        ticker = ib.reqMktData(put)
        await until(lambda: ticker.modelGreeks is not None and ticker.bidGreeks is not None)
        assert 0 < ticker.bid < ticker.ask
        g = ticker.modelGreeks
        assert -0.6 < g.delta < -0.4 and g.gamma > 0 and g.vega > 0 and g.theta < 0 and g.undPrice == 5800
        assert ticker.bidGreeks.optPrice == ticker.bid
        before = ticker.bid
        gw.move_market(spot=5750)
        await until(lambda: ticker.bid > before)
        assert ticker.modelGreeks.undPrice == 5750
        gw.set_vega_theta_missing()
        gw.move_market(spot=5760)
        await until(lambda: ticker.modelGreeks.vega == -2)
        assert ticker.modelGreeks.theta == -2  # both libraries keep IB's "not computed" marker
        ib.cancelMktData(put)

    run(version, body)


def test_bag_limit_order_filled_with_executions_and_commissions(version):
    async def body(gw, ib):
        short, long = await spxw(ib, (5750, "P"), (5725, "P"))
        combo = vertical(short, long)
        trade = ib.placeOrder(combo, ibm.LimitOrder("BUY", 2, -0.05, orderRef="ref-1"))  # marketable credit
        await until(lambda: trade.orderStatus.status == "Filled" and len(trade.fills) == 3
                    and all(f.commissionReport.commission > 0 for f in trade.fills[1:]))
        bag, *legs = trade.fills
        assert bag.contract.secType == "BAG" and bag.execution.shares == 2
        assert {f.contract.conId for f in legs} == {short.conId, long.conId}
        assert {f.execution.permId for f in trade.fills} == {trade.order.permId} != {0}
        leg_price = {f.contract.conId: f.execution.price for f in legs}
        assert math.isclose(leg_price[long.conId] - leg_price[short.conId], trade.orderStatus.avgFillPrice)
        assert trade.orderStatus.avgFillPrice < -0.05  # filled at the natural credit, better than the limit
        await until(lambda: {p.contract.conId: p.position for p in ib.positions()}
                    == {short.conId: -2, long.conId: 2})
        assert {p.contract.conId for p in ib.portfolio()} == {short.conId, long.conId}
        assert {p.contract.exchange for p in ib.positions()} == {""}  # as TWS: not sendable back as is

    gw = run(version, body)
    assert len(gw.placed_orders()) == 1


def test_partial_fill_then_fill_order(version):
    async def body(gw, ib):
        short, long = await spxw(ib, (5700, "P"), (5675, "P"))
        gw.partial_fill_next(1)
        trade = ib.placeOrder(vertical(short, long), ibm.LimitOrder("BUY", 3, -3.0))
        await until(lambda: trade.orderStatus.filled == 1)
        assert trade.orderStatus.status == "Submitted" and trade.orderStatus.remaining == 2
        gw.fill_order(trade.order.orderId)
        await until(lambda: trade.orderStatus.status == "Filled")
        assert trade.orderStatus.filled == 3 and trade.orderStatus.avgFillPrice == -3.0
        gw.fill_next(0.5)  # half of the next order
        half = ib.placeOrder(vertical(short, long), ibm.LimitOrder("BUY", 4, -3.0))
        await until(lambda: half.orderStatus.filled == 2)
        assert half.orderStatus.status == "Submitted" and gw.position(short.conId) == -5

    run(version, body)


def test_resting_order_modify_then_cancel(version, ib_decoder_errors):
    ib_decoder_errors.allow(105, 202)

    async def body(gw, ib):
        short, long = await spxw(ib, (5650, "P"), (5625, "P"))
        combo = vertical(short, long)
        order = ibm.LimitOrder("BUY", 1, -5.0)  # asks far more credit than the market gives: rests
        trade = ib.placeOrder(combo, order)
        await until(lambda: trade.orderStatus.status == "Submitted")
        order_id, perm_id = trade.order.orderId, trade.order.permId
        order.lmtPrice = -4.5
        ib.placeOrder(combo, order)  # the client's own BAG (conId 0): TWS refuses the modify, order stays live
        await until(lambda: gw.count(3) == 2)
        await asyncio.sleep(0.05)
        (record,) = gw.orders()
        assert record.is_live and record.lmt_price == -5.0 and record.echo.con_id == BAG_CON_ID
        echoed = ibm.Contract(secType="BAG", conId=BAG_CON_ID, symbol="SPX", exchange="SMART", currency="USD",
                              comboLegs=combo.comboLegs)
        ib.client.placeOrder(order_id, echoed, order)  # re-sent as echoed: accepted
        await until(lambda: gw.orders()[0].lmt_price == -4.5)
        ib.cancelOrder(order)
        await until(lambda: gw.orders()[0].status == "Cancelled" and trade.orderStatus.status == "Cancelled")
        assert gw.orders()[0].perm_id == perm_id

    run(version, body)


def test_reject(version, ib_decoder_errors):
    ib_decoder_errors.allow(201)

    async def body(gw, ib):
        (put,) = await spxw(ib, (5800, "P"))
        gw.reject_next(text="Order rejected - reason:Outside the price band")
        trade = ib.placeOrder(put, ibm.LimitOrder("BUY", 1, 1.0))
        await until(lambda: trade.orderStatus.status == "Cancelled")
        assert any(e.errorCode == 201 for e in trade.log)
        assert gw.orders()[0].status == "Cancelled" and gw.position(put.conId) == 0

    run(version, body)


def test_what_if(version):
    async def body(gw, ib):
        short, long = await spxw(ib, (5750, "P"), (5725, "P"))
        state = await ib.whatIfOrderAsync(vertical(short, long), ibm.LimitOrder("BUY", 2, -1.0))
        assert float(state.initMarginChange) == 25 * 100 * 2  # the spread's width is its worst loss
        assert state.commission == pytest.approx(2.6)
        gw.set_what_if(init_margin_change=1234.5, commission=3.0, unset_first=True, warning_text="check")
        state = await ib.whatIfOrderAsync(vertical(short, long), ibm.LimitOrder("BUY", 1, -1.0))
        assert float(state.initMarginChange) == 1234.5 and state.commission == 3.0
        assert state.warningText == "check"
        assert not ib.openTrades()

    gw = run(version, body)
    assert gw.orders() == [] and not gw.blotter.executions


def test_reconnect_sees_same_orders_and_executions(version, ib_decoder_errors):
    ib_decoder_errors.allow("Peer closed connection")

    async def body(gw, ib):
        short, long = await spxw(ib, (5750, "P"), (5725, "P"))
        filled = ib.placeOrder(vertical(short, long), ibm.LimitOrder("BUY", 1, 0.0))
        resting = ib.placeOrder(vertical(short, long), ibm.LimitOrder("BUY", 1, -9.0))
        await until(lambda: filled.orderStatus.status == "Filled" and resting.orderStatus.status == "Submitted")
        gw.drop_clients()
        await until(lambda: not ib.isConnected())
        ib2 = ibm.IB()
        await ib2.connectAsync(gw.host, gw.port, clientId=7, timeout=2)
        try:
            assert [t.order.permId for t in ib2.openTrades()] == [resting.order.permId]
            assert {f.execution.execId for f in ib2.fills()} == {f.execution.execId for f in filled.fills}
            assert all(f.commissionReport.commission > 0 for f in ib2.fills() if f.contract.secType == "OPT")
            completed = await ib2.reqCompletedOrdersAsync(False)
            assert [t.order.permId for t in completed] == [filled.order.permId]
            assert completed[0].orderStatus.status == "Filled"
            assert {p.contract.conId: p.position for p in ib2.positions()} == {short.conId: -1, long.conId: 1}
            assert ib2.client.getReqId() > resting.order.orderId  # nextValidId persisted
            (kept,) = ib2.openTrades()  # contract and order exactly as TWS echoed them
            assert kept.order.deltaNeutralOrderType == "None"
            kept.order.lmtPrice = -8.0
            ib2.placeOrder(kept.contract, kept.order)  # a modify after the restart is accepted
            await until(lambda: [o.lmt_price for o in gw.orders() if o.is_live] == [-8.0])
        finally:
            ib2.disconnect()

    run(version, body)


def test_connectivity_lost_then_restored(version, ib_decoder_errors):
    ib_decoder_errors.allow(1100, 1101, 1102)

    async def body(gw, ib):
        codes: list[int] = []
        ib.errorEvent += lambda req_id, code, *rest: codes.append(code)
        before = gw.count(62)
        gw.connectivity_lost()
        gw.connectivity_restored()
        await until(lambda: codes == [1100, 1102] and gw.count(62) == before + 1)
        index = ib.reqMktData(ibm.Index("SPX", "CBOE", conId=SPX_CON_ID))
        await until(lambda: index.last == 5800)
        gw.connectivity_lost()
        gw.connectivity_restored(data_lost=True)  # 1101: IB dropped the subscriptions; the client must renew
        await until(lambda: codes[-1] == 1101)
        gw.move_market(spot=5810)
        await asyncio.sleep(0.05)
        assert index.last == 5800

    run(version, body)


def test_duplicate_client_id_refused(version, ib_decoder_errors):
    ib_decoder_errors.allow(326, "API connection failed", "already in use")

    async def body(gw, ib):
        other = ibm.IB()
        with pytest.raises((ConnectionError, asyncio.TimeoutError)):
            await other.connectAsync(gw.host, gw.port, clientId=7, timeout=0.3)
        assert ib.isConnected()

    run(version, body)


def test_combo_ticks_generic_ticks_and_symbol_search(version):
    async def body(gw, ib):
        short, long = await spxw(ib, (5750, "P"), (5725, "P"))
        legs = [ib.reqMktData(c) for c in (short, long)]
        combo = ib.reqMktData(vertical(short, long))
        await until(lambda: combo.bid == combo.bid and all(t.ask == t.ask for t in legs))
        assert combo.bid == pytest.approx(legs[1].bid - legs[0].ask)
        assert combo.ask == pytest.approx(legs[1].ask - legs[0].bid)
        oi = ib.reqMktData(short, "100,101")
        await until(lambda: oi.putOpenInterest > 0 and oi.putVolume > 0)
        index = ib.reqMktData(ibm.Index("SPX", "CBOE", conId=SPX_CON_ID), "106")
        await until(lambda: index.last == 5800 and index.impliedVolatility > 0)
        found = await ib.reqMatchingSymbolsAsync("SP")
        assert {d.contract.symbol for d in found} == {"SPX", "SPY"}

    run(version, body)


def test_order_errors(version, ib_decoder_errors):
    ib_decoder_errors.allow(103, 104, 10147)

    async def body(gw, ib):
        (put,) = await spxw(ib, (5800, "P"))
        codes: list[int] = []
        ib.errorEvent += lambda req_id, code, *rest: codes.append(code)
        trade = ib.placeOrder(put, ibm.LimitOrder("BUY", 1, 500.0))
        await until(lambda: trade.orderStatus.status == "Filled")
        trade.order.lmtPrice = 400.0
        ib.client.placeOrder(trade.order.orderId, put, trade.order)  # modify a filled order (the IB API asserts)
        ib.client.cancelOrder(99_999)  # unknown order
        ib.client.placeOrder(trade.order.orderId - 1, put, ibm.LimitOrder("BUY", 1, 1.0))  # id already used
        await until(lambda: sorted(codes) == [103, 104, 10147])
        assert gw.orders()[0].lmt_price == 500.0 and len(gw.orders()) == 1

    run(version, body)


def test_market_data_without_subscription(version, ib_decoder_errors):
    ib_decoder_errors.allow(354, 10168)

    async def body(gw, ib):
        (call,) = await spxw(ib, (5800, "C"))
        gw.set_no_subscription()
        live = ib.reqMktData(call)
        await until(lambda: any(m == 1 for m, _ in gw.received))
        await asyncio.sleep(0.05)
        assert math.isnan(live.bid)
        ib.reqMarketDataType(3)
        delayed = ib.reqMktData(call, snapshot=True)
        await until(lambda: delayed.modelGreeks is not None and delayed.bid > 0)
        assert delayed.marketDataType == 3
        gw.set_no_subscription(delayed_enabled=False)
        codes: list[int] = []
        ib.errorEvent += lambda req_id, code, *rest: codes.append(code)
        ib.reqMktData(call)
        await until(lambda: codes == [10168])

    run(version, body)


def test_gateway_in_background_thread(version):
    gw = FakeGateway(server_version=version, today=TODAY)
    host, port = gw.start_in_thread()
    try:
        async def main() -> None:
            ib = ibm.IB()
            await ib.connectAsync(host, port, clientId=3, timeout=2)
            (put,) = await spxw(ib, (5800, "P"))
            gw.fill_next()
            trade = ib.placeOrder(put, ibm.LimitOrder("SELL", 1, 100.0))
            await until(lambda: trade.orderStatus.status == "Filled")
            ib.disconnect()

        asyncio.run(asyncio.wait_for(main(), 10))
    finally:
        gw.stop()
    assert gw.position(gw.orders()[0].legs[0][0].con_id) == -1


def test_off_tick_price_refused_with_110(version, ib_decoder_errors):
    ib_decoder_errors.allow(110)

    async def body(gw, ib):
        put, other = await spxw(ib, (5800, "P"), (5775, "P"))
        codes: list[int] = []
        ib.errorEvent += lambda req_id, code, *rest: codes.append(code)
        ib.placeOrder(put, ibm.LimitOrder("BUY", 1, 21.93))  # above 3.00 the SPX tick is 0.10
        ib.placeOrder(vertical(put, other), ibm.LimitOrder("BUY", 1, -1.02))  # combos trade in 0.05
        resting = ib.placeOrder(put, ibm.LimitOrder("BUY", 1, 2.95))  # below 3.00: 0.05 is fine
        await until(lambda: codes == [110, 110] and resting.orderStatus.status == "Submitted")
        assert [o.status for o in gw.orders()] == ["Cancelled", "Cancelled", "Submitted"]

    run(version, body)


def test_pnl_subscriptions_follow_fills_and_market(version):
    async def body(gw, ib):
        (put,) = await spxw(ib, (5800, "P"))
        account, single = ib.reqPnL("DU1234567"), ib.reqPnLSingle("DU1234567", "", put.conId)
        trade = ib.placeOrder(put, ibm.LimitOrder("BUY", 2, 500.0))
        await until(lambda: trade.orderStatus.status == "Filled" and single.position == 2)
        gw.move_market(spot=5700)  # the put gains
        await until(lambda: single.unrealizedPnL > 1000 and account.unrealizedPnL > 1000)
        assert single.value == pytest.approx(2 * 100 * gw.blotter.mark(gw.orders()[0].legs[0][0]))

    run(version, body)


def test_pacing_limit_drops_excess_messages(version, ib_decoder_errors):
    ib_decoder_errors.allow(100)

    async def body(gw, ib):
        ib.client.MaxRequests = 0  # switch off the client's own throttle to overrun the gateway
        times: list[object] = []
        ib.client.wrapper.currentTime = times.append
        for _ in range(20):
            ib.client.reqCurrentTime()
        await until(lambda: gw.pacing_violations > 0 and len(times) + gw.pacing_violations == 20)
        assert gw.max_rate(1.0, {49}) == 20 and len(times) < 20

    run(version, body, pacing_limit=12)
