"""Wire-level checks of the fake IB Gateway: layouts against the real decoder, placeOrder parsing, versions."""

from __future__ import annotations

import asyncio
import logging
from datetime import date

import pytest

from tests.fakes import ib_messages as msg
from tests.fakes.ib_book import BAG_CON_ID, OptionBook
from tests.fakes.ib_client import ib_module
from tests.fakes.ib_codec import (
    FieldReader,
    FrameBuffer,
    WireLeg,
    frame,
    parse_version_range,
)
from tests.fakes.ib_gateway import FakeGateway, Received
from tests.fakes.ib_orders import Blotter, OrderRecord, bag_echo
from tests.fakes.ib_requests import BAG_LEGS_INDEX, parse_place_order

ibm = ib_module()
TODAY = date(2026, 12, 3)


def _bag_order(book: OptionBook) -> OrderRecord:
    short, long = (next(i for i in book.instruments() if i.sec_type == "OPT" and i.strike == k and i.right == "P")
                   for k in (5750, 5725))
    legs = (ibm.ComboLeg(conId=long.con_id, ratio=1, action="BUY", exchange="SMART"),
            ibm.ComboLeg(conId=short.con_id, ratio=1, action="SELL", exchange="SMART"))
    echo = bag_echo("SPX", "SMART", "USD", tuple(WireLeg(leg.conId, 1, leg.action, "SMART") for leg in legs))
    return OrderRecord(5, 7, 1_500_000_001, echo, ((long, 1, "BUY"), (short, 1, "SELL")), "BUY", 2.0, "LMT",
                       -1.25, None, "DAY", "DU1234567", "ref-9")


@pytest.mark.parametrize(("version", "count"), [(157, 144), (176, 152), (178, 151)])
def test_open_order_layout_decodes_in_the_real_decoder(version, count):
    book = OptionBook(today=TODAY)
    o = _bag_order(book)
    o.status = "Submitted"
    fields = [str(f) if f is not None else "" for f in msg.open_order(version, o)]
    assert len(fields) == count  # with deltaNeutralOrderType "None" and its 8 fields, as TWS sends it
    seen = []
    wrapper = type("W", (), {"openOrder": lambda self, *a: seen.append(a)})()
    decoder = ibm.decoder.Decoder(wrapper, version)
    if version > 176 and ibm.__name__ == "ib_insync":
        pytest.skip("ib_insync stops at client version 176")
    decoder.openOrder(fields)
    (order_id, contract, order, state), = seen
    assert (order_id, order.permId, order.lmtPrice, order.orderRef, state.status) == (
        5, 1_500_000_001, -1.25, "ref-9", "Submitted")
    assert contract.conId == BAG_CON_ID and [leg.action for leg in contract.comboLegs] == ["BUY", "SELL"]


async def _client_bytes(version: int, contract, order) -> bytes:
    """The bytes the real client's placeOrder writes (inside a loop: the client looks one up)."""
    sent: list[bytes] = []
    client = ibm.client.Client(wrapper=None)
    client.conn = type("Conn", (), {"sendMsg": lambda self, data: sent.append(data)})()
    client.connState = client.CONNECTED
    client._serverVersion = version
    client.placeOrder(42, contract, order)
    return sent[0]


@pytest.mark.parametrize("what_if", [True, False])
@pytest.mark.parametrize("version", [157, 176, 178])
def test_place_order_parsed_from_what_the_real_client_sends(version, what_if):
    if version > 176 and ibm.__name__ == "ib_insync":
        pytest.skip("ib_insync stops at client version 176")
    combo = ibm.Contract(secType="BAG", symbol="SPX", exchange="SMART", currency="USD", comboLegs=[
        ibm.ComboLeg(conId=11, ratio=1, action="BUY", exchange="SMART"),
        ibm.ComboLeg(conId=12, ratio=2, action="SELL", exchange="SMART")])
    order = ibm.LimitOrder("SELL", 3, 1.45, orderRef="abc", whatIf=what_if)
    (fields,) = FrameBuffer().feed(asyncio.run(_client_bytes(version, combo, order)))
    assert fields[BAG_LEGS_INDEX] == "2"
    p = parse_place_order(fields, version)
    assert (p.order_id, p.action, p.quantity, p.lmt_price, p.order_ref, p.what_if) == (
        42, "SELL", 3, 1.45, "abc", what_if)
    assert [(leg.con_id, leg.ratio, leg.action) for leg in p.contract.legs] == [(11, 1, "BUY"), (12, 2, "SELL")]
    single = ibm.Option("SPX", "20261204", 5800, "P", "SMART", tradingClass="SPXW", conId=77)
    (fields,) = FrameBuffer().feed(asyncio.run(_client_bytes(version, single, ibm.MarketOrder("BUY", 1,
                                                                                            whatIf=what_if))))
    p = parse_place_order(fields, version)
    assert (p.contract.con_id, p.contract.strike, p.order_type, p.lmt_price, p.what_if) == (
        77, 5800.0, "MKT", None, what_if)


def test_codec_round_trip_and_version_range():
    data = frame([1, 2.5, True, None, "x"]) + frame([9, 1, 3])[:5]
    buffer = FrameBuffer()
    assert buffer.feed(data) == [["1", "2.5", "1", "", "x"]]
    assert buffer.feed(frame([9, 1, 3])[5:]) == [["9", "1", "3"]]
    assert parse_version_range("v157..178 +PACEAPI") == (157, 178)
    r = FieldReader(["", "7", "1.5"])
    assert (r.int(-1), r.int(), r.float()) == (-1, 7, 1.5)


