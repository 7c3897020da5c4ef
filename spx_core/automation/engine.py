"""The decision engine: one strategy, one market snapshot, one instant -> a TRADE or SKIP decision (+ its order).

``DecisionEngine().decide(config, ctx, now_ns, state=...)`` runs, in order:

1. the look-ahead guard: a context stamped after ``now_ns`` is refused (a SKIP saying so), so a backtest can
   never decide on data it could not yet have seen;
2. the strategy's market filters (IV rank, VIX, regime) and its limit profile's entry conditions on the book
   (``state``): every failure is listed;
3. the selection: the scanner (:func:`spx_core.strategies.scanner.scan`) for scanner structures, best
   candidate first (the first one the profile's minimum entry DTE allows), or the SPX vs 10x SPY pair builder
   (:mod:`spx_core.automation.pair`);
4. the size (fixed, or risk budget / max loss per unit, capped) and the limit price (mid, natural or mid moved
   toward the natural; on the order's tick grid), written as the order convention reads it
   (:func:`~spx_core.execution.orders.normalize_side`: a credit structure is SOLD at a positive price).

The decision records the snapshot id and checksum, the config hash and the limit profile. Nothing reads the
clock or draws a random number: the order ref is derived from (config hash, snapshot checksum, now_ns), so the
same inputs give the same decision, bit for bit, and a repeated decision is the same (idempotent) order.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass

import numpy as np

from spx_core.analytics.filters import IVRankSource
from spx_core.analytics.market_state import MarketState
from spx_core.automation.config import PriceMode, SizingMode, StrategyConfig
from spx_core.automation.entry_checks import (
    filter_failures,
    normalize_regimes,
    profile_failures,
)
from spx_core.automation.pair import PairCandidate, select_pair
from spx_core.domain.calendar import from_ns
from spx_core.domain.snapshot import ChainSnapshot
from spx_core.execution import ticks
from spx_core.execution.gate import GateSettings
from spx_core.execution.orders import (
    Intent,
    OrderRequest,
    OrderType,
    Side,
    normalize_side,
    package_price,
)
from spx_core.portfolio.decisions import Action, TradeDecision
from spx_core.risk.limits import PortfolioState
from spx_core.risk.profiles import PROFILES, LimitProfile
from spx_core.strategies.market import locate
from spx_core.strategies.scanner import Candidate, scan
from spx_core.strategies.structure import Leg, Structure
from spx_core.surface.chain_iv import ChainIV
from spx_core.surface.surface import VolSurface

__all__ = ["DecisionEngine", "MarketContext", "decision_ref", "decisions_checksum"]

_NAN = math.nan
#: the MarketState fields a context reads (their "why missing" travels with it)
_CONTEXT_FIELDS = ("trend", "mixture_regime", "vix_bucket", "vix")


@dataclass(frozen=True, slots=True, eq=False)
class MarketContext:
    """The market state an entry decision reads.

    Attributes:
        snapshot: the SPX chain decided on (its ``time_ns`` must not be after the decision time).
        civ / surface: ``chain_iv(snapshot)`` and ``fit_surface(civ)`` (None: the engine computes them).
        iv_rank: IV rank (percent, 0-100; NaN unknown).
        vix: VIX level (index points; NaN unknown).
        regime: the regime names in force (a name or several: trend, mixture state, VIX bucket,
            e.g. ("range", "calm")); the VIX bucket follows from ``vix`` when not named.
        snapshot_id: the stored snapshot's id (None when not stored).
        spy_snapshot: the SPY chain (the SPX vs SPY pair needs it).
        unknown_why: (field, why it is unknown and how to fix it) for the market-state fields that are missing
            (``MarketState.why``), so a SKIP says e.g. "no SPX daily bars stored: import them" instead of "unknown".
    """

    snapshot: ChainSnapshot
    civ: ChainIV | None = None
    surface: VolSurface | None = None
    iv_rank: float = _NAN
    vix: float = _NAN
    regime: tuple[str, ...] = ()
    snapshot_id: int | None = None
    spy_snapshot: ChainSnapshot | None = None
    unknown_why: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "regime", normalize_regimes(self.regime))
        for name in ("iv_rank", "vix"):
            value = getattr(self, name)
            object.__setattr__(self, name, _NAN if value is None else float(value))

    @classmethod
    def from_state(cls, snapshot: ChainSnapshot, state: MarketState, *, civ: ChainIV | None = None,
                   surface: VolSurface | None = None, snapshot_id: int | None = None,
                   spy_snapshot: ChainSnapshot | None = None,
                   iv_rank_source: IVRankSource = IVRankSource.VIX) -> MarketContext:
        """The context of a :class:`~spx_core.analytics.market_state.MarketState` (the scanner panel's market
        filter reads the same one): IV rank from ``iv_rank_source``, VIX, and the trend, mixture and VIX-bucket
        regimes it names ("unknown" ones count as missing)."""
        regimes = [r for r in (state.trend, state.mixture_regime, state.vix_bucket) if r is not None]
        return cls(snapshot, civ, surface, iv_rank=getattr(state, iv_rank_source.field), vix=state.vix,
                   regime=tuple(r for r in normalize_regimes(regimes) if r != "unknown"),
                   snapshot_id=snapshot_id, spy_snapshot=spy_snapshot,
                   unknown_why=tuple((f, state.why(f)) for f in _CONTEXT_FIELDS if state.why(f))
                   + ((("iv_rank", state.why(iv_rank_source.field)),) if state.why(iv_rank_source.field) else ()))

    @property
    def time_ns(self) -> int:
        """The latest stamp of the data in the context (ns UTC)."""
        times = [self.snapshot.time_ns] + ([self.spy_snapshot.time_ns] if self.spy_snapshot is not None else [])
        return max(times)


def decision_ref(config: StrategyConfig, checksum: str, now_ns: int) -> str:
    """The order ref of an entry: deterministic in (config, snapshot, instant), shaped like ``new_ref()``."""
    digest = hashlib.sha256(f"{config.config_hash}|{checksum}|{int(now_ns)}".encode()).hexdigest()
    return "spx-" + digest[:20]


def decisions_checksum(decisions: Iterable[TradeDecision]) -> str:
    """sha256 over the decisions' records, in order (equal for equal decision logs)."""
    h = hashlib.sha256()
    for d in decisions:
        h.update(json.dumps(asdict(d), sort_keys=True, separators=(",", ":")).encode())
        h.update(b"\n")
    return h.hexdigest()


