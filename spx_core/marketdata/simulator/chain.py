"""What the simulated SPX lists: expiries from the calendar's listing rules and a strike grid.

The layout (rows in :class:`~spx_core.domain.snapshot.ChainSnapshot` canonical order) is fixed for
a session: strikes are chosen at listing time from the forward and a reference vol, the way the
exchange lists them each morning. Static per-row arrays (liquidity weights, round-strike bonus,
expiry index) are computed once here so a tick only does arithmetic.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

import numpy as np

from spx_core.domain.calendar import ET, YEAR_SECONDS, MarketCalendar, to_ns
from spx_core.domain.contracts import ROOTS, Root, settlement_for_root
from spx_core.marketdata.simulator.config import StrikeParams

__all__ = ["ChainLayout", "list_chain", "strike_grid", "contract_keys"]

_ROOT_CODE = {r: np.uint8(i) for i, r in enumerate(ROOTS)}


@dataclass(frozen=True, slots=True, eq=False)
class ChainLayout:
    """Rows of the listed chain and their static properties.

    Per expiry (length E, canonical order): ``exp_root`` (uint8 codes), ``exp_date``
    (datetime64[D]), ``exp_instant_ns`` (int64), ``exp_start``/``exp_stop`` (row ranges).
    Per row (length N): ``root``, ``expiry``, ``strike``, ``is_call``, ``exp_index`` (into the per-
    expiry arrays), ``roundness`` (1, 1.5, 2 or 3 for 5/25/50/100-multiples), ``key`` (int64 contract
    key, stable across layouts), ``listed_ns`` (the listing instant).
    """

    exp_root: np.ndarray
    exp_date: np.ndarray
    exp_instant_ns: np.ndarray
    exp_start: np.ndarray
    exp_stop: np.ndarray
    root: np.ndarray
    expiry: np.ndarray
    strike: np.ndarray
    is_call: np.ndarray
    exp_index: np.ndarray
    roundness: np.ndarray
    key: np.ndarray
    listed_ns: int

    def __len__(self) -> int:
        return len(self.strike)

    @property
    def n_expiries(self) -> int:
        return len(self.exp_date)


def strike_grid(*, forward: float, t: float, days: float, params: StrikeParams) -> np.ndarray:
    """Listed strikes (index points, ascending) for one expiry with forward ``forward`` and ``t`` years."""
    s = params.sigma_ref * math.sqrt(max(t, params.min_t))
    bands = [(25.0, params.mid_sd, params.mid_count), (50.0, params.wide_sd, params.wide_count),
             (100.0, params.put_tail_sd, params.tail_count)]
    if days <= params.fine_max_days:
        bands.insert(0, (5.0, params.fine_sd, params.fine_count))
    floor = params.max_put_moneyness * forward
    parts = []
    down = up = 0.0  # distance (index points) from the forward already covered on each side
    for step, sd, count in bands:
        reach_down = forward * -math.expm1(-sd * s)
        reach_up = forward * math.expm1(min(sd, params.call_tail_sd) * s)
        new_down = max(down, min(reach_down, down + count * step))
        new_up = max(up, min(reach_up, up + count * step))
        lo, hi = max(forward - new_down, floor), forward + new_up
        first, last = math.ceil(lo / step - 1e-9), math.floor(hi / step + 1e-9)
        if last >= first:
            parts.append(np.arange(first, last + 1, dtype=np.float64) * step)
        down, up = new_down, new_up
    grid = np.unique(np.concatenate(parts)) if parts else np.zeros(0)
    if len(grid) < 2:  # always list at least the two strikes around the forward
        grid = np.unique(np.r_[grid, math.floor(forward / 5) * 5.0, math.ceil(forward / 5 + 1e-9) * 5.0])
    return grid


def _listed_strikes(layout: ChainLayout) -> dict[tuple[int, int], np.ndarray]:
    """(root code, expiry in days since the epoch) -> the strikes ``layout`` lists for it (a call and a put row
    per strike)."""
    days = layout.exp_date.astype(np.int64).tolist()
    return {(int(r), d): layout.strike[a:b:2]
            for r, d, a, b in zip(layout.exp_root, days, layout.exp_start, layout.exp_stop, strict=True)}


def contract_keys(*, expiry: np.ndarray, root: np.ndarray, strike: np.ndarray, is_call: np.ndarray) -> np.ndarray:
    """A stable int64 key per contract (to carry open interest across relistings)."""
    days = np.asarray(expiry, dtype="datetime64[D]").astype(np.int64)
    milli = np.rint(np.asarray(strike) * 1000).astype(np.int64)
    return ((days * 4 + root.astype(np.int64)) << 28 | milli) << 1 | is_call.astype(np.int64)


def list_chain(*, now: datetime, spot: float, carry: float, calendar: MarketCalendar,
               params: StrikeParams, previous: ChainLayout | None = None) -> ChainLayout:
    """The chain listed at ``now`` for an index at ``spot`` with ``carry = r - q`` (1/year).

    Expiries are ``calendar.listed_expiries(now's ET date)`` whose expiry instant is after ``now``. An expiry
    of the ``previous`` listing keeps its strikes within ``fine_sd`` standard deviations of the new forward: as on
    the exchange, a strike once listed trades until it expires, so a position held over days keeps its quote when
    the index moves (a 5-point strike now in the 25-point band stays). Strikes further out (deep in or out of the
    money after a large move) are let go, which bounds the chain's growth.
    """
    now_ns = to_ns(now)
    asof = now.astimezone(ET).date()
    kept = _listed_strikes(previous) if previous is not None else {}
    exp_root, exp_date, exp_inst, strikes_per = [], [], [], []
    for root, expiry in calendar.listed_expiries(asof):
        inst = to_ns(calendar.expiry_instant(expiry, settlement_for_root(root)))
        if inst <= now_ns:
            continue
        t = (inst - now_ns) / 1e9 / YEAR_SECONDS
        forward = spot * math.exp(carry * t)
        grid = strike_grid(forward=forward, t=t, days=(expiry - asof).days, params=params)
        old = kept.get((int(_ROOT_CODE[Root(root)]), int(np.datetime64(expiry, "D").astype(np.int64))))
        if old is not None:  # the old strikes within fine_sd of the forward (beyond: deep, rarely held)
            reach = params.fine_sd * params.sigma_ref * math.sqrt(max(t, params.min_t))
            grid = np.union1d(grid, old[np.abs(np.log(old / forward)) <= reach])
        exp_root.append(_ROOT_CODE[Root(root)])
        exp_date.append(np.datetime64(expiry, "D"))
        exp_inst.append(inst)
        strikes_per.append(grid)
    counts = np.array([2 * len(g) for g in strikes_per], dtype=np.int64)
    stops = np.cumsum(counts)
    starts = stops - counts
    exp_index = np.repeat(np.arange(len(counts)), counts)
    strike = np.repeat(np.concatenate(strikes_per) if strikes_per else np.zeros(0), 2)
    is_call = np.tile(np.array([True, False]), int(counts.sum()) // 2)
    exp_root_a = np.array(exp_root, dtype=np.uint8)
    exp_date_a = np.array(exp_date, dtype="datetime64[D]")
    root = exp_root_a[exp_index]
    expiry = exp_date_a[exp_index]
    roundness = np.select([strike % 100 == 0, strike % 50 == 0, strike % 25 == 0], [3.0, 2.0, 1.5], 1.0)
    return ChainLayout(
        exp_root=exp_root_a, exp_date=exp_date_a, exp_instant_ns=np.array(exp_inst, dtype=np.int64),
        exp_start=starts, exp_stop=stops, root=root, expiry=expiry, strike=strike, is_call=is_call,
        exp_index=exp_index, roundness=roundness,
        key=contract_keys(expiry=expiry, root=root, strike=strike, is_call=is_call), listed_ns=now_ns)

