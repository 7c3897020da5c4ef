"""The self-test's paper round trip, as a user does it: open the order ticket with a 1-lot SPXW put credit
vertical at the natural price and press Send (``TicketPanel.send``: the session, so the pre-trade gate), wait
for the fill, find the order in the blotter, the trade in the positions panel and the book's risk report in the risk
panel, press "Close trade" in the positions panel (the ticket opens with the closing order), pick the natural price,
Send, and see the trade flat. Each step is
one PASS/FAIL line; the first failure ends the round trip. On a live feed outside market hours the round trip
is not run, and the line says so with the exchange's hours (the simulated market keeps its own clock). A window without a ticket places through
``TradingSession.place`` directly.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from app.models.blotter_model import natural_price
from spx_core.domain.calendar import ET
from spx_core.domain.contracts import Root
from spx_core.execution.hours import market_open
from spx_core.execution.orders import (
    OrderRequest,
    OrderStatus,
    OrderType,
    Side,
    new_ref,
    normalize_side,
)

if TYPE_CHECKING:
    from app.main_window import MainWindow
    from app.trading import FeedMarket, TradingSession

__all__ = ["SelfTestOrderError", "closing_at_natural", "run_trading_check", "sample_vertical", "wait_until"]

Checks = dict[str, tuple[bool, str]]


class SelfTestOrderError(RuntimeError):
    """No put credit vertical could be priced on the current chain (the message says why)."""


def _usable_puts(market: FeedMarket, root: Root) -> dict[Any, set[float]]:
    """Expiry -> strikes of ``root`` puts with a clean two-sided quote in the latest SPX snapshot."""
    snap = market.snapshot("SPX")
    out: dict[Any, set[float]] = {}
    for sl in snap.expiries() if snap is not None else []:
        if sl.root is not root:
            continue
        c = snap.columns
        r = slice(sl.start, sl.stop)
        ok = (~c["is_call"][r]) & (c["bid"][r] > 0) & (c["ask"][r] >= c["bid"][r]) & (c["flags"][r] == 0)
        out[sl.expiry] = set(c["strike"][r][ok].tolist())
    return out


def sample_vertical(market: FeedMarket, *, width: float = 25.0, otm: float = 0.02, quantity: int = 1,
                    source: str = "self-test", broker: str = "paper") -> OrderRequest:
    """A SELL of a SPXW put credit vertical (``width`` points wide, short strike about ``otm`` below the index,
    the nearest expiry after today) at its natural price rounded to the combo tick in the market's favour.

    Raises:
        SelfTestOrderError: no SPX chain yet, or no such vertical has a clean two-sided market.
    """
    from spx_core.execution.ticks import round_to_tick
    from spx_core.strategies.builders import put_credit_vertical

    snap = market.snapshot("SPX")
    if snap is None:
        raise SelfTestOrderError("no SPX chain from the feed yet; start a source with SPXW options")
    today = snap.time.astimezone(ET).date()
    target = snap.underlying_price * (1.0 - otm)
    for expiry, strikes in sorted(_usable_puts(market, Root.SPXW).items()):
        if expiry <= today:
            continue  # a 0DTE series may be past its close by the time the order arrives
        for short in sorted(strikes, key=lambda k: abs(k - target)):
            if short - width not in strikes:
                continue
            structure = put_credit_vertical(Root.SPXW, expiry, short, width)
            legs, side = normalize_side(structure.legs, Side.BUY)
            natural = natural_price(legs, side, market.snapshots)
            if side is not Side.SELL or not math.isfinite(natural) or natural < 0.10:
                continue
            limit = round_to_tick(natural, combo=True, root=Root.SPXW, direction="down")
            return OrderRequest(ref=new_ref(), legs=legs, side=side, quantity=quantity, limit=limit,
                                snapshot_checksum=snap.checksum, created_ns=market.now_ns(), name=structure.name,
                                kind=structure.kind.value, broker=broker, source=source)
    raise SelfTestOrderError(f"no SPXW {width:g}-wide put credit vertical with a clean two-sided market in the "
                             f"SPX chain at {snap.time.astimezone(ET):%H:%M} ET")


def closing_at_natural(session: TradingSession, trade_id: int, *, source: str = "self-test") -> OrderRequest:
    """The session's closing order of the trade, its limit at the natural price (tick-rounded to cross)."""
    from dataclasses import replace

    from spx_core.execution.ticks import round_to_tick

    request = session.close_request(trade_id)
    if request.order_type is not OrderType.LMT:
        return replace(request, source=source)
    natural = natural_price(request.legs, request.side, session.market.snapshots)
    if not math.isfinite(natural):
        raise SelfTestOrderError(f"trade {trade_id}: a leg has no two-sided quote to close against")
    direction = "up" if request.side is Side.BUY else "down"
    limit = round_to_tick(natural, combo=len(request.legs) > 1, root=request.legs[0].contract.root,
                          direction=direction)
    return replace(request, limit=limit, source=source)