def test_max_rate_counts_the_busiest_window():
    gw = FakeGateway(today=TODAY)
    gw.received_log = [Received(9, [], t, 1) for t in (0.0, 0.2, 0.9, 1.05, 1.1, 3.0)]
    assert gw.max_rate(1.0) == 4  # 0.2, 0.9, 1.05, 1.1
    assert gw.max_rate(1.0, {1}) == 0


def test_client_error_collector_allows_only_what_is_declared(ib_decoder_errors):
    from tests.fakes.fixtures import ClientErrorLog

    ib_decoder_errors.allow(200, 201)  # the autouse collector sees these records too
    log = logging.getLogger(f"{ibm.__name__}.wrapper")
    handler = ClientErrorLog()
    log.addHandler(handler)
    try:
        log.error("Error 200, reqId 5: No security definition has been found for the request")
        log.error("Error 201, reqId 9: Order rejected")
        log.warning("Warning 2104, reqId -1: farm OK")
    finally:
        log.removeHandler(handler)
    handler.allow(200)
    assert handler.unexpected() == [f"{ibm.__name__}.wrapper: Error 201, reqId 9: Order rejected"]


def test_unsupported_versions_refused():
    with pytest.raises(ValueError, match="157..178"):
        FakeGateway(server_version=201)


def test_version_the_client_cannot_speak_fails_clearly(fail_on_client_errors):
    fail_on_client_errors.allow("API connection failed", "Peer closed", "already in use")
    if ibm.__name__ != "ib_insync":
        pytest.skip("ib_async speaks up to 178")

    async def main() -> list[str]:
        gw = FakeGateway(server_version=178, today=TODAY)
        async with gw:
            with pytest.raises((ConnectionError, asyncio.TimeoutError)):
                await ibm.IB().connectAsync(gw.host, gw.port, clientId=1, timeout=0.3)
            failures, gw.failures = gw.failures, []
        return failures

    assert "pick a server_version the client supports" in asyncio.run(main())[0]


def test_ib_async_at_178_fill_with_price_revision_field():
    if ibm.__name__ != "ib_async":
        pytest.skip("server version 178 needs ib_async (ib_insync stops at 176)")

    async def main() -> None:
        async with FakeGateway(server_version=178, today=TODAY) as gw:
            ib = ibm.IB()
            await ib.connectAsync(gw.host, gw.port, clientId=1, timeout=2)
            (put,) = await ib.qualifyContractsAsync(ibm.Option("SPX", "20261204", 5800, "P", "SMART",
                                                               tradingClass="SPXW"))
            trade = ib.placeOrder(put, ibm.LimitOrder("BUY", 1, 500.0))
            for _ in range(100):
                if trade.fills and trade.fills[0].commissionReport.commission:
                    break
                await asyncio.sleep(0.01)
            assert trade.orderStatus.status == "Filled" and len(trade.fills) == 1
            ib.disconnect()

    asyncio.run(asyncio.wait_for(main(), 10))


def test_blotter_average_cost_and_realized_pnl():
    book = OptionBook(today=TODAY)
    blotter = Blotter(book, "DU1", commission_per_contract=0.5, min_commission=0.0)
    inst = next(i for i in book.instruments() if i.sec_type == "OPT")
    assert blotter._apply_position(inst, -2, 3.0, 1.0) is None  # sell 2 at 3.00, $1 fees
    assert blotter.positions[inst.con_id].avg_cost == pytest.approx(299.5)  # a short's basis is net of fees
    assert blotter._apply_position(inst, 1, 1.0, 0.5) == pytest.approx(199.0)  # buy 1 back at 1.00
    assert blotter.positions[inst.con_id].quantity == -1


def test_standalone_server_walks_the_market():
    import os
    import subprocess
    import sys

    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.Popen([sys.executable, "-m", "tests.fakes.ib_serve", "--port", "0", "--walk", "0.02"],
                            stdout=subprocess.PIPE, text=True, env=env)
    try:
        line = proc.stdout.readline()
        port = int(line.split(" on ")[1].split(",")[0].rsplit(":", 1)[1])

        async def main() -> set[float]:
            ib = ibm.IB()
            await ib.connectAsync("127.0.0.1", port, clientId=1, timeout=2)
            ticker = ib.reqMktData(ibm.Index("SPX", "CBOE", conId=416904))
            seen: set[float] = set()
            for _ in range(100):
                await asyncio.sleep(0.02)
                if ticker.last == ticker.last:  # not NaN
                    seen.add(ticker.last)
                if len(seen) >= 3:
                    break
            ib.disconnect()
            return seen

        assert len(asyncio.run(main())) >= 3  # the index moved twice
    finally:
        proc.terminate()
        proc.wait(timeout=5)
        proc.stdout.close()


def test_start_in_thread_reports_a_taken_port():
    first = FakeGateway(today=TODAY)
    _, port = first.start_in_thread()
    try:
        with pytest.raises(OSError):
            FakeGateway(today=TODAY, port=port).start_in_thread()
    finally:
        first.stop()