@dataclass(frozen=True, slots=True)
class _Pick:
    """The selected structure and what the reasons say about it."""

    structure: Structure
    max_loss: float  # index points per unit (NaN: unknown)
    figures: str


class DecisionEngine:
    """Entry decisions (see the module docstring). Stateless between calls; no clock.

    Args:
        profiles: limit profiles by name (default: the shipped :data:`PROFILES`; the app passes the stored ones).
        max_data_age_s: a chain older than this at the decision time (seconds of market clock) is not decided
            on (a SKIP saying so; None: no limit). The default is the gate's own limit, so the engine never
            sends an order the gate would refuse as priced on stale quotes.
    """

    def __init__(self, *, profiles: Mapping[str, LimitProfile] | None = None,
                 max_data_age_s: float | None = GateSettings().max_snapshot_age_s) -> None:
        if max_data_age_s is not None and not (math.isfinite(max_data_age_s) and max_data_age_s > 0):
            raise ValueError(f"max_data_age_s must be > 0 seconds or None, got {max_data_age_s!r}")
        self._profiles = PROFILES if profiles is None else profiles
        self._max_age_ns = None if max_data_age_s is None else int(max_data_age_s * 1e9)

    def decide(self, config: StrategyConfig, ctx: MarketContext, now_ns: int, *,
               state: PortfolioState | None = None) -> tuple[TradeDecision, OrderRequest | None]:
        """The decision of ``config`` at ``now_ns`` on ``ctx`` (and the order when it trades)."""
        snap = ctx.snapshot

        def skip(reasons: Sequence[str]) -> tuple[TradeDecision, None]:
            return TradeDecision(int(now_ns), config.name, Action.SKIP, tuple(reasons), ctx.snapshot_id,
                                 snap.checksum, config.config_hash, config.limit_profile), None

        if ctx.time_ns > now_ns:
            return skip([(f"data: the market context is stamped {from_ns(ctx.time_ns).isoformat()}, after the "
                         f"decision time {from_ns(now_ns).isoformat()}; decide on the latest snapshot at or "
                         f"before it")])
        stale = self._stale(ctx, now_ns, with_spy=config.is_pair)
        if stale:
            return skip(stale)
        failures = filter_failures(config.filters, iv_rank=ctx.iv_rank, vix=ctx.vix, regimes=ctx.regime,
                                   why=dict(ctx.unknown_why))
        profile = self._profiles.get(config.limit_profile)
        if profile is None:
            failures.append(f"limit profile {config.limit_profile!r} is not defined; pick one of: "
                            f"{', '.join(self._profiles)}")
        else:
            failures += profile_failures(profile, state)
        if failures:
            return skip(failures)
        pick, why = self._pair(config, ctx) if config.is_pair else self._scan(config, ctx, profile)
        if pick is None:
            return skip([why])
        quantity, sizing = _size(config, pick.max_loss)
        if quantity < 1:
            return skip([sizing])
        side, legs, limit, pricing = _price(config, pick.structure, snap, ctx.spy_snapshot)
        if limit is None:
            return skip([f"price: {pricing}"])
        ref = decision_ref(config, snap.checksum, now_ns)
        request = OrderRequest(ref=ref, legs=legs, side=side, quantity=quantity, order_type=OrderType.LMT,
                               limit=limit, snapshot_id=ctx.snapshot_id, snapshot_checksum=snap.checksum,
                               created_ns=int(now_ns), name=pick.structure.name, kind=pick.structure.kind.value,
                               intent=Intent.OPEN, source="automation")
        cash = "credit" if side is Side.SELL else "debit"
        reasons = ((f"entry: {side.value.upper()} {quantity} {pick.structure.name} for a {cash} of {limit:.2f} "
                   f"({pricing})"),
                   pick.figures, sizing)
        decision = TradeDecision(int(now_ns), config.name, Action.TRADE, reasons, ctx.snapshot_id, snap.checksum,
                                 config.config_hash, config.limit_profile, ref)
        return decision, request

    def _stale(self, ctx: MarketContext, now_ns: int, *, with_spy: bool) -> list[str]:
        """Why the chains the strategy prices on are too old ([] = fresh enough); SPY only for the pair."""
        if self._max_age_ns is None:
            return []
        chains = [("SPX", ctx.snapshot)] + ([("SPY", ctx.spy_snapshot)] if with_spy else [])
        return [f"data: the {name} chain is {(now_ns - snap.time_ns) / 1e9:.0f} s old at the decision time "
                f"(limit {self._max_age_ns / 1e9:g} s); decide on fresh quotes"
                for name, snap in chains if snap is not None and now_ns - snap.time_ns > self._max_age_ns]

    # --- selection -----------------------------------------------------------------------------------
    def _scan(self, config: StrategyConfig, ctx: MarketContext, profile: LimitProfile | None
              ) -> tuple[_Pick | None, str]:
        from spx_core.surface import (  # the fit stack loads only when a scan runs
            chain_iv,
            fit_surface,
        )

        civ = ctx.civ if ctx.civ is not None else chain_iv(ctx.snapshot)
        surface = ctx.surface if ctx.surface is not None else fit_surface(civ)
        result = scan(ctx.snapshot, civ, surface, config.scan_params)
        if not result.candidates:
            return None, f"scan: {result.reason or 'no candidate'}"
        min_dte = profile.min_entry_dte if profile is not None else None
        allowed = [c for c in result.candidates if min_dte is None or c.dte >= min_dte]
        if not allowed:
            return None, (f"scan: all {len(result.candidates)} best candidates expire within "
                          f"{min_dte} days, which limit profile {config.limit_profile!r} refuses "
                          f"(min_entry_dte); raise the DTE range")
        best = allowed[0]
        return _Pick(best.structure, best.max_loss, _figures(best, result.n_passed)), ""

    def _pair(self, config: StrategyConfig, ctx: MarketContext) -> tuple[_Pick | None, str]:
        pair, why = select_pair(ctx.snapshot, ctx.spy_snapshot, config.pair_params)
        if pair is None:
            return None, f"pair: {why}"
        return _Pick(pair.structure, _NAN, _pair_figures(pair, ctx.spy_snapshot)), ""