async def wait_until(done: Callable[[], Any], deadline: float) -> Any:
    """``done()`` once it is truthy, or its last (falsy) value at ``deadline`` (time.monotonic); polls every 50 ms."""
    while True:
        value = done()
        if value or time.monotonic() >= deadline:
            return value
        await asyncio.sleep(0.05)


Sent = tuple[bool, str, str]  # (sent, why not, the ref it went out under)


def _send(window: MainWindow, session: TradingSession, request: OrderRequest, *, opened: bool = False) -> Sent:
    """Press Send on the ticket (opened on ``request`` unless ``opened``), or place directly without a ticket."""
    from app.panels.ticket_panel import TicketPanel

    ticket = window.panels.get("ticket")
    if not isinstance(ticket, TicketPanel):
        result = session.place(request)
        return result.verdict.ok, result.verdict.message, request.ref
    if not opened:
        ticket.open_request(request)
    state = ticket.send()
    return state is not None, ticket.status_label.text(), state.ref if state is not None else ""


async def _fill(session: TradingSession, request: OrderRequest, deadline: float,
                send: Callable[[], Sent]) -> tuple[bool, str, str]:
    """Send, then wait for the fill: (filled, what happened, the order's ref)."""
    sent, why, ref = send()
    if not sent:
        return False, f"{request.name}: not sent: {why}", ref
    filled = await wait_until(lambda: _filled(session, ref), deadline)
    stored = next(s for s in session.orders() if s.ref == ref)
    if not filled:
        reason = f" ({stored.reason})" if stored.reason else ""
        return (False, f"{request.name} {stored.request.side.value} at {stored.limit}: {stored.status.value}{reason}",
                ref)
    return True, (f"{stored.request.name} {stored.request.side.value} 1 at {stored.limit:.2f} "
                  f"(from the {stored.request.source}): filled at {stored.avg_fill_price:.2f}, commission+fees "
                  f"${stored.commission + stored.fees:.2f}"), ref


def _filled(session: TradingSession, ref: str) -> bool:
    return any(s.ref == ref and s.status is OrderStatus.FILLED for s in session.orders())


def _trade_of(session: TradingSession, ref: str) -> Any | None:
    p = session.portfolio
    return next((t for t in p.trades if ref in t.order_refs), None) if p is not None else None


async def run_trading_check(window: MainWindow, seconds: float) -> Checks:
    """Place, fill, see, close, see flat (up to ``seconds``); one check per step."""
    session = window.context.trading
    if session is None:
        why = "no order service: the database did not open or the broker is unavailable (see the log)"
        return {"trading": (False, why)}
    deadline = time.monotonic() + seconds
    request = await wait_until(lambda: _try_vertical(session), deadline)
    if not isinstance(request, OrderRequest):
        try:
            sample_vertical(session.market, broker=session.broker_name)
        except SelfTestOrderError as exc:  # says why no vertical could be priced
            return {"trading: paper order": (False, str(exc))}
    closed = _market_closed(session, request)
    if closed:  # a live feed outside market hours: nothing can trade, and the gate would rightly refuse
        return {"trading": (True, f"not checked: {closed}")}
    ok, text, ref = await _fill(session, request, deadline, lambda: _send(window, session, request))
    checks: Checks = {"trading: paper order": (ok, text)}
    if not ok:
        return checks
    blotter, positions = window.panels.get("blotter"), window.panels.get("positions")
    row = blotter.model.row_of(ref) if blotter is not None else -1
    checks["trading: blotter"] = (row >= 0, f"order {ref} in row {row}" if row >= 0 else
                                  f"order {ref} is not in the blotter")
    trade = await wait_until(lambda: _trade_of(session, ref), deadline)
    shown = trade is not None and positions is not None and positions.model.trade_row(trade.id) >= 0
    checks["trading: positions"] = (shown, trade.describe(trade.mark_price(session.market)) if shown
                                    else "the trade is not in the positions panel")
    if not shown:
        return checks
    if "risk" in window.panels:
        checks["risk: populated"] = await _risk_populated(window, deadline)
    try:
        closing = closing_at_natural(session, trade.id)
    except SelfTestOrderError as exc:
        checks["trading: close"] = (False, str(exc))
        return checks
    ok, text, _ref = await _fill(session, closing, deadline, lambda: _close(window, session, positions, trade.id,
                                                                           closing))
    checks["trading: close"] = (ok, text)
    if checks["trading: close"][0]:
        flat = await wait_until(lambda: _is_flat(session, trade.id), deadline)
        closed = session.portfolio.trade(trade.id) if session.portfolio is not None else None
        checks["trading: flat"] = (bool(flat), f"{closed.describe()}" if closed is not None
                                   else "the trade vanished from the portfolio")
        checks["trading: limit refuses"] = _limit_refuses(session)
    return checks


