"""One client connection of the fake IB Gateway: handshake, account/contract/market-data requests.

Order requests (placeOrder, cancelOrder, open/completed orders, executions) are in ``ib_trading``. A session only
holds per-connection state (client id, market data type, subscriptions); orders, positions and executions live in
the gateway's ``Blotter`` and survive reconnects, as at IB.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING

from tests.fakes import ib_messages as msg
from tests.fakes import ib_trading
from tests.fakes.ib_book import SPX_CON_ID, Instrument, implied_vol
from tests.fakes.ib_codec import FieldReader, frame, parse_version_range
from tests.fakes.ib_requests import match_instruments

if TYPE_CHECKING:
    from tests.fakes.ib_gateway import FakeGateway

DELAYED = {0: 69, 1: 66, 2: 67, 3: 70, 4: 68, 5: 71, 9: 75, 10: 80, 11: 81, 12: 82, 13: 83}
NOT_SUBSCRIBED = ("Requested market data is not subscribed. Check API status by selecting the Account menu then "
                  "under Management choose Market Data Subscription Manager and/or enable delayed-frozen data.")


@dataclass(slots=True)
class Subscription:
    req_id: int
    legs: tuple[tuple[Instrument, int, str], ...]  # one (instrument, 1, "BUY") unless a BAG
    is_bag: bool
    delayed: bool
    generic: frozenset[str] = frozenset()  # generic tick list: 100 option volume, 101 open interest, 104/106 vols


class Session:
    """Per-connection state and the request handlers that need no order state."""

    def __init__(self, gw: FakeGateway, writer: asyncio.StreamWriter) -> None:
        self.gw = gw
        self.writer = writer
        self.version = 0
        self.client_id: int | None = None
        self.market_data_type = 1
        self.tickers: dict[int, Subscription] = {}
        self.account_updates = False
        self.positions_sub = False
        self.pnl_reqs: dict[int, int] = {}  # reqId -> conId (0 = the account's PnL)
        self.closed = False
        self._recent: deque[float] = deque()  # arrival times within the last second, for the pacing limit

    # --- plumbing -----------------------------------------------------------------------------------------
    def send(self, fields: list[object]) -> None:
        if not self.closed and not self.writer.is_closing():
            self.writer.write(frame(fields))

    def error(self, req_id: int, code: int, text: str) -> None:
        self.send(msg.error(self.version, req_id, code, text))

    def close(self) -> None:
        self.closed = True
        self.writer.close()

    @property
    def ready(self) -> bool:
        return self.client_id is not None

    def on_message(self, fields: list[str]) -> None:
        if not self.version:
            self._handshake(fields[0])
            return
        msg_id = int(fields[0])
        self.gw.record(msg_id, fields, self.client_id)
        if self._over_pacing_limit():
            return  # TWS drops what exceeds its message rate
        if not self.ready:
            if msg_id == 71:
                self._start_api(int(fields[2]))
            return
        handler = HANDLERS.get(msg_id) or ib_trading.HANDLERS.get(msg_id)
        if handler is not None:
            handler(self, fields)

    def _over_pacing_limit(self) -> bool:
        limit = self.gw.pacing_limit
        if limit is None:
            return False
        now = time.monotonic()
        self._recent.append(now)
        while now - self._recent[0] > 1.0:
            self._recent.popleft()
        if len(self._recent) <= limit:
            return False
        self.gw.pacing_violations += 1
        self.error(-1, 100, f"Max rate of messages per second has been exceeded:max={limit} rec={len(self._recent)}")
        return True

    def _handshake(self, announcement: str) -> None:
        low, high = parse_version_range(announcement)
        if not low <= self.gw.server_version <= high:
            self.gw.failures.append(f"the client offered versions {low}..{high}; the gateway is set to "
                                    f"{self.gw.server_version}: pick a server_version the client supports")
            self.close()  # as TWS does with a client it cannot serve
            return
        self.version = self.gw.server_version
        self.send([self.version, time.strftime("%Y%m%d %H:%M:%S EST")])

    def _start_api(self, client_id: int) -> None:
        if any(s.client_id == client_id for s in self.gw.live_sessions() if s is not self):
            self.error(-1, 326, "Unable to connect as the client id is already in use. Retry with a unique client id.")
            self.close()
            return
        self.client_id = client_id
        self.send([15, 1, ",".join(self.gw.accounts)])
        self.send([9, 1, self.gw.blotter.next_order_id])
        for code, text in ((2104, "Market data farm connection is OK:usopt"),
                           (2106, "HMDS data farm connection is OK:ushmds"),
                           (2158, "Sec-def data farm connection is OK:secdefnj")):
            self.error(-1, code, text)

    # --- market data --------------------------------------------------------------------------------------
    def send_ticks(self, sub: Subscription) -> None:
        book = self.gw.book

        def price(tick: int, value: float, size: float = 0) -> None:
            self.send(msg.tick_price(sub.req_id, DELAYED[tick] if sub.delayed else tick, value, size))

        def size(tick: int, value: float) -> None:
            self.send(msg.tick_size(sub.req_id, DELAYED.get(tick, tick) if sub.delayed else tick, value))

        inst = sub.legs[0][0]
        if sub.is_bag:
            bid, ask = ib_trading.package_prices(book, sub.legs)
            sizes = min(book.quote(leg).bid_size for leg, _, _ in sub.legs)
            price(1, bid, sizes), price(2, ask, sizes)
            return
        q = book.quote(inst)
        if inst.sec_type == "IND":
            price(4, q.last), price(9, book.close_of(inst))
            for tick, wanted in ((23, "104"), (24, "106")):
                if wanted in sub.generic:
                    self.send([45, 6, sub.req_id, tick, book.market.vol])
            return
        price(1, q.bid, q.bid_size), size(0, q.bid_size)
        price(2, q.ask, q.ask_size), size(3, q.ask_size)
        price(4, q.last, 1), size(5, 1), price(9, q.last)
        if q.greeks is None:
            return
        call = inst.right == "C"
        if "101" in sub.generic:
            size(27 if call else 28, 500 + int(inst.strike) % 997)
        if "100" in sub.generic:
            size(29 if call else 30, 20 + int(inst.strike) % 89)
        for tick, opt_price in ((10, q.bid), (11, q.ask), (12, q.last), (13, q.greeks.price)):
            iv = q.greeks.iv if tick == 13 else implied_vol(book, inst, opt_price)
            self.send(msg.tick_option(sub.req_id, DELAYED[tick] if sub.delayed else tick, q.greeks, iv=iv,
                                      price=opt_price if iv > 0 else -1.0, no_vega_theta=self.gw.vega_theta_missing))


def _req_mkt_data(s: Session, fields: list[str]) -> None:
    r = FieldReader(fields, 2)
    req_id = r.int()
    contract = r.contract()
    if contract.sec_type == "BAG":
        contract.legs = r.short_legs()
    if r.bool():
        r.skip(3)
    generic = frozenset(t.strip() for t in r.str().split(",") if t.strip())
    snapshot = r.bool()
    legs = ib_trading.resolve_legs(s.gw.book, contract)
    if legs is None:
        s.error(req_id, 200, "No security definition has been found for the request")
        return
    delayed = False
    if s.gw.no_subscription:
        if s.market_data_type in (3, 4) and s.gw.delayed_enabled:
            s.error(req_id, 10167, "Requested market data is not subscribed. Displaying delayed market data.")
            delayed = True
        elif s.market_data_type in (3, 4):
            s.error(req_id, 10168, "Requested market data is not subscribed. Delayed market data is not enabled.")
            return
        else:
            s.error(req_id, 354, NOT_SUBSCRIBED)
            return
    sub = Subscription(req_id, legs, contract.sec_type == "BAG", delayed, generic)
    s.send([81, req_id, legs[0][0].min_tick, "c70003", 3])
    s.send([58, 1, req_id, 3 if delayed else 1])
    s.send_ticks(sub)
    if snapshot:
        s.send([57, 1, req_id])
    else:
        s.tickers[req_id] = sub


def _cancel_mkt_data(s: Session, fields: list[str]) -> None:
    req_id = int(fields[2])
    if s.tickers.pop(req_id, None) is None:
        s.error(req_id, 300, f"Can't find EId with tickerId:{req_id}")


def _req_market_data_type(s: Session, fields: list[str]) -> None:
    s.market_data_type = int(fields[2])


# --- contracts --------------------------------------------------------------------------------------------
def _req_contract_details(s: Session, fields: list[str]) -> None:
    r = FieldReader(fields, 2)
    req_id = r.int()
    contract = r.contract()
    if contract.sec_type == "BAG":
        return  # TWS never answers a contract-details request for a BAG
    found = match_instruments(s.gw.book, contract)
    if not found:
        s.error(req_id, 200, "No security definition has been found for the request")
        return
    exchange = contract.exchange or "SMART"
    for inst in found:
        rule = "110" if inst.sec_type == "OPT" else "26"
        s.send(msg.contract_details(s.version, req_id, inst, exchange if inst.sec_type != "IND" else inst.exchange,
                                    rule))
    s.send([52, 1, req_id])


def _req_sec_def_opt_params(s: Session, fields: list[str]) -> None:
    req_id, symbol, con_id = int(fields[1]), fields[2], int(fields[5] or 0)
    book = s.gw.book
    if symbol == "SPX" and con_id in (0, SPX_CON_ID):
        strikes = list(book.strikes)
        for trading_class, expiries in book.expiries.items():
            s.send(msg.sec_def_opt_params(req_id, "SMART", SPX_CON_ID, trading_class, "100",
                                          [d.strftime("%Y%m%d") for d in expiries], strikes))
    s.send([76, req_id])


def _req_matching_symbols(s: Session, fields: list[str]) -> None:
    req_id, pattern = int(fields[1]), fields[2].upper()
    rows: list[object] = []
    hits = [i for i in s.gw.book.instruments() if i.sec_type != "OPT" and i.symbol.startswith(pattern)]
    for inst in hits:
        derivatives = ["OPT"] if inst.symbol in ("SPX", "SPY", "VIX") else []
        rows += [inst.con_id, inst.symbol, inst.sec_type, inst.exchange, inst.currency, len(derivatives),
                 *derivatives]
        if s.version >= 176:
            rows += [inst.long_name, ""]
    s.send([79, req_id, len(hits), *rows])


# --- account ----------------------------------------------------------------------------------------------
def _money(value: float) -> str:
    return f"{value:.2f}"


def _req_account_updates(s: Session, fields: list[str]) -> None:
    s.account_updates = fields[2] == "1"
    if s.account_updates:
        push_account(s)
        for pos in s.gw.blotter.positions.values():
            if pos.quantity:
                s.send(ib_trading.portfolio_message(s.gw, pos))
        s.send([8, 1, s.gw.book.now.strftime("%H:%M")])
        s.send([54, 1, s.gw.accounts[0]])


def push_account(s: Session) -> None:
    account = s.gw.accounts[0]
    s.send([6, 2, "AccountCode", account, "", account])
    for key, value in s.gw.blotter.account_values().items():
        s.send([6, 2, key, _money(value), "USD", account])


def _req_account_updates_multi(s: Session, fields: list[str]) -> None:
    req_id, account, model = int(fields[2]), fields[3], fields[4]
    for key, value in s.gw.blotter.account_values().items():
        s.send([73, 1, req_id, account or s.gw.accounts[0], model, key, _money(value), "USD"])
    s.send([74, 1, req_id])


def _req_account_summary(s: Session, fields: list[str]) -> None:
    req_id, tags = int(fields[2]), {t for t in fields[4].split(",") if t}
    values = s.gw.blotter.account_values()
    account = s.gw.accounts[0]
    if "AccountType" in tags:
        s.send([63, 1, req_id, account, "AccountType", "INDIVIDUAL", ""])
    for tag in sorted(tags & values.keys()):
        s.send([63, 1, req_id, account, tag, _money(values[tag]), "USD"])
    s.send([64, 1, req_id])


def _req_positions(s: Session, fields: list[str]) -> None:
    s.positions_sub = True
    for pos in s.gw.blotter.positions.values():
        if pos.quantity:
            s.send(msg.position(s.gw.accounts[0], pos.instrument, pos.quantity, pos.avg_cost))
    s.send([62, 1])


def _cancel_positions(s: Session, fields: list[str]) -> None:
    s.positions_sub = False


def push_pnl(s: Session) -> None:
    """pnl (94) / pnlSingle (95) to each PnL subscription of the session; daily P&L = unrealized + realized."""
    blotter = s.gw.blotter
    for req_id, con_id in s.pnl_reqs.items():
        if con_id == 0:
            values = blotter.account_values()
            unrealized, realized = values["UnrealizedPnL"], values["RealizedPnL"]
            s.send([94, req_id, round(unrealized + realized, 2), round(unrealized, 2), round(realized, 2)])
            continue
        pos = blotter.positions.get(con_id)
        if pos is None:
            s.send([95, req_id, 0, 0.0, 0.0, 0.0, 0.0])
            continue
        mult = float(pos.instrument.multiplier or 1)
        value = pos.quantity * blotter.mark(pos.instrument) * mult
        unrealized = value - pos.quantity * pos.avg_cost
        s.send([95, req_id, pos.quantity, round(unrealized + pos.realized_pnl, 2), round(unrealized, 2),
                round(pos.realized_pnl, 2), round(value, 2)])


def _req_pnl(s: Session, fields: list[str]) -> None:
    s.pnl_reqs[int(fields[1])] = 0
    push_pnl(s)


def _req_pnl_single(s: Session, fields: list[str]) -> None:
    s.pnl_reqs[int(fields[1])] = int(fields[4] or 0)
    push_pnl(s)


def _cancel_pnl(s: Session, fields: list[str]) -> None:
    s.pnl_reqs.pop(int(fields[1]), None)


def _req_ids(s: Session, fields: list[str]) -> None:
    s.send([9, 1, s.gw.blotter.next_order_id])


def _req_managed_accounts(s: Session, fields: list[str]) -> None:
    s.send([15, 1, ",".join(s.gw.accounts)])


def _req_current_time(s: Session, fields: list[str]) -> None:
    s.send([49, 1, int(time.time())])


HANDLERS = {
    1: _req_mkt_data, 2: _cancel_mkt_data, 6: _req_account_updates, 8: _req_ids, 9: _req_contract_details,
    17: _req_managed_accounts, 49: _req_current_time, 59: _req_market_data_type, 61: _req_positions,
    62: _req_account_summary, 64: _cancel_positions, 76: _req_account_updates_multi, 78: _req_sec_def_opt_params,
    81: _req_matching_symbols, 92: _req_pnl, 93: _cancel_pnl, 94: _req_pnl_single, 95: _cancel_pnl,
}
