"""IB's positions against our book: the comparison (hand-built inputs, odd ones too), the watch's retry and
timeout, and the check after a reconnect against the fake gateway (a fill through the broker matches; a position
placed outside the terminal is reported, and the book is left alone)."""

from __future__ import annotations

import asyncio
import logging
import math
from datetime import date
from types import SimpleNamespace

import pytest

from spx_core.domain.contracts import OptionContract, Right, Root
from spx_core.execution.ib.compat import UNSET_DOUBLE, ib_module
from spx_core.execution.ib.position_watch import PositionWatch
from spx_core.execution.ib.positions import (
    ContractKey,
    PositionCheck,
    compare_positions,
    key_of_ib,
)
from spx_core.execution.orders import OrderStatus
from spx_core.portfolio.positions import Book, Position
from tests.execution.ib.harness import EXPIRY, Session, credit_vertical, run

ibm = ib_module()
DEC18 = date(2026, 12, 18)  # a third Friday: SPX (AM) and SPXW (PM) both list it
DEC17 = date(2026, 12, 17)
ACCOUNT = "DU1234567"


def ib_option(strike: float, right: str = "P", expiry: str = "20261218", trading_class: str = "SPXW",
              multiplier: str = "100", symbol: str = "SPX"):
    return ibm.Contract(secType="OPT", symbol=symbol, lastTradeDateOrContractMonth=expiry, strike=strike,
                        right=right, multiplier=multiplier, tradingClass=trading_class, currency="USD")


def ib_pos(contract, quantity: float, avg_cost: float = 0.0, account: str = ACCOUNT):
    return ibm.Position(account, contract, quantity, avg_cost)


def ours(strike: float, quantity: int, *, root: Root = Root.SPXW, right: Right = Right.PUT,
         expiry: date = DEC18) -> Position:
    return Position(OptionContract(root=root, expiry=expiry, strike=strike, right=right), quantity, 1.0)


def key(strike: float, root: Root = Root.SPXW, right: Right = Right.PUT, expiry: date = DEC18) -> ContractKey:
    return ContractKey(root, expiry, strike, right)


# --- the comparison --------------------------------------------------------------------------------------------
def test_matches_mismatches_and_one_sided_positions_are_told_apart():
    ib = [ib_pos(ib_option(5900), -2, 250.0), ib_pos(ib_option(5875), 1, 180.0),
          ib_pos(ib_option(6000, "C"), -1, 90.0)]
    book = [ours(5900, -1), ours(5875, 1), ours(5800, 3), ours(5700, 0)]  # a flat position is no position
    check = compare_positions(ib, book, account=ACCOUNT)
    assert not check.ok
    assert [(line.key, line.ours, line.ib) for line in check.matches] == [(key(5875), 1, 1)]
    assert [(line.key, line.ours, line.ib) for line in check.mismatches] == [(key(5900), -1, -2)]
    assert [(line.key, line.ours, line.ib) for line in check.only_ib] == [(key(6000, right=Right.CALL), 0, -1)]
    assert [(line.key, line.ours, line.ib) for line in check.only_ours] == [(key(5800), 3, 0)]
    assert check.mismatches[0].ib_avg_cost == pytest.approx(2.50)  # IB's avgCost is per contract x multiplier
    assert math.isnan(check.only_ours[0].ib_avg_cost)
    assert check.message == (
        "IB positions differ from the book: SPXW 2026-12-18 5800P ours +3, IB +0; SPXW 2026-12-18 5900P ours -1, "
        "IB -2; SPXW 2026-12-18 6000C ours +0, IB -1 (trades placed outside the terminal, or fills it missed? "
        "the book is not changed: check TWS)")


def test_a_clean_check_says_how_many_contracts_match():
    check = compare_positions([ib_pos(ib_option(5900), -1, 250.0), ib_pos(ib_option(5875), 1, 180.0)],
                              [ours(5900, -1), ours(5875, 1)], account=ACCOUNT)
    assert check.ok and check.message == "IB positions match the book (2 contracts)"
    assert compare_positions([], [], account=ACCOUNT).message == "IB positions match the book (0 contracts)"


