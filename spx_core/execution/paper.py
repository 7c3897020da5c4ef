"""The paper broker: fills orders in-process against the market the terminal runs on (simulator or replay).

It is the terminal's default broker and the backtester's fill engine, so it owns no clock and no thread:
time and quotes come from the injected :class:`~spx_core.execution.broker.MarketView`, and the app calls
:meth:`PaperBroker.on_market` after every market update (the backtester calls it once per step, synchronously).
How fills are priced and sized is :mod:`spx_core.execution.fill_model`; commissions and fees are
:mod:`spx_core.execution.fees`.

Events (through the sink bound by the order service, in this order for one order):
    ``STATUS submitted`` (broker order id ``P<n>``), then per fill one ``FILL`` per leg (exec id
    ``<ref>.<n>.<leg>``: unique, and the same for the same inputs), then nothing (the fills say FILLED) or
    ``STATUS cancelled`` / ``STATUS expired`` (DAY orders at the contract's session close; any order once a
    leg's contract stops trading for good). ``STATUS rejected`` with the reason instead of ``submitted`` when a
    real exchange would refuse the order: a leg expired, not listed in the current chain of its underlying,
    its market closed (:mod:`spx_core.execution.hours`), a limit off the tick grid
    (:mod:`spx_core.execution.ticks`) or at or below zero for a single option, an account that is not this
    broker's; and for a market order whose first look at the market finds a leg without a usable quote (the
    reason names the leg). ``AMEND`` after an accepted modify.

Latency: an order (or a modified one) becomes visible to the market ``latency_ns`` after it is sent; it is
first looked at by the first :meth:`on_market` whose clock is at or past that instant. With no latency it is
looked at inside ``submit`` / ``modify`` already, against the market of that instant. A cancel takes effect at
once (a paper order never races its cancel); a re-priced order takes liquidity again, a quantity-only change
leaves it resting at its limit.

Quantities: a fill takes whole units of the structure (every leg ``|ratio| x units`` contracts), capped by the
displayed sizes; the rest keeps working at its limit.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from spx_core.domain.calendar import MarketCalendar
from spx_core.execution.broker import Broker, BrokerError, MarketView, WhatIf
from spx_core.execution.fees import DEFAULT_FEES, FeeSchedule
from spx_core.execution.fill_model import (
    FillDecision,
    FillModel,
    LegQuotes,
    RowCache,
    SizeBook,
)
from spx_core.execution.hours import is_expired, market_open, session_close_ns
from spx_core.execution.orders import (
    EventKind,
    Fill,
    Intent,
    OrderEvent,
    OrderRequest,
    OrderState,
    OrderStatus,
    OrderType,
    TimeInForce,
)
from spx_core.execution.ticks import on_tick, round_to_tick, tick_size
from spx_core.strategies.margin import margin_requirement
from spx_core.strategies.structure import Leg, Structure, underlying_of

__all__ = ["PaperBroker"]


@dataclass(slots=True)
class _Working:
    """One order the paper broker is working (its current terms and what it filled)."""

    request: OrderRequest  # the working terms (limit / quantity after modifies)
    broker_id: str
    visible_ns: int
    expire_ns: int | None  # DAY orders: the session close of their contracts
    leg_filled: list[int]
    resting: bool = False  # the last look found the market short of the limit: it rests there (fills at it)
    rounds: int = 0  # fills so far (the middle part of the exec ids)
    commission_base: float = 0.0  # per-contract commissions so far, before the order minimum
    commission_charged: float = 0.0

    @property
    def filled_units(self) -> int:
        return min(f // abs(leg.ratio) for f, leg in zip(self.leg_filled, self.request.legs, strict=True))


class PaperBroker(Broker):
    """In-process broker filling against ``market`` (module docstring). Not thread-safe: call it from one loop.

    ``enforce_hours=False`` drops the market-hours rule (not the expiry one) for a simulator running in its
    always-open demo mode (``SimulatorConfig.market_hours=False``), whose clock runs through nights and weekends.
    """

    name = "paper"

    def __init__(self, market: MarketView, *, fees: FeeSchedule = DEFAULT_FEES, fill_model: FillModel | None = None,
                 latency_ns: int = 0, account: str = "PAPER", calendar: MarketCalendar | None = None,
                 id_prefix: str = "P", enforce_hours: bool = True) -> None:
        super().__init__()
        if latency_ns < 0:
            raise ValueError(f"latency_ns {latency_ns!r} must be >= 0 (nanoseconds)")
        self._market = market
        self._fees = fees
        self._model = fill_model if fill_model is not None else FillModel()
        self._latency = int(latency_ns)
        self._account = account
        self._calendar = calendar
        self._prefix = id_prefix
        self._hours = enforce_hours
        self._next_id = 1
        self._working: dict[str, _Working] = {}  # ref -> order, in the order they were sent (deterministic)
        self._seen: set[str] = set()  # every ref ever sent here: a ref is sent once
        self._sizes = SizeBook()
        self._rows = RowCache()

    # --- identity ------------------------------------------------------------------------------------------
    @property
    def account(self) -> str:
        return self._account

    @property
    def is_live(self) -> bool:
        return False

    @property
    def fill_model(self) -> FillModel:
        return self._model

    @property
    def fees(self) -> FeeSchedule:
        return self._fees

    def working_refs(self) -> tuple[str, ...]:
        """Refs of the orders working here, in the order they were sent."""
        return tuple(self._working)

    # --- the broker protocol -------------------------------------------------------------------------------
    def _submit(self, request: OrderRequest) -> None:
        if request.ref in self._seen:
            raise BrokerError(f"order {request.ref} was already sent to the paper broker; a ref is sent once")
        self._seen.add(request.ref)
        now = self._market.now_ns()
        broker_id = self._new_id()
        reason = order_problem(request, self._market, now, account=self._account, calendar=self._calendar,
                               hours=self._hours)
        if reason:
            self._status(request.ref, OrderStatus.REJECTED, now, reason, broker_id)
            return
        self._status(request.ref, OrderStatus.SUBMITTED, now, "", broker_id)
        expire = self._close_ns(request, now) if request.tif is TimeInForce.DAY else None
        work = _Working(request, broker_id, now + self._latency, expire, [0] * len(request.legs))
        self._working[request.ref] = work
        if self._latency == 0:
            self._look(work, now)

    def _modify(self, request: OrderRequest) -> None:
        work = self._working.get(request.ref)
        if work is None:
            raise BrokerError(f"order {request.ref} is not working at the paper broker; it cannot be modified")
        now = self._market.now_ns()
        reason = order_problem(request, self._market, now, account=self._account, calendar=self._calendar,
                               check_listing=False, hours=self._hours)
        if reason:
            raise BrokerError(f"modify of {request.ref} refused: {reason}")
        if request.quantity < work.filled_units or request.quantity < 1:
            raise BrokerError(f"modify of {request.ref} refused: quantity {request.quantity} is below the "
                              f"{work.filled_units} already filled")
        limit = request.limit if request.order_type is OrderType.LMT else None
        self._emit(OrderEvent(request.ref, EventKind.AMEND, now, limit=limit, quantity=request.quantity,
                              broker_order_id=work.broker_id))
        repriced = limit != work.request.limit
        work.request = work.request.with_terms(limit=limit, quantity=request.quantity)
        if work.filled_units >= request.quantity:  # cut to what already filled: the amend made it FILLED
            del self._working[request.ref]
            return
        if repriced:  # a new price is a new order to the market: it may take liquidity again
            work.resting = False
        work.visible_ns = now + self._latency
        if self._latency == 0:
            self._look(work, now)

    def _cancel(self, ref: str) -> None:
        work = self._working.pop(ref, None)
        if work is None:
            raise BrokerError(f"order {ref} is not working at the paper broker; nothing to cancel")
        self._status(ref, OrderStatus.CANCELLED, self._market.now_ns(), "cancelled by request", work.broker_id)

    def adopt(self, states: Sequence[OrderState]) -> None:
        """Keep working the orders a restart restored (they rest at their limits); refuse unacknowledged ones.

        A PENDING order never reached a broker before the restart: it is rejected rather than sent now, since
        its approval was for a market that has moved (send it again from the ticket).
        """
        now = self._market.now_ns()
        for state in states:
            if state.ref in self._working or state.status.is_done:
                continue
            self._seen.add(state.ref)
            self._bump_id(state.broker_order_id)
            if state.status is OrderStatus.PENDING:
                self._status(state.ref, OrderStatus.REJECTED, now, "not acknowledged before the restart; "
                             "send it again", state.broker_order_id or self._new_id())
                continue
            request = state.request.with_terms(limit=state.limit, quantity=state.quantity)
            created = state.request.created_ns or now
            expire = self._close_ns(request, created) if request.tif is TimeInForce.DAY else None
            base = sum(self._fees.charges(f.contract, f.quantity, f.price)[0] for f in state.fills)
            self._working[state.ref] = _Working(
                request, state.broker_order_id or self._new_id(), now, expire, list(state.leg_filled),
                resting=True, rounds=len(state.fills), commission_base=base, commission_charged=state.commission)

    def what_if(self, request: OrderRequest) -> WhatIf:
        """Reg-T margin change (local rules) and the commission + fees estimate of ``request``, before sending."""
        return what_if_figures(request, self._market, self._fees)

    # --- the market ----------------------------------------------------------------------------------------
    def on_market(self) -> None:
        """Look at every working order against the current market: expire what is due, fill what crosses."""
        now = self._market.now_ns()
        self.expire(now)
        self._warm_rows(now)
        for work in list(self._working.values()):
            if work.request.ref in self._working and now >= work.visible_ns:
                self._look(work, now)

    def _warm_rows(self, now: int) -> None:
        """One vectorized row look-up per underlying for every order about to be looked at."""
        by_underlying: dict[str, list] = {}
        for work in self._working.values():
            if now >= work.visible_ns:
                for leg in work.request.legs:
                    by_underlying.setdefault(underlying_of(leg.contract.root), []).append(leg.contract)
        for underlying, contracts in by_underlying.items():
            snap = self._market.snapshot(underlying)
            if snap is not None:
                self._rows.rows(snap, contracts)

    def expire(self, now_ns: int) -> list[str]:
        """Expire the DAY orders whose session closed at or before ``now_ns``; returns their refs."""
        due = [w for w in self._working.values() if w.expire_ns is not None and now_ns >= w.expire_ns]
        for work in due:
            del self._working[work.request.ref]
            self._status(work.request.ref, OrderStatus.EXPIRED, now_ns, "day order not filled by the session "
                         "close", work.broker_id)
        return [w.request.ref for w in due]

    def _look(self, work: _Working, now: int) -> None:
        request = work.request
        gone = next((leg.contract for leg in request.legs if is_expired(leg.contract, now, self._calendar)), None)
        if gone is not None:
            del self._working[request.ref]
            self._status(request.ref, OrderStatus.EXPIRED, now, f"{gone} stopped trading", work.broker_id)
            return
        if self._hours and any(not market_open(leg.contract, now, self._calendar)[0] for leg in request.legs):
            return  # a GTC order waits for the next session
        quotes = LegQuotes.from_market(request.legs, self._market, self._rows)
        wanted = request.quantity - work.filled_units
        decision = self._model.decide(request.legs, request.side, quotes, order_type=request.order_type,
                                      limit=request.limit, resting=work.resting, wanted=wanted, sizes=self._sizes)
        if decision.through is None and request.order_type is OrderType.MKT and work.rounds == 0:
            del self._working[request.ref]
            self._status(request.ref, OrderStatus.REJECTED, now, f"market order not filled: {decision.reason}",
                         work.broker_id)
            return
        if decision.through is not None:  # not through: it rests at its limit until the market comes to it
            work.resting = not decision.through
        if decision.units > 0:
            self._fill(work, decision, quotes, now)

    def _fill(self, work: _Working, decision: FillDecision, quotes: LegQuotes, now: int) -> None:
        request = work.request
        work.rounds += 1
        target = work.filled_units + decision.units
        for i, leg in enumerate(request.legs):
            quantity = abs(leg.ratio) * target - work.leg_filled[i]
            if quantity <= 0:
                continue
            price = decision.leg_prices[i]
            base, fees = self._fees.charges(leg.contract, quantity, price, sold=request.leg_side(i).sign < 0)
            commission = self._fees.order_commission(work.commission_base, work.commission_charged, base)
            fill = Fill(f"{request.ref}.{work.rounds}.{i}", i, leg.contract, request.leg_side(i), quantity, price,
                        now, commission=commission, fees=fees)
            self._emit(OrderEvent(request.ref, EventKind.FILL, now, fill=fill, broker_order_id=work.broker_id))
            work.leg_filled[i] += quantity
            work.commission_base += base
            work.commission_charged += commission
            if int(quotes.rows[i]) >= 0:
                self._sizes.take(quotes.books[i], int(quotes.rows[i]), request.leg_side(i).sign > 0, quantity)
        if work.filled_units >= request.quantity:
            self._working.pop(request.ref, None)

    # --- helpers -------------------------------------------------------------------------------------------
    def _status(self, ref: str, status: OrderStatus, now: int, reason: str, broker_id: str) -> None:
        self._emit(OrderEvent(ref, EventKind.STATUS, now, status=status, reason=reason, broker_order_id=broker_id))

    def _new_id(self) -> str:
        out = f"{self._prefix}{self._next_id}"
        self._next_id += 1
        return out

    def _bump_id(self, broker_id: str | None) -> None:
        if broker_id and broker_id.startswith(self._prefix) and broker_id[len(self._prefix):].isdigit():
            self._next_id = max(self._next_id, int(broker_id[len(self._prefix):]) + 1)

    def _close_ns(self, request: OrderRequest, now: int) -> int:
        return min(session_close_ns(leg.contract, now, self._calendar) for leg in request.legs)


# --- what a real exchange refuses, and the what-if figures ----------------------------------------------------
def order_problem(request: OrderRequest, market: MarketView, now_ns: int, *, account: str,
                  calendar: MarketCalendar | None = None, check_listing: bool = True, hours: bool = True) -> str:
    """Why an exchange would refuse ``request`` at ``now_ns`` ("" when it would take it): one line."""
    if request.account and request.account != account:
        return f"account {request.account!r} is not this broker's ({account!r}); pick the paper account"
    legs = request.legs
    for i, leg in enumerate(legs):
        if is_expired(leg.contract, now_ns, calendar):
            return f"leg {i + 1}: {market_open(leg.contract, now_ns, calendar)[1]}"
    if check_listing:
        quotes = LegQuotes.from_market(legs, market)
        for i, leg in enumerate(legs):
            if quotes.missing[i]:
                return f"unknown contract: leg {i + 1} ({leg.contract}) is {quotes.missing[i]}"
    for i, leg in enumerate(legs if hours else ()):
        is_open, why = market_open(leg.contract, now_ns, calendar)
        if not is_open:
            return why if len(legs) == 1 else f"leg {i + 1}: {why}"
    if request.order_type is OrderType.LMT:
        assert request.limit is not None
        combo = len(legs) > 1
        if not combo and request.limit <= 0:  # exchanges take no zero or negative price for one option
            return f"limit {request.limit:g} is not a price: a single option trades above 0"
        root = max((leg.contract.root for leg in legs), key=lambda r: tick_size(request.limit, combo=combo, root=r))
        if not on_tick(request.limit, combo=combo, root=root):
            tick = tick_size(request.limit, combo=combo, root=root)
            down = round_to_tick(request.limit, combo=combo, root=root, direction="down")
            up = round_to_tick(request.limit, combo=combo, root=root, direction="up")
            kind = "combo net prices" if combo else "single-leg prices at this level"
            return (f"limit {request.limit:g} is off the tick: {root.value} {kind} trade in {tick:.2f} "
                    f"steps; use {down:.2f} or {up:.2f}")
    return ""


def what_if_figures(request: OrderRequest, market: MarketView, fees: FeeSchedule) -> WhatIf:
    """Margin change (Reg-T, :mod:`spx_core.strategies.margin`, legs at mid) and commission + fees (dollars).

    An OPEN order adds the margin of the position it opens; a CLOSE order releases the margin of the position
    it closes (negative change). ``commission`` is all-in (IBKR commission with the minimum, plus fees),
    as IB's what-if reports it, with each leg's fee tier read at its natural price (mid when one side is
    missing). NaN margin with a ``warning`` when a leg has no two-sided quote.
    """
    quotes = LegQuotes.from_market(request.legs, market)
    ok = (quotes.bid >= 0) & (quotes.ask > 0)  # a zero bid is a price here (the 0 / 0.05 wing is worth 0.025)
    mids = [0.5 * (b + a) if good else math.nan for b, a, good in zip(quotes.bid, quotes.ask, ok, strict=True)]
    sign = request.side.sign if request.intent is Intent.OPEN else -request.side.sign
    held = Structure(tuple(Leg(leg.contract, leg.ratio * sign) for leg in request.legs))
    snap = market.snapshot(underlying_of(request.legs[0].contract.root))
    spot = snap.underlying_price if snap is not None else math.nan
    margin = margin_requirement(held, mids, spot) * request.quantity
    if request.intent is not Intent.OPEN:
        margin = -margin
    warning = ""
    bad = [f"leg {i + 1} ({leg.contract})" for i, leg in enumerate(request.legs) if not ok[i]]
    if bad:
        warning = f"no margin estimate: {', '.join(bad)} without a two-sided quote"
    natural = [float(quotes.ask[i] if request.leg_side(i).sign > 0 else quotes.bid[i]) for i in range(len(mids))]
    estimate = [(leg.contract, request.leg_side(i).sign * abs(leg.ratio) * request.quantity, n if n > 0 else m)
                for i, (leg, n, m) in enumerate(zip(request.legs, natural, mids, strict=True))]
    commission, fee = fees.estimate(estimate)
    return WhatIf(init_margin_change=margin, maint_margin_change=margin, commission=commission + fee,
                  source="paper: local Reg-T margin rules and the fee schedule", warning=warning)
