"""The order service on the real repository (SQLite file) and the real paper broker: gate -> store -> broker."""

from __future__ import annotations

import logging
import threading
from datetime import datetime

import pytest

from spx_core.domain import ET, Root
from spx_core.domain.calendar import to_ns
from spx_core.execution.broker import BrokerError
from spx_core.execution.gate import CheckFailure, GateSettings, PreTradeGate
from spx_core.execution.orders import (
    EventKind,
    Fill,
    Intent,
    OrderError,
    OrderEvent,
    OrderStatus,
    Side,
    TimeInForce,
)
from spx_core.execution.paper import PaperBroker
from spx_core.execution.service import OrderService
from spx_core.storage.orders_repo import OrderRepository
from spx_core.storage.store import Store
from tests.execution.gate_market import (
    DAY,
    MONTHLY,
    RecordingBroker,
    StaticMarket,
    contract,
    put_credit_spread,
    single,
)

# The 4700/4675 put spread: SELL natural 4.00 (10.00 bid - 6.00 ask); a 4.30 limit rests until the bid of the
# 4700P reaches 10.30 (richer()).


@pytest.fixture
def db(tmp_path):
    return tmp_path / "orders.sqlite"


@pytest.fixture
def market():
    return StaticMarket()


@pytest.fixture
def world(db, market):
    """(service, repo, broker, shown): a service over a real store file and the paper broker."""
    store = Store.open(db)
    repo = OrderRepository(store)
    broker = PaperBroker(market)
    service = OrderService(repo, broker, PreTradeGate(), market)
    shown = []
    service.subscribe(shown.append)
    yield service, repo, broker, shown
    store.close()


def richer():
    return {(Root.SPXW, DAY, 4700, "P"): (10.30, 10.50)}


# --- place --------------------------------------------------------------------------------------------------
def test_place_stores_before_it_sends_and_shows_only_what_is_stored(world, db):
    service, repo, broker, shown = world
    reader = OrderRepository(Store.open(db))  # another connection: sees only what was committed
    seen_committed = []
    service.subscribe(lambda state: seen_committed.append(reader.order(state.ref)))
    result = service.place(put_credit_spread(limit=4.00, quantity=2))
    assert result.verdict.ok and result.sent
    assert result.state.status is OrderStatus.FILLED and result.state.filled == 2
    assert result.state.avg_fill_price == pytest.approx(4.00)
    assert [s.status for s in shown][:2] == [OrderStatus.PENDING, OrderStatus.SUBMITTED]
    assert shown[-1].status is OrderStatus.FILLED
    # every state a listener was shown was already committed, fill by fill
    assert [(s.status, s.leg_filled) for s in seen_committed] == [(s.status, s.leg_filled) for s in shown]
    assert result.verdict.approved.used
    assert repo.trades(open_only=True)[0].quantity == 2


def test_a_refused_order_is_stored_rejected_and_never_sent(world):
    service, repo, broker, shown = world
    result = service.place(put_credit_spread(limit=4.00, quantity=51))
    assert not result.sent and result.verdict.approved is None
    assert result.state.status is OrderStatus.REJECTED
    assert result.state.reason == ("refused by quantity: 51 units is above the 50-unit limit per order "
                                   "(GateSettings.max_quantity); send fewer")
    stored = repo.order(result.state.ref)
    assert stored.status is OrderStatus.REJECTED and stored.reason == result.state.reason
    assert [e.status for e in repo.events(result.state.ref)] == [OrderStatus.REJECTED]
    assert broker.working_refs() == () and repo.positions() == []
    assert [s.status for s in shown] == [OrderStatus.REJECTED]


def test_a_gate_that_refuses_leaves_the_broker_untouched(world):
    service, repo, broker, shown = world
    ref = service.place(put_credit_spread(limit=4.30)).state.ref
    events = repo.events(ref)
    service.gate.limits = lambda request, market: [CheckFailure("max_vega", "vega beyond $2,000")]
    assert service.modify(ref, limit=4.25).message == "refused by limits: max_vega: vega beyond $2,000"
    assert service.place(put_credit_spread()).state.status is OrderStatus.REJECTED
    assert repo.events(ref) == events and broker.working_refs() == (ref,)
    assert repo.order(ref).limit == 4.30