async def _risk_populated(window: MainWindow, deadline: float) -> tuple[bool, str]:
    """Bring the risk tab forward (a covered panel computes nothing) and wait for the filled book's report."""
    risk = window.panels["risk"]
    window.docks["risk"].raise_()
    shown = await wait_until(lambda: risk.populated, deadline)
    ok, text = risk.self_test_status()
    return bool(shown) and ok, text if shown else f"the risk panel shows no report of the book: {text}"


def _limit_refuses(session: TradingSession) -> tuple[bool, str]:
    """An order a temporary strict profile (no open trade allowed) must refuse, naming the limit. Synchronous:
    nothing else runs between making the profile active and restoring the one before (the self-test's DB)."""
    from spx_core.risk.profiles import LimitProfile

    guard = session.guard
    if guard is None:
        return False, "the trading session has no risk guard: orders are not held to any limit profile"
    try:
        request = sample_vertical(session.market, broker=session.broker_name)
    except SelfTestOrderError as exc:
        return False, str(exc)
    strict, before = LimitProfile("self-test strict", max_open_trades=0), guard.profile.name
    guard.risk_repo.save_profile(strict, session.market.now_ns())
    session.set_profile(strict.name)
    try:
        verdict = session.place(request).verdict
    finally:
        session.set_profile(before)
        guard.risk_repo.delete_profile(strict.name)
    if verdict.ok:
        return False, f"profile {strict.name!r} (max_open_trades 0) let an opening order through"
    named = "refused by limits: max_open_trades 0: post-trade" in verdict.message
    return named, verdict.message if named else f"refused, but not naming max_open_trades: {verdict.message}"


def _close(window: MainWindow, session: TradingSession, positions: Any, trade_id: int,
           closing: OrderRequest) -> Sent:
    """"Close trade" in the positions panel (the ticket opens with the closing order), natural price, Send."""
    from app.models.ticket_model import PriceMode
    from app.panels.ticket_panel import TicketPanel

    ticket = window.panels.get("ticket")
    if not isinstance(ticket, TicketPanel):
        return _send(window, session, closing)
    if not (positions.select_trade(trade_id) and positions.close_selected()):
        return False, f"the positions panel did not close trade {trade_id}: {positions.status_label.text()}", ""
    ticket.set_mode(PriceMode.NATURAL)  # cross the market: the self-test wants the fill now
    return _send(window, session, closing, opened=True)


def _market_closed(session: TradingSession, request: OrderRequest) -> str:
    """Why the market is shut for the order's legs at the feed's time ("" when every leg trades)."""
    now = session.market.now_ns()
    for leg in request.legs:
        is_open, why = market_open(leg.contract, now)
        if not is_open:
            return why
    return ""


def _try_vertical(session: TradingSession) -> OrderRequest | None:
    try:
        return sample_vertical(session.market, broker=session.broker_name)
    except SelfTestOrderError:
        return None  # the chain may not have arrived yet: try again until the deadline


def _is_flat(session: TradingSession, trade_id: int) -> bool:
    p = session.portfolio
    trade = p.trade(trade_id) if p is not None else None
    if trade is None or trade.status == "open":
        return False
    held = {leg.contract for leg in trade.legs}
    return all(pos.quantity == 0 for pos in p.positions if pos.contract in held)

