"""The adapter's pure parts: price/side mapping, contract mapping, settings, the token bucket."""

from __future__ import annotations

import asyncio
import math
import re
import socket
from dataclasses import replace
from datetime import date
from pathlib import Path

import pytest

from spx_core.domain.contracts import Root
from spx_core.execution.ib.broker import ib_terms
from spx_core.execution.ib.compat import UNSET_DOUBLE, ib_module, unset_to_nan
from spx_core.execution.ib.connection import (
    ConnectionState,
    ConnectionStatus,
    IbConnection,
)
from spx_core.execution.ib.contracts import bag_for, from_ib, to_ib_option
from spx_core.execution.ib.pacing import TokenBucket
from spx_core.execution.ib.settings import (
    LIVE_CONFIRMATION,
    IbSettings,
    LiveTradingRefused,
)
from spx_core.execution.ib.tracking import OrderTracker, Tracked
from spx_core.execution.orders import OrderRequest, OrderState, OrderStatus, Side
from spx_core.strategies.structure import Leg
from tests.execution.ib.harness import credit_vertical, put

ibm = ib_module()


def test_bag_terms_are_the_package_terms():
    assert ib_terms(credit_vertical("r", 5750, 5725, limit=1.45, quantity=3)) == ("SELL", 3, 1.45)
    assert ib_terms(credit_vertical("r", 5750, 5725, limit=1.45, quantity=3), 1) == ("SELL", 1, 1.45)


@pytest.mark.parametrize(("ratio", "side", "limit", "expected"), [
    (1, Side.BUY, 2.5, ("BUY", 2, 2.5)),
    (1, Side.SELL, 2.5, ("SELL", 2, 2.5)),
    (-1, Side.BUY, -2.5, ("SELL", 2, 2.5)),  # buying "minus one put" at -2.5 sells the put for >= 2.5
    (-2, Side.SELL, -5.0, ("BUY", 4, 2.5)),
])
def test_single_leg_goes_as_the_option_at_its_own_price(ratio, side, limit, expected):
    request = OrderRequest(ref="r", legs=(Leg(put(5800), ratio),), side=side, quantity=2, limit=limit)
    assert ib_terms(request) == expected


def test_contracts_round_trip_and_bag_legs():
    ours = put(5800, date(2026, 12, 18), Root.SPX)
    option = to_ib_option(ours)
    assert (option.symbol, option.tradingClass, option.lastTradeDateOrContractMonth, option.multiplier) == \
        ("SPX", "SPX", "20261218", "100")
    option.conId, option.localSymbol = 7, "SPX   261218P05800000"
    back = from_ib(option)
    assert back == ours and back.con_id == 7 and back.trading_class == "SPX"
    option.localSymbol = ""  # fields only
    assert from_ib(option) == ours
    other = to_ib_option(put(5775))
    other.conId = 8
    bag = bag_for([(option, 1), (other, -2)])
    assert bag.secType == "BAG" and [(c.conId, c.ratio, c.action) for c in bag.comboLegs] == \
        [(7, 1, "BUY"), (8, 2, "SELL")]
    assert from_ib(bag) is None


def test_settings_refuse_live_without_the_typed_confirmation():
    defaults = IbSettings()
    assert (defaults.port, defaults.orders_per_minute, defaults.live_allowed) == (7497, 60, False)  # paper TWS
    assert defaults.messages_per_second <= 50  # TWS disconnects a client above 50 messages/s
    with pytest.raises(LiveTradingRefused, match="account U123 is a LIVE account"):
        IbSettings().check_account("U123")
    IbSettings().check_account("DU123")
    IbSettings(live_enabled=True, live_confirmation=LIVE_CONFIRMATION).check_account("U123")
    with pytest.raises(ValueError, match="market_data_type 7"):
        IbSettings(market_data_type=7)
    with pytest.raises(ValueError, match="port 0"):
        IbSettings(port=0)


def test_status_line():
    assert ConnectionStatus(ConnectionState.CONNECTED, "DU1", True).text == "IB DU1 (paper): connected"
    assert ConnectionStatus(ConnectionState.LINK_LOST, "U1", False, "wait").text == "IB U1 (LIVE): link lost - wait"
    assert ConnectionStatus(ConnectionState.DISCONNECTED).text == "IB: disconnected"


def test_unset_values_are_nan():
    assert math.isnan(unset_to_nan(UNSET_DOUBLE)) and math.isnan(unset_to_nan(str(UNSET_DOUBLE)))
    assert math.isnan(unset_to_nan("")) and unset_to_nan("1234.5") == 1234.5


def test_token_bucket_refills_at_its_rate():
    now = [0.0]
    bucket = TokenBucket.per_minute(60, clock=lambda: now[0])
    assert all(bucket.try_take() for _ in range(60)) and not bucket.try_take()
    assert bucket.wait_time() == pytest.approx(1.0)
    now[0] = 2.5
    assert bucket.try_take() and bucket.try_take() and not bucket.try_take()