def _figures(c: Candidate, n_passed: int) -> str:
    pop = f"{c.pop * 100:.1f}%" if math.isfinite(c.pop) else "unknown"
    return (f"candidate: {c.dte} DTE, credit mid {c.credit_mid:.2f} / natural {c.credit_natural:.2f}, "
            f"width {c.width:g}, max loss {c.max_loss:.2f}, POP {pop}, EV {c.ev:.2f}, "
            f"edge {c.edge_volpts:.2f} vol pts, score {c.score:.4f} (best of {n_passed})")


def _pair_figures(p: PairCandidate, spy: ChainSnapshot | None) -> str:
    spy_sum = spy.checksum[:16] if spy is not None else "-"
    return (f"candidate: {p.dte} DTE, SPXW {p.spx_strike:g}C vs 10 SPY {p.spy_strike:g}C, debit mid "
            f"{p.debit_mid:.2f} / natural {p.debit_natural:.2f}, package spread {p.package_spread:.2f} "
            f"(SPY chain {spy_sum})")


def _size(config: StrategyConfig, max_loss_pts: float) -> tuple[int, str]:
    """(units, the sizing reason); 0 units with why when the budget buys none."""
    s = config.sizing
    if s.mode is SizingMode.FIXED:
        return s.quantity, f"size: {s.quantity} (fixed, cap {s.max_quantity})"
    per_unit = max_loss_pts * 100.0  # SPX multiplier: dollars per index point per unit
    if not (math.isfinite(per_unit) and per_unit > 0):
        return 0, "size: risk budget needs a known, positive max loss per unit; this candidate has none"
    units = min(math.floor(s.budget_usd / per_unit + 1e-9), s.max_quantity)
    if units < 1:
        return 0, (f"size: max loss {per_unit:,.0f} $ per unit is above the risk budget "
                   f"{s.budget_usd:,.0f} $; raise the budget or narrow the widths")
    return units, (f"size: {units} (risk budget {s.budget_usd:,.0f} $ / max loss {per_unit:,.0f} $ per unit, "
                   f"cap {s.max_quantity})")


