"""A Python-loop reference of the spread scanner: one candidate at a time, plain floats, independent math.

Same selection rules as :func:`spx_core.strategies.scanner.scan` (documented there), different arithmetic:
strikes looked up in dicts, prices summed leg by leg, max loss by brute force over the structure's expiry
value (``Structure.expiry_value``) at every kink, POP and EV by the density's own Gauss-Legendre quadrature
(``RiskNeutralDensity.quadrature`` / ``expected``), fair values by this file's Black formula
(``tests.chains.black``) at ``ExpiryFit.iv`` called per leg. Used by the equality tests and the benchmark.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
from scipy.optimize import brentq

from spx_core.domain.calendar import ET
from spx_core.strategies.scanner_candidates import LEG_RATIOS
from spx_core.strategies.scanner_params import Fill, ScanParams, ScanStructure
from spx_core.strategies.scanner_scores import MIN_RISK, PROFIT_EPS
from spx_core.strategies.structure import Leg, Structure
from tests.chains import black


@dataclass
class RefCandidate:
    book: int
    rows: tuple[int, ...]
    width: float
    credit_mid: float
    credit_natural: float
    max_loss: float
    pop: float
    ev: float
    edge_usd: float
    edge_volpts: float
    score: float
    ev_slack: float = 0.0  # how far EV may differ from exact: the density's own mass defect x the largest payoff


def reference_scan(snapshot, civ, surface, params: ScanParams, densities: dict) -> list[RefCandidate]:
    """Every candidate passing the filters, best score first (ties by expiry, then rows)."""
    c = snapshot.columns
    today = snapshot.time.astimezone(ET).date()
    books = []
    for i, sl in enumerate(snapshot.expiries()):
        dte = (sl.expiry - today).days
        side = {True: {}, False: {}}
        for row in range(sl.start, sl.stop):
            side[bool(c["is_call"][row])][float(c["strike"][row])] = row
        books.append((i, sl, dte, side))
    out = []
    for i, sl, dte, side in books:
        if not (params.dte[0] <= dte <= params.dte[1]) or (params.dte_days and dte not in params.dte_days):
            continue
        if params.roots and sl.root not in params.roots:
            continue
        for rows, width in _candidates(params, civ, c, books, i, side):
            cand = _evaluate(snapshot, civ, surface, params, densities, i, rows, width)
            if cand is not None:
                out.append(cand)
    out.sort(key=lambda x: (-x.score, x.book, x.rows))
    return out


def _shorts(params, civ, side: dict) -> list[int]:
    rows = [r for _, r in sorted(side.items()) if math.isfinite(civ.delta[r])]
    spec = params.short_delta
    if isinstance(spec, tuple):
        return [r for r in rows if spec[0] <= abs(civ.delta[r]) <= spec[1]]
    if not rows:
        return []
    return [min(rows, key=lambda r: abs(abs(civ.delta[r]) - spec))]  # first of equals: the lower strike


def _candidates(params, civ, c, books, i, side):
    s = params.structure
    k = lambda r: float(c["strike"][r])
    if s in (ScanStructure.PUT_CREDIT_VERTICAL, ScanStructure.CALL_CREDIT_VERTICAL,
             ScanStructure.PUT_DEBIT_VERTICAL, ScanStructure.CALL_DEBIT_VERTICAL):
        is_call = s in (ScanStructure.CALL_CREDIT_VERTICAL, ScanStructure.CALL_DEBIT_VERTICAL)
        credit = s in (ScanStructure.PUT_CREDIT_VERTICAL, ScanStructure.CALL_CREDIT_VERTICAL)
        away = (1 if is_call else -1) * (1 if credit else -1)
        for short in _shorts(params, civ, side[is_call]):
            for w in params.widths:
                long_ = side[is_call].get(k(short) + away * w)
                if long_ is not None:
                    yield ((short, long_) if credit else (long_, short)), w
    elif s is ScanStructure.IRON_CONDOR:
        for sp in _shorts(params, civ, side[False]):
            for sc in _shorts(params, civ, side[True]):
                if k(sp) >= k(sc):
                    continue
                for w in params.widths:
                    lp, lc = side[False].get(k(sp) - w), side[True].get(k(sc) + w)
                    if lp is not None and lc is not None:
                        yield (lp, sp, sc, lc), w
    elif s is ScanStructure.IRON_BUTTERFLY:
        for sc in _shorts(params, civ, side[True]):
            for w in params.widths:
                legs = (side[False].get(k(sc) - w), side[False].get(k(sc)), sc, side[True].get(k(sc) + w))
                if None not in legs:
                    yield legs, w
    elif s in (ScanStructure.BUTTERFLY, ScanStructure.BWB):
        skips = params.skips if s is ScanStructure.BWB else (0.0,)
        for is_call in (False, True):
            for body in _shorts(params, civ, side[is_call]):
                for w in params.widths:
                    for skip in skips:
                        lo_w, hi_w = (w, w + skip) if is_call else (w + skip, w)
                        legs = (side[is_call].get(k(body) - lo_w), body, side[is_call].get(k(body) + hi_w))
                        if None not in legs:
                            yield legs, w
    elif s is ScanStructure.CALENDAR:
        _, near_sl, near_dte, near_side = books[i]
        for _, far_sl, far_dte, far_side in books:
            if far_sl.root is not near_sl.root or not params.calendar_gap[0] <= far_dte - near_dte <= params.calendar_gap[1]:
                continue
            for is_call in (False, True):
                for near in _shorts(params, civ, near_side[is_call]):
                    far = far_side[is_call].get(k(near))
                    if far is not None:
                        yield (near, far), float("nan")


def _evaluate(snapshot, civ, surface, params, densities, book, rows, width):
    c = snapshot.columns
    ratios = LEG_RATIOS[params.structure]
    bid = [float(c["bid"][r]) for r in rows]
    ask = [float(c["ask"][r]) for r in rows]
    if not all(math.isfinite(b) and math.isfinite(a) and b >= 0 for b, a in zip(bid, ask, strict=True)):
        return None
    if not params.allow_flagged and any(int(c["flags"][r]) for r in rows):
        return None
    if any(int(c["open_interest"][r]) < params.min_open_interest for r in rows):
        return None
    spreads = [a - b for b, a in zip(bid, ask, strict=True)]
    if params.max_leg_spread is not None and max(spreads) > params.max_leg_spread:
        return None
    if params.max_package_spread is not None and sum(
            abs(q) * s for q, s in zip(ratios, spreads, strict=True)) > params.max_package_spread:
        return None
    natural = 0.0
    for q, b in zip(ratios, bid, strict=True):
        natural += -q * b if q < 0 else 0.0
    buy = 0.0
    for q, a in zip(ratios, ask, strict=True):
        buy += q * a if q > 0 else 0.0
    natural -= buy
    mid = -sum(q * 0.5 * (b + a) for q, b, a in zip(ratios, bid, ask, strict=True))
    cost = mid if params.fill is Fill.MID else natural
    fits = [surface.by_expiry(snapshot.contract(r).root, snapshot.contract(r).expiry) for r in rows]
    iv_fit = [float(f.iv(np.array([civ.k[r]]))[0]) if f is not None and f.fitted else float("nan")
              for f, r in zip(fits, rows, strict=True)]
    fair = [float(black(civ.forward[r], c["strike"][r], civ.t[r], v, civ.discount[r], bool(c["is_call"][r])))
            for r, v in zip(rows, iv_fit, strict=True)]
    edge_pts = mid + sum(q * f for q, f in zip(ratios, fair, strict=True))
    wv = [q * civ.vega[r] for q, r in zip(ratios, rows, strict=True)]
    edge_volpts = 100 * -sum(w * (civ.iv_mid[r] - v) for w, r, v in zip(wv, rows, iv_fit, strict=True)) / sum(
        abs(w) for w in wv)
    structure = Structure(tuple(Leg(snapshot.contract(r), q) for r, q in zip(rows, ratios, strict=True)))
    density = densities.get((snapshot.contract(rows[0]).root, snapshot.contract(rows[0]).expiry))
    if params.structure is ScanStructure.CALENDAR:
        max_loss, pop, ev = _calendar(civ, c, rows, ratios, iv_fit, cost, density)
        slack = 0.0
    else:
        max_loss, pop, ev, slack = _single_expiry(structure, cost, density)
    cpw = mid / width if width > 0 else float("nan")
    if params.min_credit_per_width is not None and not cpw >= params.min_credit_per_width:
        return None
    if params.min_pop is not None and not pop >= params.min_pop:
        return None
    w = params.weights
    terms = ((w.ev, ev), (w.ev_per_max_loss, ev / max(max_loss, MIN_RISK)), (w.pop, pop),
             (w.credit_per_width, cpw), (w.edge_usd, 100 * edge_pts), (w.edge_volpts, edge_volpts))
    score = sum(wt * x for wt, x in terms if wt and math.isfinite(x))
    return RefCandidate(book, tuple(rows), width, mid, natural, max_loss, pop, ev, 100 * edge_pts, edge_volpts, score,
                        slack)


def _single_expiry(structure: Structure, cost: float, density):
    strikes = sorted({leg.contract.strike for leg in structure.legs})
    probe = np.array([0.0, *strikes, 10 * strikes[-1]])
    pnl = structure.expiry_value(probe) / 100.0 + cost
    beyond = pnl[-1] - pnl[-2]
    max_loss = math.inf if beyond < 0 else max(0.0, -float(pnl[:-1].min()))
    if density is None or not density.ok:
        return max_loss, float("nan"), float("nan"), 0.0

    def profit(s):
        return structure.expiry_value(np.asarray(s, dtype=float)) / 100.0 + cost - PROFIT_EPS

    # Breakevens by root finding between the probes; then the profitable pieces between consecutive
    # points (0, kinks, breakevens, infinity) are read off their midpoints and measured with the exact CDF.
    ends = profit(probe)
    breakevens = [brentq(profit, lo, hi) for lo, hi, a, b in zip(probe[:-1], probe[1:], ends[:-1], ends[1:],
                                                                   strict=True) if (a > 0) != (b > 0)]
    points = sorted({0.0, *strikes, *breakevens})
    pop = 0.0
    for lo, hi in zip(points, [*points[1:], math.inf], strict=True):
        probe_at = 0.5 * (lo + hi) if math.isfinite(hi) else lo + 1.0 + 100 * abs(float(profit(lo)))
        if profit(probe_at) > 0:
            upper = 1.0 if math.isinf(hi) else float(density.prob_below(hi))
            pop += upper - (float(density.prob_below(lo)) if lo > 0 else 0.0)
    ev = density.expected(lambda s: structure.expiry_value(s) / 100.0, kinks=strikes) + cost
    _, weights = density.quadrature(strikes)
    slack = abs(float(weights.sum()) - 1.0) * float(np.abs(structure.expiry_value(probe[:-1]) / 100.0).max())
    return max_loss, pop, ev, slack


def _calendar(civ, c, rows, ratios, iv_fit, cost, density):
    if density is None or not density.ok:
        return float("nan"), float("nan"), float("nan")
    near, far = rows
    k = float(c["strike"][near])
    nodes, weights = density.quadrature([k])
    order = np.argsort(nodes)
    nodes, weights = nodes[order], weights[order]
    value = black(nodes * civ.forward[far] / civ.forward[near], c["strike"][far], civ.t[far] - civ.t[near],
                  iv_fit[1], civ.discount[far] / civ.discount[near], bool(c["is_call"][far]))
    intrinsic = np.maximum(nodes - k, 0.0) if c["is_call"][near] else np.maximum(k - nodes, 0.0)
    pnl = ratios[0] * intrinsic + ratios[1] * value + cost
    cum = np.cumsum(weights)
    core = (cum >= 1e-9) & (cum <= cum[-1] - 1e-9)
    max_loss, ev = max(0.0, -float(pnl[core].min())), float(pnl @ weights)

    def profit(s):
        v = black(s * civ.forward[far] / civ.forward[near], c["strike"][far], civ.t[far] - civ.t[near], iv_fit[1],
                  civ.discount[far] / civ.discount[near], bool(c["is_call"][far]))
        return float(ratios[0] * (max(s - k, 0.0) if c["is_call"][near] else max(k - s, 0.0)) + ratios[1] * v
                     + cost - PROFIT_EPS)

    # POP: the breakevens by root finding, then the density's exact CDF between them.
    edges = [float(nodes[0])]
    sign = profit(nodes[0]) > 0
    for lo, hi, v in zip(nodes[:-1], nodes[1:], pnl[1:] - PROFIT_EPS, strict=True):
        if (v > 0) != sign:
            edges.append(brentq(profit, lo, hi))
            sign = v > 0
    edges.append(float(nodes[-1]))
    below = density.prob_below(np.array(edges))
    first = profit(nodes[0]) > 0
    pop = sum(float(below[i + 1] - below[i]) for i in range(len(edges) - 1) if (i % 2 == 0) == first)
    return max_loss, pop, ev


# --- chains the scanner tests share (computed once per process) ----------------------------------------------
@dataclass(frozen=True)
class Fitted:
    """A chain with its IVs, fitted surface and risk-neutral densities."""

    snap: object
    civ: object
    surface: object
    densities: dict


def fit_all(snap) -> Fitted:
    from spx_core.surface import chain_iv, fit_surface
    from spx_core.surface.density import surface_densities

    civ = chain_iv(snap)
    surface = fit_surface(civ)
    return Fitted(snap, civ, surface, surface_densities(surface))


@functools.cache
def realistic() -> Fitted:
    """tests.chains.realistic_chain: 8 expiries (DTE 1..407), 250 strikes each, SPX tick grid, sizes and OI."""
    from tests.chains import realistic_chain

    return fit_all(realistic_chain(n_quotes=4000, seed=5))


@functools.cache
def synthetic() -> Fitted:
    """tests.chains.make_chain: 5 expiries with an equity skew and noisy mids."""
    from tests.chains import make_chain

    return fit_all(make_chain(n_expiries=5, noise=0.3, seed=2)[0])