def test_token_bucket_take_waits_for_tokens():
    async def main() -> float:
        bucket = TokenBucket(50.0, 5)
        loop = asyncio.get_running_loop()
        start = loop.time()
        for _ in range(10):
            await bucket.take()
        return loop.time() - start

    assert 0.08 <= asyncio.run(main()) < 0.5  # 5 at once, then 5 more at 50/s


def test_only_compat_names_the_client_libraries():
    """ib_insync and ib_async are reached through compat.ib_module() only, so the same code runs on both."""
    root = Path(__file__).resolve().parents[3]
    pattern = re.compile(r"^\s*(import|from)\s+(ib_insync|ib_async)\b", re.MULTILINE)
    offenders = [str(path.relative_to(root)) for folder in ("spx_core", "app") for path in (root / folder).rglob("*.py")
                 if pattern.search(path.read_text(encoding="utf-8"))]
    assert offenders == []


def test_unreachable_gateway_is_one_clear_error(ib_client_errors):
    ib_client_errors.allow("API connection failed", "Make sure API port")

    async def main() -> None:
        with socket.socket() as probe:  # a free port nobody listens on
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        conn = IbConnection(IbSettings(port=port, connect_timeout=2.0))
        with pytest.raises(ConnectionError, match=rf"cannot reach TWS/IB Gateway at 127.0.0.1:{port} .*; start it"):
            await conn.connect()
        assert conn.status.state is ConnectionState.DISCONNECTED and not conn.connected

    asyncio.run(main())


def test_leg_executions_become_fills_with_their_commission():
    events = []
    tracker = OrderTracker(events.append, lambda: 1, lambda delay, fn: None, commission_wait=1.0,
                           client_id=lambda: 17, cancel_for_replace=lambda t: None, on_replace=lambda t: None)
    short = replace(put(5750), exchange="SMART")  # labels differ from TWS's report; the listing is the same
    request = OrderRequest(ref="r", legs=(Leg(short, 1), Leg(put(5725), -1)), side=Side.SELL, quantity=1, limit=1.0)
    tracker.add(t := Tracked(OrderState.new(request)))
    tracker.status(t, OrderStatus.SUBMITTED)

    def execution(exec_id: str, local: str, side: str, price: float, sec_type: str = "OPT"):
        contract = ibm.Contract(secType=sec_type, localSymbol=local, multiplier="100", conId=1)
        tracker.on_exec(-1, contract, ibm.Execution(execId=exec_id, side=side, shares=1.0, price=price,
                                                    orderRef="r", clientId=17, orderId=5, permId=9))

    execution("bag", "", "SLD", 1.2, sec_type="BAG")  # the combo's summary: not a fill
    execution("e1", "SPXW  261204P05750000", "SLD", 3.0)
    tracker.on_commission(ibm.CommissionReport(execId="e2", commission=0.66))  # before its execution
    execution("e2", "SPXW  261204P05725000", "BOT", 1.8)
    tracker.on_commission(ibm.CommissionReport(execId="e1", commission=0.65))
    fills = [e.fill for e in events if e.fill is not None]
    assert [(f.exec_id, f.leg, f.side, f.price, f.commission) for f in fills] == \
        [("e2", 1, Side.BUY, 1.8, 0.66), ("e1", 0, Side.SELL, 3.0, 0.65)]
    assert t.state.status is OrderStatus.FILLED and math.isclose(t.state.avg_fill_price, 1.2)
    execution("e1", "SPXW  261204P05750000", "SLD", 3.0)  # re-sent on reconnect: no second fill
    assert len([e for e in events if e.fill is not None]) == 2


def test_account_figures_are_ibs_account_values():
    from types import SimpleNamespace as V

    from spx_core.execution.ib.account import account_figures

    values = [V(account="DU1", tag="NetLiquidation", value="1000500.25", currency="USD"),
              V(account="DU1", tag="NetLiquidationByCurrency", value="1", currency="BASE"),
              V(account="DU1", tag="BuyingPower", value="3990000", currency="USD"),
              V(account="DU1", tag="NetLiquidation", value="7", currency="EUR")]  # a per-currency line: not it
    pnls = [V(account="DU1", modelCode="", dailyPnL=-250.5)]
    ib = V(accountValues=lambda account: [v for v in values if v.account == account],
           pnl=lambda account: [p for p in pnls if p.account == account])
    figures = account_figures(ib, "DU1")
    assert (figures.net_liquidation, figures.buying_power, figures.day_pnl) == (1000500.25, 3990000.0, -250.5)
    assert math.isnan(figures.maintenance_margin)  # not sent: NaN, never 0
    pnls[0].dailyPnL = UNSET_DOUBLE  # subscribed, not answered yet
    assert math.isnan(account_figures(ib, "DU1").day_pnl)
    assert account_figures(ib, "DU2") is None and account_figures(ib, "") is None