def test_placing_a_stored_ref_again_sends_nothing(world):
    service, repo, broker, shown = world
    request = put_credit_spread(limit=4.30)
    first = service.place(request)
    assert first.sent and first.state.status is OrderStatus.SUBMITTED
    events = repo.events(request.ref)
    again = service.place(request)
    assert not again.sent and again.state.status is OrderStatus.SUBMITTED
    assert again.verdict.failures[0].check == "duplicate"
    assert repo.events(request.ref) == events and broker.working_refs() == (request.ref,)
    with pytest.raises(OrderError, match="already used by a different order"):
        service.place(put_credit_spread(limit=4.35, ref=request.ref))


def test_a_broker_that_cannot_take_the_order_leaves_it_rejected(db, market):
    class Down(RecordingBroker):
        def _submit(self, request):
            raise BrokerError("not connected to TWS")

    store = Store.open(db)
    service = OrderService(OrderRepository(store), Down(), PreTradeGate(), market)
    result = service.place(put_credit_spread())
    assert not result.sent and result.verdict.ok
    assert result.state.status is OrderStatus.REJECTED
    assert result.state.reason == "not sent: paper: not connected to TWS"
    store.close()


def test_the_rate_limit_counts_orders_and_modifies(db, market):
    store = Store.open(db)
    service = OrderService(OrderRepository(store), PaperBroker(market), PreTradeGate(GateSettings(orders_per_minute=2)),
                           market)
    resting = service.place(put_credit_spread(limit=4.30)).state
    assert service.modify(resting.ref, limit=4.35).ok
    assert service.place(put_credit_spread(limit=4.30)).state.reason.startswith("refused by rate_limit: ")
    assert service.modify(resting.ref, limit=4.40).failures[0].check == "rate_limit"
    store.close()


def test_the_demo_clock_trades_on_a_saturday(db):
    market = StaticMarket(datetime(2024, 1, 6, 11, 0, tzinfo=ET))
    store = Store.open(db)
    service = OrderService(OrderRepository(store), PaperBroker(market, enforce_hours=False),
                           PreTradeGate(GateSettings(enforce_hours=False)), market)
    result = service.place(single(4700, "P", Side.BUY, 40.60, expiry=MONTHLY, root="SPX"))
    assert result.state.status is OrderStatus.FILLED, result.state.reason
    store.close()


# --- broker events ---------------------------------------------------------------------------------------------
def test_an_event_the_store_refuses_is_logged_and_not_shown(world, caplog):
    service, repo, broker, shown = world
    state = service.place(put_credit_spread(limit=4.30)).state
    shown.clear()
    bad = Fill("x.1", 0, contract(4700), Side.BUY, 1, 10.2, 0)  # the order SELLs this leg
    with caplog.at_level(logging.ERROR, logger="spx_core.execution.service"):
        assert service.on_event(OrderEvent(state.ref, EventKind.FILL, 0, fill=bad)) is None
        assert service.on_event(OrderEvent("spx-unknown", EventKind.STATUS, 0, status=OrderStatus.SUBMITTED)) is None
    assert shown == []
    assert "not stored, not shown" in caplog.text and "spx-unknown" in caplog.text
    assert repo.order(state.ref).fills == ()


def test_a_failing_listener_does_not_starve_the_others(world, caplog):
    service, repo, broker, shown = world

    def broken(state):
        raise RuntimeError("view gone")

    service._listeners.insert(0, broken)
    with caplog.at_level(logging.ERROR):
        service.place(put_credit_spread(limit=4.00))
    assert shown[-1].status is OrderStatus.FILLED and "view gone" in caplog.text


def test_unsubscribe(world):
    service, repo, broker, shown = world
    more = []
    unsubscribe = service.subscribe(more.append)
    unsubscribe()
    service.place(put_credit_spread(limit=4.00))
    assert more == [] and shown


