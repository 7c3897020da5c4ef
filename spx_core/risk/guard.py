"""RiskGuard: the active limit profile and the circuit breaker, as the pre-trade gate's ``limits`` hook.

    guard = RiskGuard(repo, risk_repo, clock=market.now_ns)
    gate = PreTradeGate(settings, limits=guard)       # every order passes guard(request, market)
    guard.on_trip(cancel_and_close)                   # the app acts on a trip
    status = guard.update(portfolio)                  # after each portfolio refresh: usage, breaker

``guard(request, market)`` composes two refusals:

- the breaker: while today's trip holds, every OPEN request is refused ("circuit breaker: tripped at 10:31 ET
  (...); new entries refused until the next session"); CLOSE requests always pass it;
- the active profile's :class:`~spx_core.risk.limits.RiskLimits` on the book read from the store at that moment
  (so a fill a moment ago counts), working opening orders counted as the trades they will open, with the
  account line (net liquidation, margin) of the latest update.

``update(portfolio)`` (anything with ``trades``, ``positions``, ``account``, ``time_ns``, ``day_start_ns`` and
``snapshots``: the app's ``Portfolio``) builds the :class:`PortfolioState`, tracks the day's P&L high (reset
at each market day), computes every limit's use, and checks the breaker: a new trip is stored, logged at
CRITICAL and handed to every ``on_trip`` callback.

Events:
    on_trip(trip: BreakerTrip): the breaker tripped (once per market day). A failing callback is logged and
    does not stop the others.

No wall clock: ``clock()`` gives the market clock (UTC ns); the backtester drives the same object.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from spx_core.domain.calendar import ET, from_ns
from spx_core.execution.broker import MarketView
from spx_core.execution.checks import CheckFailure
from spx_core.execution.orders import Intent, OrderRequest
from spx_core.risk.breaker import BreakerTrip, CircuitBreaker
from spx_core.risk.limits import PortfolioState, RiskLimits
from spx_core.risk.profiles import LimitProfile
from spx_core.risk.state import portfolio_state
from spx_core.risk.usage import LimitUse, limit_usage, needs_greeks, usage_greeks
from spx_core.storage.orders_repo import et_day_start_ns

__all__ = ["BREAKER_CHECK", "GuardStatus", "RiskGuard", "breaker_refusal"]

log = logging.getLogger(__name__)

#: the name a breaker refusal carries ("refused by limits: circuit breaker: ...")
BREAKER_CHECK = "circuit breaker"


@dataclass(frozen=True, slots=True)
class GuardStatus:
    """The guard after one portfolio refresh.

    Attributes:
        profile: the active limit profile.
        usage: each limit's use now (:func:`~spx_core.risk.usage.limit_usage`).
        state: the book the limits read.
        trip: today's breaker trip (None: not tripped).
        time_ns: market clock of the refresh (UTC ns).
    """

    profile: LimitProfile
    usage: tuple[LimitUse, ...]
    state: PortfolioState
    trip: BreakerTrip | None
    time_ns: int


def breaker_refusal(breaker: CircuitBreaker, request: OrderRequest, now_ns: int) -> list[CheckFailure]:
    """The breaker's refusal of an OPEN request while today's trip holds ([] otherwise; closes always pass)."""
    if request.intent is not Intent.OPEN:
        return []
    trip = breaker.tripped(et_day_start_ns(now_ns))
    if trip is None:
        return []
    at = from_ns(trip.time_ns).astimezone(ET)
    return [CheckFailure(BREAKER_CHECK, f"tripped at {at:%H:%M} ET ({trip.reason}); new entries refused until the "
                                        f"next session")]


class _SnapshotView:
    """A MarketView over a portfolio's snapshots (what the usage values the book on)."""

    def __init__(self, snapshots: dict[str, Any], now_ns: int) -> None:
        self._snapshots, self._now = snapshots, now_ns

    def now_ns(self) -> int:
        return self._now

    def snapshot(self, underlying: str) -> Any:
        return self._snapshots.get(underlying)


