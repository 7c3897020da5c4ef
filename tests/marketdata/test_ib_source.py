"""IbMarketDataSource against the fake IB Gateway (real ib_insync / ib_async client), server versions 157 and 176.

Every test fails on an ERROR record of the client library (the fake's fixture) or of the source itself; tests
that provoke an IB error on purpose declare its code.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import date, datetime

import numpy as np
import pytest

from spx_core.domain.calendar import ET, to_ns
from spx_core.domain.contracts import Right, Root
from spx_core.domain.quotes import QuoteFlag
from spx_core.execution.ib import IbConnection, IbSettings
from spx_core.marketdata.ib_source import DELAYED_NOTE, NO_DATA_NOTE, IbMarketDataSource
from spx_core.marketdata.source import (
    MarketDataSource,
    QuoteBatch,
    SourceKind,
    SourceState,
    SourceStatus,
)
from tests.fakes.fixtures import fail_on_client_errors, free_port
from tests.fakes.ib_book import SPX_CON_ID
from tests.fakes.ib_gateway import FakeGateway

__all__ = ["fail_on_client_errors"]

TODAY = date(2026, 12, 3)  # a Thursday: SPXW 0DTE, dailies to Wednesday, SPX + SPXW monthly on 2026-12-18
VERSIONS = [157, 176]
REQ_MKT_DATA, CANCEL_MKT_DATA, REQ_CONTRACT_DETAILS, REQ_MARKET_DATA_TYPE, REQ_SEC_DEF = 1, 2, 9, 59, 78


@pytest.fixture(autouse=True)
def client_errors(fail_on_client_errors):
    return fail_on_client_errors


@pytest.fixture(autouse=True)
def source_errors():
    """Fail on any ERROR record of the source (a batch that raised, a failed re-centre)."""
    records: list[logging.LogRecord] = []
    handler = logging.Handler(logging.ERROR)
    handler.emit = records.append
    logger = logging.getLogger("spx_core.marketdata")
    logger.addHandler(handler)
    yield records
    logger.removeHandler(handler)
    assert not records, [r.getMessage() for r in records]


def market_clock() -> Callable[[], int]:
    """TODAY 11:00 New York time, advancing with the wall clock (expiries are relative to TODAY)."""
    start, t0 = to_ns(datetime(2026, 12, 3, 11, 0, tzinfo=ET)), time.monotonic_ns()
    return lambda: start + time.monotonic_ns() - t0


@dataclass
class Run:
    gw: FakeGateway
    source: IbMarketDataSource
    batches: list[QuoteBatch] = field(default_factory=list)
    statuses: list[SourceStatus] = field(default_factory=list)

    async def until(self, predicate: Callable[[], bool], what: str, timeout: float = 5.0) -> None:
        deadline = asyncio.get_running_loop().time() + timeout
        while not predicate():
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"{what} not seen within {timeout} s; last status {self.source.status}")
            await asyncio.sleep(0.01)

    async def next_batch(self, what: str, predicate: Callable[[QuoteBatch], bool] = lambda b: True) -> QuoteBatch:
        seen = len(self.batches)
        await self.until(lambda: any(predicate(b) for b in self.batches[seen:]), what)
        return next(b for b in self.batches[seen:] if predicate(b))

    def row(self, snap, root: Root, expiry: date, strike: float, right: Right) -> int:
        c = snap.columns
        hit = np.flatnonzero((c["expiry"] == np.datetime64(expiry)) & (c["strike"] == strike)
                             & (c["is_call"] == (right is Right.CALL)) & (c["root"] == list(Root).index(root)))
        assert hit.size == 1, (root, expiry, strike, right)
        return int(hit[0])

    def fake_quote(self, root: Root, expiry: date, strike: float, right: Right):
        inst = next(i for i in self.gw.book.instruments("SPX", f"{expiry:%Y%m%d}")
                    if i.trading_class == root.value and i.strike == strike and i.right == right.value)
        return self.gw.book.quote(inst)


def run(version: int, body: Callable[[Run], Awaitable[None]], *, source: dict | None = None,
        settings: dict | None = None, timeout: float = 20.0, before: Callable[[FakeGateway], None] | None = None,
        library_throttle: bool = True, **gw_args) -> Run:
    async def main() -> Run:
        async with FakeGateway(server_version=version, today=TODAY, **gw_args) as gw:
            if before is not None:
                before(gw)
            conn = IbConnection(IbSettings(**{"host": gw.host, "port": gw.port, "client_id": 23,
                                              "connect_timeout": 3.0, "request_timeout": 3.0,
                                              "reconnect_delay": 0.05, "reconnect_max_delay": 0.2,
                                              **(settings or {})}))
            if not library_throttle:
                conn.ib.client.MaxRequests = 0  # the library's own 45/s throttle off: only the source paces
            src = IbMarketDataSource(conn, owns_connection=True, today=lambda: TODAY, clock=market_clock(),
                                     **(source or {}))
            r = Run(gw, src)
            src.subscribe(r.batches.append, r.statuses.append)
            await src.start()
            try:
                await body(r)
            finally:
                await src.stop()
            assert not conn.ib.isConnected()  # an owned connection is closed on stop
            return r

    return asyncio.run(asyncio.wait_for(main(), timeout))


@pytest.mark.parametrize("version", VERSIONS)
def test_discovery_subscribes_a_window_around_the_money(version):
    async def body(r: Run) -> None:
        assert isinstance(r.source, MarketDataSource) and r.source.kind is SourceKind.IB
        first = await r.next_batch("first batch")
        assert first.layout_changed and first.sequence == 1 and len(first.changed) == len(first.snapshot)
        subs = r.source.subscriptions()
        snap = first.snapshot
        assert len(snap) == len(subs.contracts) == 2 * 4 * 6  # 4 series x 6 strikes x call+put
        assert subs.wanted == len(subs.contracts) and subs.text == "IB: 48 of 48 contracts subscribed"
        assert r.source.status.state is SourceState.RUNNING and r.source.status.message == subs.text
        assert snap.underlying == "SPX" and snap.underlying_price == pytest.approx(5800.0)
        series = [(s.root, s.expiry) for s in snap.expiries()]
        assert series == [(Root.SPXW, date(2026, 12, d)) for d in (3, 4, 7, 8)]
        strikes = np.unique(snap.strike)
        assert strikes.tolist() == [5785.0 + 5 * i for i in range(6)]  # the 6 strikes nearest 5800
        assert r.gw.count(REQ_SEC_DEF) == 1
        sec_def = next(f for m, f in r.gw.received if m == REQ_SEC_DEF)
        assert sec_def[2:6] == ["SPX", "", "IND", str(SPX_CON_ID)]
        assert r.gw.count(REQ_CONTRACT_DETAILS) == 1 + 48  # the index, then each window contract once
        assert r.gw.count(REQ_MKT_DATA) == 1 + 48

    run(version, body, source={"strike_window": 6, "expiries": 4})


@pytest.mark.parametrize("version", VERSIONS)
def test_both_trading_classes_and_the_ticker_limit(version):
    """On the monthly date SPX (AM) and SPXW (PM) list the same strikes: both qualify (trading class sent), and
    100 lines (index included) cut a 7 x 30-strike window round-robin: every series keeps a centred window."""
    async def body(r: Run) -> None:
        snap = (await r.next_batch("first batch")).snapshot
        subs = r.source.subscriptions()
        assert len(subs.contracts) == 98 and subs.wanted == 7 * 30 * 2
        assert subs.text == "IB: 98 of 420 contracts subscribed (ticker limit 99)"
        series = {(s.root, s.expiry): s.stop - s.start for s in snap.expiries()}
        assert (Root.SPX, date(2026, 12, 18)) in series and (Root.SPXW, date(2026, 12, 18)) in series
        assert sorted(series.values()) == [14] * 7  # 49 strike pairs dealt 7 each
        monthly = r.row(snap, Root.SPX, date(2026, 12, 18), 5800.0, Right.PUT)
        weekly = r.row(snap, Root.SPXW, date(2026, 12, 18), 5800.0, Right.PUT)
        assert snap.bid[monthly] == r.fake_quote(Root.SPX, date(2026, 12, 18), 5800.0, Right.PUT).bid
        assert snap.bid[weekly] == r.fake_quote(Root.SPXW, date(2026, 12, 18), 5800.0, Right.PUT).bid
        assert r.gw.count(REQ_MKT_DATA) == 99

    run(version, body, source={"strike_window": 30, "expiries": 7, "max_tickers": 100})


@pytest.mark.parametrize("version", VERSIONS)
def test_qualification_stays_within_pacing(version):
    """120 contracts qualified and subscribed under TWS's 50 messages/s (the fake drops what exceeds it), by the
    source's own pacing: the client library's throttle (45/s in both) is switched off."""
    async def body(r: Run) -> None:
        await r.next_batch("first batch")
        assert len(r.source.subscriptions().contracts) == 120
        assert r.gw.pacing_violations == 0
        assert r.gw.max_rate(1.0) <= 50  # the connection's own sync requests included
        assert r.gw.count(REQ_CONTRACT_DETAILS) == 121

    started = time.monotonic()
    run(version, body, source={"strike_window": 15, "expiries": 4, "max_tickers": 121}, pacing_limit=50,
        library_throttle=False, timeout=30)
    # 243 messages at 36/s (80% of the default 45/s): about 6.5 s, never a burst TWS would punish
    assert time.monotonic() - started > 243 / 50


@pytest.mark.parametrize("version", VERSIONS)
def test_ticks_become_quotes_and_model_greeks(version):
    async def body(r: Run) -> None:
        snap = (await r.next_batch("first batch")).snapshot
        i = r.row(snap, Root.SPXW, date(2026, 12, 4), 5790.0, Right.CALL)
        q = r.fake_quote(Root.SPXW, date(2026, 12, 4), 5790.0, Right.CALL)
        assert (snap.bid[i], snap.ask[i], snap.bid_size[i], snap.ask_size[i]) == (q.bid, q.ask, q.bid_size,
                                                                                  q.ask_size)
        assert snap.last[i] == q.last
        assert snap.vendor_iv[i] == pytest.approx(q.greeks.iv) and snap.vendor_delta[i] == pytest.approx(q.greeks.delta)
        assert snap.open_interest[i] > 0 and snap.volume[i] > 0  # generic ticks 101 and 100
        greeks = r.source.greeks
        assert greeks["gamma"][i] == pytest.approx(q.greeks.gamma)
        assert greeks["vega"][i] == pytest.approx(q.greeks.vega)
        assert greeks["theta"][i] == pytest.approx(q.greeks.theta) and greeks["theta"][i] < 0
        assert snap.flags[i] == 0

    run(version, body, source={"strike_window": 6, "expiries": 2})


@pytest.mark.parametrize("version", VERSIONS)
def test_vega_theta_not_computed_become_nan(version):
    async def body(r: Run) -> None:
        snap = (await r.next_batch("first batch")).snapshot
        greeks = r.source.greeks
        assert np.isnan(greeks["vega"]).all() and np.isnan(greeks["theta"]).all()  # -2 is not a number
        assert np.isfinite(greeks["gamma"]).all() and np.isfinite(snap.vendor_iv).all()
        assert np.isfinite(snap.vendor_delta).all() and (np.abs(snap.vendor_delta) <= 1).all()

    run(version, body, source={"strike_window": 4, "expiries": 2}, before=lambda gw: gw.set_vega_theta_missing(True))


def test_the_chain_computes_its_own_greeks_without_ibs():
    """What the chain panel shows comes from the quotes (``serve_expiry``), so NaN vendor greeks do not matter."""
    pytest.importorskip("scipy", reason="the chain's pricing needs scipy (not in a bare ib_async venv)")
    from spx_core.surface.served import serve_expiry

    async def body(r: Run) -> None:
        snap = (await r.next_batch("first batch")).snapshot
        assert np.isnan(r.source.greeks["vega"]).all()
        served = serve_expiry(snap, Root.SPXW, date(2026, 12, 4))
        assert np.isfinite(served.vega).all() and np.isfinite(served.theta).all() and (served.vega > 0).all()
        assert np.isfinite(served.iv).all()

    run(176, body, source={"strike_window": 8, "expiries": 2}, before=lambda gw: gw.set_vega_theta_missing(True))


@pytest.mark.parametrize("version", VERSIONS)
def test_market_move_sends_changed_rows_then_recentres(version):
    async def body(r: Run) -> None:
        first = await r.next_batch("first batch")
        r.gw.move_market(spot=5801.0)
        moved = await r.next_batch("moved batch", lambda b: b.sequence > first.sequence)
        assert not moved.layout_changed and moved.snapshot.underlying_price == pytest.approx(5801.0)
        assert 0 < len(moved.changed) <= len(moved.snapshot)
        old, new = first.snapshot, moved.snapshot
        same = np.setdiff1d(np.arange(len(new)), moved.changed)
        assert np.array_equal(old.bid[same], new.bid[same], equal_nan=True)  # unchanged rows really are
        assert np.any(old.bid[moved.changed] != new.bid[moved.changed]) or \
            np.any(old.ask[moved.changed] != new.ask[moved.changed])
        for i in moved.changed[:5]:
            c = new.contract(int(i))
            assert new.bid[i] == r.fake_quote(c.root, c.expiry, c.strike, c.right).bid
        lines = r.gw.count(REQ_MKT_DATA)
        r.gw.move_market(spot=5850.0)  # 10 strikes away: beyond a quarter of the 20-strike window
        recentred = await r.next_batch("re-centred batch", lambda b: b.layout_changed and b.sequence > 1)
        strikes = np.unique(recentred.snapshot.strike)
        assert strikes.min() < 5850.0 < strikes.max() and len(strikes) == 20
        assert abs(np.median(strikes) - 5850.0) <= 5.0
        added = r.gw.count(REQ_MKT_DATA) - lines
        assert added == r.gw.count(CANCEL_MKT_DATA) == 2 * 2 * 10  # 10 new strikes in, 10 old out, per series
        assert len(r.source.subscriptions().contracts) == 80
        await asyncio.sleep(0.3)
        # while the new strikes were qualified, the lines left behind were cancelled: no batch showed them empty
        assert all(np.isfinite(b.snapshot.bid).all() for b in r.batches), [
            (b.sequence, int(np.isnan(b.snapshot.bid).sum())) for b in r.batches]

    run(version, body, source={"strike_window": 20, "expiries": 2})


@pytest.mark.parametrize("version", VERSIONS)
def test_no_subscription_falls_back_to_delayed_data(version, client_errors):
    client_errors.allow(354)  # the library logs TWS's "not subscribed" as an error; the source handles it

    async def body(r: Run) -> None:
        await r.until(lambda: r.source.subscriptions().delayed, "delayed data confirmed (10167)")
        snap = (await r.next_batch("a delayed batch", lambda b: np.isfinite(b.snapshot.bid).all())).snapshot
        assert snap.underlying_price == pytest.approx(5800.0)
        assert r.source.status.state is SourceState.RUNNING
        assert r.source.status.message.endswith(DELAYED_NOTE)
        assert "no market data subscription for SPX options: showing delayed data (15 min)" in DELAYED_NOTE
        assert [f[2] for m, f in r.gw.received if m == REQ_MARKET_DATA_TYPE] == ["3"]

    run(version, body, source={"strike_window": 4, "expiries": 2}, before=lambda gw: gw.set_no_subscription(True))


@pytest.mark.parametrize("version", VERSIONS)
def test_no_subscription_and_no_delayed_data_says_what_to_do(version, client_errors):
    client_errors.allow(354, 10168)

    async def body(r: Run) -> None:
        assert r.source.status.state is SourceState.ERROR
        assert r.source.status.message == f"IB market data: {NO_DATA_NOTE}"
        assert "\n" not in r.source.status.message and not r.batches

    run(version, body, source={"strike_window": 4, "expiries": 2},
        before=lambda gw: gw.set_no_subscription(True, delayed_enabled=False))


@pytest.mark.parametrize("version", VERSIONS)
def test_drop_and_reconnect_resubscribes(version, client_errors):
    client_errors.allow("Peer closed", "API connection failed")

    async def body(r: Run) -> None:
        first = await r.next_batch("first batch")
        lines = r.gw.count(REQ_MKT_DATA)
        r.gw.drop_clients()
        stale = await r.next_batch("stale batch", lambda b: bool((b.snapshot.flags & QuoteFlag.STALE).all()))
        assert len(stale.changed) == len(stale.snapshot) and not stale.layout_changed
        assert any(s.state is SourceState.ERROR and "quotes are stale" in s.message for s in r.statuses)
        await r.until(lambda: r.gw.count(REQ_MKT_DATA) == 2 * lines, "every line requested again")
        await r.until(lambda: r.source.status.state is SourceState.RUNNING, "running again")
        r.gw.move_market(spot=5803.0)
        live = await r.next_batch("live batch after reconnect",
                                  lambda b: b.snapshot.underlying_price == pytest.approx(5803.0)
                                  and not (b.snapshot.flags & QuoteFlag.STALE).any())
        i = r.row(live.snapshot, Root.SPXW, date(2026, 12, 3), 5800.0, Right.PUT)
        assert live.snapshot.bid[i] == r.fake_quote(Root.SPXW, date(2026, 12, 3), 5800.0, Right.PUT).bid
        assert live.snapshot.bid[i] != first.snapshot.bid[i]

    run(version, body, source={"strike_window": 4, "expiries": 2})


@pytest.mark.parametrize("version", VERSIONS)
def test_link_lost_is_stale_and_1101_resubscribes(version, client_errors):
    client_errors.allow(1100, 1101, 1102)

    async def body(r: Run) -> None:
        await r.next_batch("first batch")
        lines = r.gw.count(REQ_MKT_DATA)
        r.gw.connectivity_lost()
        await r.next_batch("stale batch", lambda b: bool((b.snapshot.flags & QuoteFlag.STALE).all()))
        assert r.source.status.state is SourceState.ERROR and "(1100)" in r.source.status.message
        r.gw.connectivity_restored()  # 1102: TWS kept the lines
        await r.next_batch("live batch", lambda b: not (b.snapshot.flags & QuoteFlag.STALE).any())
        assert r.source.status.state is SourceState.RUNNING and r.gw.count(REQ_MKT_DATA) == lines
        r.gw.connectivity_restored(data_lost=True)  # 1101: the fake dropped every line, as TWS does
        await r.until(lambda: r.gw.count(REQ_MKT_DATA) == 2 * lines, "every line requested again")
        r.gw.move_market(spot=5797.0)
        await r.next_batch("data after 1101", lambda b: b.snapshot.underlying_price == pytest.approx(5797.0))

    run(version, body, source={"strike_window": 4, "expiries": 2})


def test_unreachable_gateway_is_one_line_error(client_errors):
    client_errors.allow("API connection failed", "Make sure API port")
    async def main() -> IbMarketDataSource:
        conn = IbConnection(IbSettings(port=1, connect_timeout=1.0))  # nothing listens on port 1
        src = IbMarketDataSource(conn, owns_connection=True)
        await src.start()
        return src

    src = asyncio.run(asyncio.wait_for(main(), 10))
    assert src.status.state is SourceState.ERROR and not src.running
    assert src.status.message.startswith("IB market data: cannot reach TWS/IB Gateway at 127.0.0.1:1")
    assert "\n" not in src.status.message


def test_tws_started_after_the_source_is_found_by_the_retries(client_errors):
    """TWS not up yet at start: ERROR saying when the next try is, then (backing off) running once it is up."""
    client_errors.allow("API connection failed", "Make sure API port")
    port = free_port()

    async def main() -> list[SourceStatus]:
        conn = IbConnection(IbSettings(port=port, client_id=23, connect_timeout=1.0, request_timeout=3.0,
                                       reconnect_delay=0.05, reconnect_max_delay=0.1))
        src = IbMarketDataSource(conn, owns_connection=True, today=lambda: TODAY, clock=market_clock(),
                                 strike_window=4, expiries=2)
        statuses: list[SourceStatus] = []
        batches: list[QuoteBatch] = []
        src.subscribe(batches.append, statuses.append)
        await src.start()
        assert src.status.state is SourceState.ERROR and not src.running
        assert src.status.message.endswith("; next try in 0.05 s") and "\n" not in src.status.message
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 3
        while sum(st.message.endswith("next try in 0.1 s") for st in statuses) < 2:  # backed off, capped
            assert loop.time() < deadline, statuses
            await asyncio.sleep(0.01)
        async with FakeGateway(today=TODAY, port=port):
            while not batches:
                assert loop.time() < deadline + 5, src.status
                await asyncio.sleep(0.01)
            assert src.running and src.status.state is SourceState.RUNNING
            await src.stop()
        assert not conn.ib.isConnected()
        return statuses

    asyncio.run(asyncio.wait_for(main(), 15))


def test_stop_ends_the_retries(client_errors):
    client_errors.allow("API connection failed", "Make sure API port")

    async def main() -> None:
        conn = IbConnection(IbSettings(port=free_port(), connect_timeout=1.0, reconnect_delay=0.05))
        src = IbMarketDataSource(conn, owns_connection=True)
        statuses: list[SourceStatus] = []
        src.subscribe(None, statuses.append)
        await src.start()
        await src.stop()
        tries = len(statuses)
        await asyncio.sleep(0.3)
        assert len(statuses) == tries and not src.running

    asyncio.run(asyncio.wait_for(main(), 10))


@pytest.mark.parametrize("version", VERSIONS)
def test_ticks_are_coalesced_at_the_cadence_and_pause_holds_batches(version):
    async def body(r: Run) -> None:
        await r.next_batch("first batch")
        stamps: list[float] = []
        r.source.subscribe(lambda b: stamps.append(time.monotonic()))
        for i in range(20):  # 20 market moves in 0.4 s: a few batches, never two within one period
            r.gw.move_market(spot=5800.0 + (i % 3))
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.3)
        assert 1 <= len(stamps) <= 4 and all(b - a >= 0.2 for a, b in zip(stamps, stamps[1:], strict=False))
        r.source.pause()
        assert r.source.status.state is SourceState.PAUSED
        held = len(r.batches)
        r.gw.move_market(spot=5790.0)
        await asyncio.sleep(0.6)
        assert len(r.batches) == held
        r.source.resume()
        resumed = await r.next_batch("batch after resume")
        assert resumed.snapshot.underlying_price == pytest.approx(5790.0) and not resumed.layout_changed
        assert r.source.status.state is SourceState.RUNNING

    run(version, body, source={"strike_window": 4, "expiries": 2})


@pytest.mark.parametrize("version", VERSIONS)
def test_a_shared_connection_keeps_running_and_its_lines_are_cancelled(version):
    async def main() -> None:
        async with FakeGateway(server_version=version, today=TODAY) as gw:
            conn = IbConnection(IbSettings(host=gw.host, port=gw.port, client_id=24, request_timeout=3.0))
            await conn.connect()  # the broker's connection, say
            src = IbMarketDataSource(conn, today=lambda: TODAY, clock=market_clock(), strike_window=3, expiries=1)
            await src.start()
            assert src.status.state is SourceState.RUNNING and len(src.subscriptions().contracts) == 6
            await src.stop()
            assert conn.connected and src.status.state is SourceState.STOPPED
            await asyncio.sleep(0.1)
            assert gw.count(CANCEL_MKT_DATA) == 1 + 6  # the index and every option line
            await conn.disconnect()

    asyncio.run(asyncio.wait_for(main(), 15))
