"""The pre-trade gate: the one door to a broker (issue 9 §4).

Every order and every modify passes :meth:`PreTradeGate.check` before a broker sees it. The gate runs every
check of :mod:`spx_core.execution.checks` (structure complete, priced, quantity and notional limits, price
band, tick size, expiry, market open, broker and live-trading, closing-order size, the order rate limit and
the issue-10 portfolio-limits hook), reports *every* failure, and only when none failed mints the
single-use :class:`~spx_core.execution.approval.ApprovedOrder` a broker's ``submit`` / ``modify`` demands.

By construction, not by convention: this module registers the approval key at import (a second registration
is refused, so no other module can hold it; one that registered first would leave this module unimportable)
and keeps the key in a closure that no module attribute names; ``ApprovedOrder()`` cannot be called; a
broker's final ``submit`` / ``modify`` consumes the approval (single use, expiring on the market clock).
``tests/architecture/test_gate_bypass.py`` proves each of these and scans spx_core/ and app/ so that only this
module mints (nothing else touches ``_mint``) and only the order service sends.

The gate keeps one piece of state, the order rate window: give each order service its own gate, and call it
from the service's thread.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

from spx_core.domain.calendar import MarketCalendar, default_calendar
from spx_core.domain.quotes import QuoteFlag
from spx_core.execution import approval
from spx_core.execution.approval import ApprovedOrder
from spx_core.execution.broker import Broker, MarketView
from spx_core.execution.checks import (
    CHECKS,
    CheckContext,
    CheckFailure,
    CloseContext,
    PackageQuote,
    package_quote,
)
from spx_core.execution.fill_model import DEFAULT_BLOCKING
from spx_core.execution.orders import OrderRequest
from spx_core.execution.rate_limit import SlidingWindowLimiter

__all__ = ["GateSettings", "PriceBand", "CheckFailure", "CloseContext", "Verdict", "PreTradeGate", "LimitsHook"]

#: The issue-10 hook: portfolio limits on the post-trade portfolio; [] when the order fits.
LimitsHook = Callable[[OrderRequest, MarketView], list[CheckFailure]]


def _make_minter() -> Callable[[OrderRequest, tuple[str, ...], int], ApprovedOrder]:
    key = object()
    approval.register_minter(key)  # raises if anything registered first: then no gate can exist at all

    def mint(request: OrderRequest, checks: tuple[str, ...], approved_ns: int) -> ApprovedOrder:
        return approval.mint(key, request, checks, approved_ns)

    return mint


_mint = _make_minter()


@dataclass(frozen=True, slots=True)
class PriceBand:
    """How far a limit may sit from the natural price (package points per unit).

    Attributes:
        through_ticks: a limit may be this many ticks worse than the natural (paying more than the ask for a
            BUY, receiving less than the bid for a SELL)...
        through_width_fraction: ...or this fraction of the package's bid/ask width, whichever is larger.
        away_ticks, away_widths, away_mid_fraction: on the passive side, a limit further from the natural
            than the largest of these many ticks, package widths and this fraction of |mid| is refused as a
            typo (1.45 typed as 0.15).
    """

    through_ticks: int = 2
    through_width_fraction: float = 0.25
    away_ticks: int = 20
    away_widths: float = 5.0
    away_mid_fraction: float = 0.5

    def __post_init__(self) -> None:
        for name in ("through_ticks", "through_width_fraction", "away_ticks", "away_widths", "away_mid_fraction"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
                raise ValueError(f"PriceBand.{name} must be a finite number >= 0, got {value!r}")


@dataclass(frozen=True, slots=True)
class GateSettings:
    """The gate's limits (frozen; validated at construction).

    Attributes:
        max_quantity: units of the structure per order.
        max_notional: dollars at risk per order: max loss at expiry (or the premium, if larger) x quantity;
            500,000 fits one naked SPX put near the money and 50 lots of a 25-wide vertical with room to spare.
        price_band: how far a limit may be from the natural (:class:`PriceBand`).
        live_trading: False refuses every order to a broker whose ``is_live`` is True.
        orders_per_minute: new orders and modifies per sliding 60 s of market clock (the Tastyworks plan's 60).
        refuse_flags: quote flags that make a leg unusable for pricing an order (by default the ones on which
            the paper fill model never fills: crossed, no quote, outside bounds, stale).
        max_snapshot_age_s: seconds of market clock a chain may lag the clock before orders on it are refused
            (None: no limit).
        enforce_hours: False drops the market-hours check (not the expiry one) for the simulator's always-open
            demo clock (``SimulatorConfig.market_hours=False``, paired with ``PaperBroker(enforce_hours=False)``);
            a live broker is always held to the hours.
    """

    max_quantity: int = 50
    max_notional: float = 500_000.0
    price_band: PriceBand = field(default_factory=PriceBand)
    live_trading: bool = False
    orders_per_minute: int = 60
    refuse_flags: QuoteFlag = DEFAULT_BLOCKING
    max_snapshot_age_s: float | None = 600.0
    enforce_hours: bool = True

    def __post_init__(self) -> None:
        if isinstance(self.max_quantity, bool) or not isinstance(self.max_quantity, int) or self.max_quantity < 1:
            raise ValueError(f"GateSettings.max_quantity must be a whole number >= 1, got {self.max_quantity!r}")
        if not self.max_notional > 0:
            raise ValueError(f"GateSettings.max_notional must be > 0 dollars, got {self.max_notional!r}")
        if not isinstance(self.price_band, PriceBand):
            raise ValueError(f"GateSettings.price_band must be a PriceBand, got {type(self.price_band).__name__}")
        ppm = self.orders_per_minute
        if isinstance(ppm, bool) or not isinstance(ppm, int) or ppm < 1:
            raise ValueError(f"GateSettings.orders_per_minute must be a whole number >= 1, got {ppm!r}")
        object.__setattr__(self, "refuse_flags", QuoteFlag(int(self.refuse_flags)))
        if self.max_snapshot_age_s is not None and not self.max_snapshot_age_s > 0:
            raise ValueError(f"GateSettings.max_snapshot_age_s must be > 0 seconds or None, "
                             f"got {self.max_snapshot_age_s!r}")


@dataclass(frozen=True, slots=True)
class Verdict:
    """The gate's answer. ``approved`` is the broker ticket (None when refused or for a preview).

    Attributes:
        approved: the single-use approval (only from :meth:`PreTradeGate.check`, only when ``ok``).
        failures: every check that refused, in report order.
        passed: the names of the checks that passed.
        quote: the order's legs on the market the verdict was given on (natural, width, ...).
    """

    approved: ApprovedOrder | None
    failures: tuple[CheckFailure, ...]
    passed: tuple[str, ...]
    quote: PackageQuote | None = None

    @property
    def ok(self) -> bool:
        return not self.failures

    @property
    def message(self) -> str:
        """One line: "approved (N checks passed)" or "refused by <check>: <why>; refused by ..."."""
        if self.ok:
            return f"approved ({len(self.passed)} checks passed)"
        return "; ".join(f"refused by {f.check}: {f.reason}" for f in self.failures)

    @classmethod
    def refused(cls, check: str, reason: str) -> Verdict:
        """A refusal decided outside the checks (e.g. the service finding the order already stored)."""
        return cls(None, (CheckFailure(check, reason),), ())


class PreTradeGate:
    """Checks orders and issues approvals. One per order service; not thread-safe (one thread, like the service).

    ``limits(request, market) -> list[CheckFailure]`` is the issue-10 hook (portfolio limits on the post-trade
    portfolio); an exception inside it refuses the order. ``calendar`` defaults to the exchange calendar.
    """

    def __init__(self, settings: GateSettings | None = None, *, limits: LimitsHook | None = None,
                 calendar: MarketCalendar | None = None) -> None:
        self.settings = settings or GateSettings()
        self.limits = limits
        self.calendar = calendar or default_calendar()
        self._rate = SlidingWindowLimiter(self.settings.orders_per_minute)

    def check(self, request: OrderRequest, market: MarketView, broker: Broker, *,
              close: CloseContext | None = None) -> Verdict:
        """Run every check; when all pass, count the order against the rate limit and mint its approval."""
        verdict, now = self._run(request, market, broker, close)
        if not verdict.ok:
            return verdict
        self._rate.record(now)
        return Verdict(_mint(request, verdict.passed, now), (), verdict.passed, verdict.quote)

    def preview(self, request: OrderRequest, market: MarketView, broker: Broker, *,
                close: CloseContext | None = None) -> Verdict:
        """The same checks for the ticket's display: never mints, never counts against the rate limit."""
        return self._run(request, market, broker, close)[0]

    def _run(self, request: OrderRequest, market: MarketView, broker: Broker,
             close: CloseContext | None) -> tuple[Verdict, int]:
        if not isinstance(request, OrderRequest):
            raise TypeError(f"the gate checks OrderRequest, not {type(request).__name__}")
        now = int(market.now_ns())
        ctx = CheckContext(request=request, market=market, broker=broker, settings=self.settings,
                           calendar=self.calendar, limiter=self._rate, now_ns=now,
                           quote=package_quote(request.legs, market, self.settings.refuse_flags, request.side),
                           close=close, limits=self.limits)
        failures: list[CheckFailure] = []
        passed: list[str] = []
        for check in CHECKS:
            name = check.__name__.removeprefix("check_")
            try:
                failure = check(ctx)
            except Exception as exc:  # fail closed: a check that cannot answer refuses the order
                failure = CheckFailure(name, f"the check could not run ({type(exc).__name__}: {exc})")
            if failure is None:
                passed.append(name)
            else:
                failures.append(failure)
        return Verdict(None, tuple(failures), tuple(passed), ctx.quote), now
