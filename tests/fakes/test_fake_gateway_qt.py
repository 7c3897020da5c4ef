"""The fake gateway under a qasync loop (as the app runs): in a background thread, and on the Qt loop itself."""

from __future__ import annotations

import asyncio
from datetime import date

import pytest

from tests.fakes.ib_client import ib_module
from tests.fakes.ib_gateway import FakeGateway

TODAY = date(2026, 12, 3)


@pytest.fixture
def qt_run(request):
    """``qt_run(coro)``: drive a coroutine on a qasync loop over pytest-qt's QApplication; skips without Qt."""
    qasync = pytest.importorskip("qasync")
    pytest.importorskip("pytestqt")
    qtbot = request.getfixturevalue("qtbot")
    loop = qasync.QEventLoop(request.getfixturevalue("qapp"), already_running=True)
    asyncio.set_event_loop(loop)

    def run(coro, timeout: float = 5.0):
        task = loop.create_task(coro)
        qtbot.waitUntil(task.done, timeout=int(timeout * 1000))
        return task.result()

    yield run
    asyncio.events._set_running_loop(None)  # already_running=True registered it; later tests use asyncio.run
    asyncio.set_event_loop(None)


async def _fill_a_put(host: str, port: int, gw: FakeGateway) -> float:
    ibm = ib_module()
    ib = ibm.IB()
    await ib.connectAsync(host, port, clientId=5, timeout=2)
    try:
        (put,) = await ib.qualifyContractsAsync(ibm.Option("SPX", "20261204", 5800, "P", "SMART",
                                                           tradingClass="SPXW"))
        gw.fill_next(price=20.0)
        trade = ib.placeOrder(put, ibm.LimitOrder("BUY", 1, 1.0))
        while trade.orderStatus.status != "Filled":
            await asyncio.sleep(0.01)
        return trade.orderStatus.avgFillPrice
    finally:
        ib.disconnect()


def test_gateway_thread_with_client_on_qasync_loop(qt_run):
    gw = FakeGateway(today=TODAY)
    host, port = gw.start_in_thread()
    try:
        assert qt_run(_fill_a_put(host, port, gw)) == 20.0
    finally:
        gw.stop()


def test_gateway_and_client_on_the_same_qasync_loop(qt_run):
    async def main() -> float:
        async with FakeGateway(today=TODAY) as gw:
            return await _fill_a_put(gw.host, gw.port, gw)

    assert qt_run(main()) == 20.0