class RiskGuard:
    """See the module docstring."""

    def __init__(self, repo: Any, risk_repo: Any, *, clock: Callable[[], int]) -> None:
        self.repo = repo
        self.risk_repo = risk_repo
        self.clock = clock
        self.breaker = CircuitBreaker(risk_repo)
        self.status: GuardStatus | None = None
        self._cache: dict[str, tuple[str, object]] = {}  # IV solves per snapshot, shared by limits and usage
        self._callbacks: list[Callable[[BreakerTrip], None]] = []
        self._account: Any | None = None
        self._day: int | None = None
        self._high = 0.0
        self._checking: str | None = None  # the ref of the request being checked (left out of the pending orders)
        self._greeks: dict[Any, tuple[float, ...]] = {}  # the usage's last solve (update(revalue=False) reuses it)
        self._use(risk_repo.active_profile())

    # --- profile ----------------------------------------------------------------------------------------
    @property
    def profile(self) -> LimitProfile:
        """The active limit profile (its name is what each TradeDecision records as ``limit_profile``)."""
        return self._limits.profile

    def set_profile(self, name: str) -> LimitProfile:
        """Make ``name`` the active profile (stored); raises ProfileError for an unknown name."""
        self._use(self.risk_repo.set_active_profile(name, self.clock()))
        log.info("risk: limit profile %r active", name)
        return self.profile

    def reload(self) -> LimitProfile:
        """Re-read the active profile from the store (after the profile dialog saved an edit)."""
        self._use(self.risk_repo.active_profile())
        return self.profile

    def _use(self, profile: LimitProfile) -> None:
        self._limits = RiskLimits(profile, portfolio=self._book_now, civ_cache=self._cache)

    # --- the gate's hook ----------------------------------------------------------------------------------
    def __call__(self, request: OrderRequest, market: MarketView) -> list[CheckFailure]:
        failures = breaker_refusal(self.breaker, request, int(self.clock()))
        self._checking = request.ref
        try:
            return failures + self._limits(request, market)
        finally:
            self._checking = None

    def _book_now(self) -> PortfolioState:
        """The book as stored this moment with the latest account line; working opening orders count as the
        trades they will open (except the order being checked: a modify is not counted twice)."""
        day = et_day_start_ns(int(self.clock()))
        self._roll(day)
        pending = [s for s in self.repo.orders(working_only=True) if s.ref != self._checking]
        return portfolio_state(self.repo, account=self._account, day_start_ns=day, day_pnl_high=self._high,
                               pending=pending)

    def _roll(self, day: int) -> None:
        if day != self._day:  # a new market day: the P&L high counts from zero again
            self._day, self._high = day, 0.0

    # --- after each refresh -------------------------------------------------------------------------------
    def on_trip(self, callback: Callable[[BreakerTrip], None]) -> Callable[[], None]:
        """Call ``callback(trip)`` when the breaker trips; returns the function that unsubscribes it."""
        self._callbacks.append(callback)
        return lambda: self._callbacks.remove(callback) if callback in self._callbacks else None

    def update(self, portfolio: Any, *, revalue: bool = True) -> GuardStatus:
        """Usage and breaker after a portfolio refresh (see the module docstring).

        ``revalue``: solve the held chains' IVs again for the greek limits' use (tens of ms on a full SPX
        chain); False reuses the greeks of the last solve (held contracts new since then are solved anyway), so a
        caller refreshing several times a second can re-value at its own pace. Counts, money and the breaker
        are always current."""
        now = int(portfolio.time_ns or self.clock())
        day = int(portfolio.day_start_ns or et_day_start_ns(now))
        self._roll(day)
        self._account = portfolio.account
        state = portfolio_state(self.repo, account=portfolio.account, day_start_ns=day, trades=portfolio.trades,
                                positions=portfolio.positions, day_pnl_high=self._high)
        self._high = state.day_pnl_high
        try:
            view = _SnapshotView(portfolio.snapshots, now)
            usage = tuple(limit_usage(self.profile, state, view, cache=self._cache,
                                      greeks=self._usage_greeks(state, view, revalue)))
        except Exception:  # the gauges go blank; the limits themselves still refuse (fail closed) at the gate
            log.exception("risk: the limit usage could not be computed")
            usage = ()
        trip = self.breaker.check(self.profile, state, now, day)
        if trip is not None:
            log.critical("CIRCUIT BREAKER TRIPPED: %s; cancelling working orders, new entries refused until the "
                         "next session", trip.reason)
            for callback in list(self._callbacks):
                try:
                    callback(trip)
                except Exception:  # one failing listener must not keep the others from acting
                    log.exception("risk: a breaker-trip callback failed")
        self.status = GuardStatus(self.profile, usage, state, self.breaker.tripped(day), now)
        return self.status

    def _usage_greeks(self, state: PortfolioState, view: MarketView, revalue: bool) -> dict | None:
        """Per-contract greeks for the usage: re-solved when asked to (or a held contract is new), else the last."""
        if not needs_greeks(self.profile):
            return None
        held = sorted((c for c, q in state.held().items() if q), key=str)
        if revalue or any(c not in self._greeks for c in held):
            try:
                self._greeks = usage_greeks(held, view, self._cache)
            except ValueError:  # limit_usage says unknown for the same reason
                self._greeks = {}
                return None
        return self._greeks

    def record_action(self, cancelled: int, closed: int) -> BreakerTrip | None:
        """Store what was done about today's trip (orders cancelled, trades sent closing orders)."""
        return self.breaker.acted(cancelled, closed)

    @property
    def close_all_on_trip(self) -> bool:
        """The setting: closing orders for every open trade when the breaker trips (risk_state, default off)."""
        from spx_core.storage.risk_repo import CLOSE_ALL_KEY

        return self.risk_repo.get(CLOSE_ALL_KEY, "0") == "1"