def test_calls_from_another_thread_are_refused(world):
    service, *_ = world
    errors = []

    def other():
        try:
            service.place(put_credit_spread())
        except RuntimeError as exc:
            errors.append(str(exc))

    t = threading.Thread(target=other, name="worker-7")
    t.start()
    t.join()
    assert errors and "called from thread worker-7" in errors[0]


# --- modify / cancel ---------------------------------------------------------------------------------------------
def test_modify_goes_through_the_gate(world, market):
    service, repo, broker, shown = world
    ref = service.place(put_credit_spread(limit=4.30)).state.ref
    verdict = service.modify(ref, limit=3.50)  # 0.50 through the 4.00 natural
    assert verdict.failures[0].check == "price_band" and verdict.approved is None
    assert repo.order(ref).limit == 4.30 and [e.kind for e in repo.events(ref)] == [EventKind.STATUS]
    verdict = service.modify(ref, limit=4.25, quantity=3)
    assert verdict.ok and verdict.approved.used
    state = repo.order(ref)
    assert (state.limit, state.quantity, state.status) == (4.25, 3, OrderStatus.SUBMITTED)
    assert service.modify(ref, quantity=51).message.startswith("refused by quantity:")
    market.move(richer())
    broker.on_market()
    assert repo.order(ref).status is OrderStatus.FILLED
    assert service.modify(ref, limit=4.20).message == f"refused by modify: order {ref} is filled; nothing to modify"


def test_cancel(world):
    service, repo, broker, shown = world
    ref = service.place(put_credit_spread(limit=4.30)).state.ref
    service.cancel(ref)
    assert repo.order(ref).status is OrderStatus.CANCELLED and shown[-1].status is OrderStatus.CANCELLED
    service.cancel(ref)  # done: nothing to do
    with pytest.raises(OrderError, match="no order spx-nope"):
        service.cancel("spx-nope")


# --- closing ----------------------------------------------------------------------------------------------------
def test_close_a_trade_and_refuse_over_closing(world, market):
    service, repo, broker, shown = world
    service.place(put_credit_spread(limit=4.00, quantity=2))
    trade = repo.trades(open_only=True)[0]
    request = service.close_request(trade.id)
    assert (request.intent, request.trade_id, request.side, request.quantity) == (Intent.CLOSE, trade.id, Side.BUY, 2)
    assert request.limit == pytest.approx(4.40)  # buying the spread back at the natural: 10.20 - 5.80
    resting = service.place(service.close_request(trade.id, quantity=1).with_terms(limit=4.20))
    assert resting.state.status is OrderStatus.SUBMITTED
    over = service.place(service.close_request(trade.id, quantity=2))
    assert over.state.reason == (f"refused by close: closes 2 units of trade #{trade.id}, which has 2 open (1 more "
                                 f"in working closing orders); close at most 1")
    assert service.place(service.close_request(trade.id, quantity=1)).state.status is OrderStatus.FILLED
    assert repo.trade(trade.id).quantity == 1
    service.cancel(resting.state.ref)
    done = service.place(service.close_request(trade.id))
    assert done.state.status is OrderStatus.FILLED
    assert repo.trade(trade.id).status == "closed"
    late = service.place(put_credit_spread(limit=4.40, side=Side.BUY, intent=Intent.CLOSE, trade_id=trade.id))
    assert late.state.reason == f"refused by close: trade #{trade.id} is already closed"


def test_a_close_of_an_unknown_trade_is_refused_though_it_cannot_be_stored(world):
    service, repo, broker, shown = world
    result = service.place(put_credit_spread(limit=4.40, side=Side.BUY, intent=Intent.CLOSE, trade_id=99))
    assert result.state.status is OrderStatus.REJECTED and not result.sent
    assert result.state.reason == "refused by close: trade #99 does not exist; pick an open trade"
    assert repo.order(result.state.ref) is None and broker.working_refs() == ()
    assert shown == [result.state]