@pytest.mark.parametrize(("contract", "expected"), [
    (ib_option(5899.999999999, "PUT"), key(5900)),  # float noise; PUT spelled out
    (ib_option(5900.0000001, "c", expiry="20261218 16:00:00 US/Eastern"), key(5900, right=Right.CALL)),
    (ib_option(5900, expiry="2026-12-18", multiplier=""), key(5900)),  # dashed date; no multiplier
    (ib_option(5900, trading_class="SPX"), key(5900, Root.SPX)),  # the AM monthly is another contract
    (ib_option(5900, expiry="20261217", trading_class=""), key(5900, expiry=DEC17)),  # not a 3rd Friday: SPXW
    (SimpleNamespace(secType="OPT", symbol="SPX", lastTradeDateOrContractMonth="20261218", strike="5900",
                     right="P", tradingClass="", localSymbol="SPX   261218P05900000"), key(5900, Root.SPX)),
    (ib_option(600, "C", trading_class="SPY", symbol="SPY"), key(600, Root.SPY, Right.CALL)),
])
def test_odd_ib_contracts_map_to_our_keys(contract, expected):
    assert key_of_ib(contract) == (expected, "")


@pytest.mark.parametrize(("contract", "why"), [
    (ibm.Stock("SPY", "SMART", "USD"), "STK is not an option"),
    (ibm.Contract(secType="FOP", symbol="ES", lastTradeDateOrContractMonth="20261218", strike=5900, right="P"),
     "FOP is not an option"),
    (ib_option(150, symbol="AAPL", trading_class="AAPL"), "options on AAPL are not traded"),
    (ib_option(5900, trading_class=""), "SPX (AM) or SPXW (PM)"),  # a third Friday without a class: ambiguous
    (ib_option(5900, expiry="202612"), "expiry, strike or right cannot be read"),  # a month, not a date
    (ib_option(5900, right="?"), "expiry, strike or right cannot be read"),
    (ib_option(math.inf), "expiry, strike or right cannot be read"),
    (ib_option(0.0), "strike 0 is not a listed strike"),
    (ib_option(5900, trading_class="SPXQ"), "trading class SPXQ of SPX is not traded"),
])
def test_what_the_terminal_does_not_trade_is_untracked_not_a_mismatch(contract, why):
    found, reason = key_of_ib(contract)
    assert found is None and why in reason
    check = compare_positions([ib_pos(contract, 100)], [], account=ACCOUNT)
    assert check.ok and len(check.untracked) == 1 and why in check.untracked[0].reason
    assert "; not tracked by the terminal: " in check.message


def test_other_accounts_flat_lines_and_split_lines_are_handled():
    ib = [ib_pos(ib_option(5900), -1, 300.0, account="DU999"),  # another account: ignored, counted
          ib_pos(ib_option(5875), 0, 0.0),  # closed today: TWS lists it flat
          ib_pos(ib_option(5850), -1, 200.0), ib_pos(ib_option(5850, expiry="20261218 16:00"), -1, 400.0),
          ib_pos(ib_option(5800), 1, UNSET_DOUBLE)]  # IB's "no value" cost
    check = compare_positions(ib, [ours(5850, -2), ours(5800, 1)], account=ACCOUNT)
    assert check.ok and check.other_accounts == 1
    assert [(line.key, line.ib) for line in check.matches] == [(key(5800), 1), (key(5850), -2)]
    assert check.matches[1].ib_avg_cost == pytest.approx(3.0)
    assert math.isnan(check.matches[0].ib_avg_cost)
    assert compare_positions(ib, [], account="").only_ib[-1].key == key(5900)  # no account: every account


def test_a_long_difference_list_stays_one_line():
    ib = [ib_pos(ib_option(5000 + 5 * k), 1) for k in range(12)]
    message = compare_positions(ib, [], account=ACCOUNT).message
    assert "\n" not in message and "; and 4 more (trades placed" in message


# --- the watch: retry when an execution arrives meanwhile, timeout ---------------------------------------------
class _Ib:
    def __init__(self, answers: list, on_request=None) -> None:
        self.answers, self.requests, self.on_request = answers, 0, on_request

    async def reqPositionsAsync(self):
        self.requests += 1
        if self.on_request is not None:
            self.on_request(self.requests)
        answer = self.answers[min(self.requests, len(self.answers)) - 1]
        if answer is None:
            await asyncio.sleep(10)
        return answer


def _watch(ib: _Ib, book: list[Position], timeout: float = 1.0) -> PositionWatch:
    return PositionWatch(ib, account=lambda: ACCOUNT, timeout=timeout, settle_wait=0.05,
                         executions_pending=lambda: False, book=lambda _account: book)


def test_positions_are_read_again_when_an_execution_arrived_meanwhile():
    book: list[Position] = []
    ib = _Ib([[], [ib_pos(ib_option(5900), -1)]])
    watch = _watch(ib, book)
    ib.on_request = lambda n: (watch.execution_seen(), book.append(ours(5900, -1))) if n == 1 else None
    seen: list[PositionCheck] = []
    watch.on_check(seen.append)
    check = asyncio.run(watch.check())
    assert ib.requests == 2 and check is not None and check.ok and seen == [check] and watch.last is check