def _quotes(legs: Sequence[Leg], spx: ChainSnapshot, spy: ChainSnapshot | None) -> tuple[np.ndarray, np.ndarray]:
    """Bid and ask of each leg (NaN where the leg is not listed in its chain)."""
    bid, ask = np.full(len(legs), np.nan), np.full(len(legs), np.nan)
    for snap in (spx, spy):
        if snap is None:
            continue
        rows = locate(snap, [leg.contract for leg in legs])
        found = rows >= 0
        bid[found] = snap.columns["bid"][rows[found]]
        ask[found] = snap.columns["ask"][rows[found]]
    return bid, ask


def _price(config: StrategyConfig, structure: Structure, spx: ChainSnapshot, spy: ChainSnapshot | None
           ) -> tuple[Side, tuple[Leg, ...], float | None, str]:
    """(side, legs, limit or None, how it was priced / why it could not be)."""
    legs = structure.legs
    bid, ask = _quotes(legs, spx, spy)
    if not (np.all(np.isfinite(bid)) and np.all(np.isfinite(ask))):
        return Side.BUY, legs, None, "a leg has no two-sided quote in the snapshot"
    mids = list(0.5 * (bid + ask))
    norm, side = normalize_side(legs, Side.BUY, mids)  # same legs in order, maybe negated: quotes stay aligned
    ratios = np.array([leg.ratio for leg in norm], dtype=float)
    mid = package_price(list(ratios), mids)
    # the natural of the package as written: BUY pays asks on + legs and bids on - legs; SELL the reverse
    pay = np.where(ratios > 0, ask, bid) if side is Side.BUY else np.where(ratios > 0, bid, ask)
    natural = float(ratios @ pay)
    sign = side.sign  # + for BUY: more is worse for us
    if config.price is PriceMode.NATURAL:
        raw, how, direction = natural, "natural", "up" if side is Side.BUY else "down"
    elif config.price is PriceMode.MID_OFFSET:
        moved = mid + sign * config.price_offset
        raw = min(moved, natural) if side is Side.BUY else max(moved, natural)
        how, direction = f"mid {mid:.3f} moved {config.price_offset:g} toward the natural {natural:.2f}", "nearest"
    else:
        raw, how, direction = mid, f"mid {mid:.3f}, natural {natural:.2f}", "nearest"
    combo = len(norm) > 1
    roots = {leg.contract.root for leg in norm}
    root = max(roots, key=lambda r: ticks.tick_size(abs(raw), combo=combo, root=r))
    limit = ticks.round_to_tick(raw, combo=combo, root=root, direction=direction)
    if not limit > 0:
        return side, norm, None, f"the package prices at {raw:.3f}, which rounds to {limit:.2f}; nothing to trade"
    return side, norm, limit, how