# --- restart, expiry, switching ----------------------------------------------------------------------------------
def test_restore_hands_working_orders_to_a_new_broker(db, market):
    store = Store.open(db)
    service = OrderService(OrderRepository(store), PaperBroker(market), PreTradeGate(), market)
    ref = service.place(put_credit_spread(limit=4.30)).state.ref
    service.place(put_credit_spread(limit=4.00))  # filled: not restored
    store.close()
    # the restart: a new store, broker and service over the same file
    store = Store.open(db)
    broker = PaperBroker(market)
    service = OrderService(OrderRepository(store), broker, PreTradeGate(), market)
    assert [s.ref for s in service.restore()] == [ref]
    assert broker.working_refs() == (ref,)
    market.move(richer())
    broker.on_market()
    assert service.orders()[0].status is OrderStatus.FILLED
    store.close()


def test_expire_day_with_the_paper_broker(world, market):
    service, repo, broker, shown = world
    day = service.place(put_credit_spread(limit=4.30)).state.ref
    gtc = service.place(single(4650, "P", Side.BUY, 27.00, expiry=MONTHLY, root="SPX", tif=TimeInForce.GTC)).state.ref
    assert service.expire_day(to_ns(datetime(2024, 1, 5, 15, 59, tzinfo=ET))) == []
    expired = service.expire_day(to_ns(datetime(2024, 1, 5, 16, 0, tzinfo=ET)))
    assert [s.ref for s in expired] == [day] and expired[0].status is OrderStatus.EXPIRED
    assert repo.order(gtc).status is OrderStatus.SUBMITTED and broker.working_refs() == (gtc,)


def test_expire_day_for_a_broker_that_does_not_expire_its_orders(db, market, caplog):
    class EchoingBroker(RecordingBroker):
        """Acknowledges orders; confirms a cancel with CANCELLED (as TWS does for an expired DAY order)."""

        def _submit(self, request):
            super()._submit(request)
            self._emit(OrderEvent(request.ref, EventKind.STATUS, market.now_ns(), status=OrderStatus.SUBMITTED))

        def _cancel(self, ref):
            super()._cancel(ref)
            self._emit(OrderEvent(ref, EventKind.STATUS, market.now_ns(), status=OrderStatus.CANCELLED))

    store = Store.open(db)
    broker = EchoingBroker()
    service = OrderService(OrderRepository(store), broker, PreTradeGate(), market)
    ref = service.place(put_credit_spread(limit=4.30)).state.ref
    with caplog.at_level(logging.INFO, logger="spx_core.execution.service"):
        expired = service.expire_day(to_ns(datetime(2024, 1, 5, 16, 0, tzinfo=ET)))
    assert [s.status for s in expired] == [OrderStatus.EXPIRED]
    assert expired[0].reason == "DAY order expired at the 16:00 ET close"
    assert broker.cancelled == [ref] and service.orders()[0].status is OrderStatus.EXPIRED
    assert "ignored, the order is already expired" in caplog.text and "ERROR" not in caplog.text
    store.close()


def test_a_day_order_without_a_creation_time_expires_by_when_it_was_sent(world, market):
    service, repo, broker, shown = world
    market.move(seconds=3600)  # 11:30 ET
    ref = service.place(put_credit_spread(limit=4.30, created_ns=0)).state.ref
    assert service.expire_day(to_ns(datetime(2024, 1, 5, 15, 59, tzinfo=ET))) == []
    assert repo.order(ref).status is OrderStatus.SUBMITTED


def test_switch_broker_only_when_nothing_works_at_the_old_one(world, market):
    service, repo, broker, shown = world
    ref = service.place(put_credit_spread(limit=4.30)).state.ref
    other = PaperBroker(market, id_prefix="Q")
    with pytest.raises(BrokerError, match="1 orders are still working at paper"):
        service.switch_broker(other)
    service.cancel(ref)
    assert service.switch_broker(other) == []
    assert service.place(put_credit_spread(limit=4.00)).state.broker_order_id.startswith("Q")