def test_a_timeout_is_logged_and_reports_nothing(caplog):
    watch = _watch(_Ib([None]), [], timeout=0.05)
    seen: list[PositionCheck] = []
    watch.on_check(seen.append)
    with caplog.at_level(logging.WARNING, "spx_core.execution.ib"):
        assert asyncio.run(watch.check()) is None
    assert seen == [] and watch.last is None
    assert "IB position check incomplete (no answer within 0.05 s); it runs again after the next reconnect" \
        in caplog.messages


def test_no_book_no_check():
    ib = _Ib([[]])
    assert asyncio.run(PositionWatch(ib, account=str, timeout=1, settle_wait=0.1,
                                     executions_pending=lambda: False).check()) is None
    assert ib.requests == 0


# --- against the fake gateway ----------------------------------------------------------------------------------
def _book_of(s: Session) -> list[Position]:
    """Our book: the positions the fills the broker reported add up to (what the store holds)."""
    book = Book()
    for event in s.events:
        if event.fill is not None:
            book.apply(event.fill)
    return book.positions()


def test_reconnect_checks_positions_a_fill_matches_and_an_outside_trade_is_reported(ib_client_errors):
    ib_client_errors.allow(1102, "Peer closed")
    checks: list[PositionCheck] = []

    async def body(s: Session) -> None:
        s.broker.position_watch.book = lambda account: _book_of(s) if account == ACCOUNT else []
        s.broker.position_watch.on_check(checks.append)
        s.submit(credit_vertical("r-fill", 5750, 5725, limit=0.05))  # marketable: fills on placement
        await s.status("r-fill", OrderStatus.FILLED)
        s.gw.connectivity_restored()  # 1102: the broker reconciles, then compares the positions
        await s.until(lambda: len(checks) == 1, what="first position check")
        assert checks[0].ok and checks[0].message == "IB positions match the book (2 contracts)"
        outside = next(i for i in s.gw.book.instruments("SPX", f"{EXPIRY:%Y%m%d}")
                       if i.trading_class == "SPXW" and i.strike == 5700 and i.right == "P")
        s.gw.set_position(outside.con_id, -2, avg_cost=310.0)  # sold in TWS by hand
        events = len(s.events)
        s.gw.drop_clients()
        await s.until(lambda: len(checks) == 2, timeout=5, what="position check after the reconnect")
        assert len(s.events) == events  # reported, the book is not rewritten from IB's numbers

    run(176, body)
    check = checks[1]
    assert not check.ok and [str(line) for line in check.only_ib] == ["SPXW 2026-12-04 5700P ours +0, IB -2"]
    assert check.only_ib[0].ib_avg_cost == pytest.approx(3.10)
    assert len(check.matches) == 2 and not check.mismatches and not check.only_ours
    assert check.message.startswith("IB positions differ from the book: SPXW 2026-12-04 5700P ours +0, IB -2 (")


def test_positions_are_checked_again_while_connected_without_a_reconnect(ib_client_errors):
    """A trade entered in TWS by hand shows within ``position_check_interval``, not only after a drop."""
    checks: list[PositionCheck] = []

    async def body(s: Session) -> None:
        s.broker.position_watch.book = lambda account: _book_of(s) if account == ACCOUNT else []
        s.broker.position_watch.on_check(checks.append)
        await s.until(lambda: len(checks) >= 1, what="first periodic check")
        assert checks[-1].ok
        outside = next(i for i in s.gw.book.instruments("SPX", f"{EXPIRY:%Y%m%d}")
                       if i.trading_class == "SPXW" and i.strike == 5700 and i.right == "C")
        s.gw.set_position(outside.con_id, 1, avg_cost=50.0)
        await s.until(lambda: not checks[-1].ok, what="the outside trade reported by a periodic check")
        assert [str(line) for line in checks[-1].only_ib] == ["SPXW 2026-12-04 5700C ours +0, IB +1"]
        assert not any("reconnecting" in text or "lost" in text for text in s.statuses), s.statuses  # no drop

    run(176, body, settings={"position_check_interval": 0.1})


def test_no_periodic_check_when_the_interval_is_zero():
    async def body(s: Session) -> None:
        checks: list[PositionCheck] = []
        s.broker.position_watch.book = lambda account: []
        s.broker.position_watch.on_check(checks.append)
        await asyncio.sleep(0.5)
        assert checks == [] and s.broker.position_watch._timer is None

    run(176, body, settings={"position_check_interval": 0})
