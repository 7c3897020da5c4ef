"""The spread scanner: every candidate of one structure over one snapshot, priced, filtered and scored.

``scan(snapshot, civ, surface, params)`` takes a chain, its IVs (:func:`spx_core.surface.chain_iv`) and its
fitted surface (:func:`spx_core.surface.fit_surface`) and, for every listed expiry whose DTE (counted from
the snapshot's own date, 0DTE included) is in range:

1. builds the candidates as index arrays of snapshot rows (:mod:`scanner_candidates`): short strikes by
   absolute delta (the one nearest a target per expiry and side, or all inside a range), wings by width;
2. prices them (:mod:`scanner_scores`): net mid and natural credit (short bid - long ask, exactly), the
   package's bid/ask width, max loss, POP and EV under the risk-neutral density implied by the fitted
   surface (:mod:`spx_core.surface.density`: its closed-form CDF, batched over expiries by
   :mod:`scanner_surface`; calendars integrate over the density itself), and the edge of the market mid
   against the surface's fair value (Black-76 at ``ExpiryFit.iv(ln K/F)``) in dollars and in vol points;
3. filters them, counting what each filter removed so an empty result says which filter emptied it;
4. scores them with the user's :class:`ScoreWeights`, sorts best first and builds a real
   :class:`~spx_core.strategies.structure.Structure` for the best ``params.top``.

Every step is vectorized over all candidates; Python loops run per expiry (and per width) only.
Nothing here reads the wall clock: the same snapshot and parameters give the same result.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from datetime import date

import numpy as np

from spx_core.domain.contracts import Root
from spx_core.domain.quotes import describe_flags
from spx_core.domain.snapshot import ChainSnapshot
from spx_core.pricing import black76
from spx_core.strategies.scanner_candidates import (
    Book,
    Candidates,
    books_of,
    generate,
    snapshot_date,
)
from spx_core.strategies.scanner_params import (
    PRESETS,
    Fill,
    ScanParams,
    ScanParamsError,
    ScanStructure,
    ScoreWeights,
    params_for,
)
from spx_core.strategies.scanner_result import Candidate, ScanResult, ScanTable
from spx_core.strategies.scanner_scores import (
    RowData,
    calendar_odds,
    edge,
    expiry_odds,
    prices,
    score,
    score_terms,
)
from spx_core.strategies.scanner_surface import ServedSlices
from spx_core.surface.chain_iv import ChainIV
from spx_core.surface.surface import VolSurface

__all__ = [
    "PRESETS",
    "Candidate",
    "Fill",
    "ScanError",
    "ScanParams",
    "ScanParamsError",
    "ScanResult",
    "ScanStructure",
    "ScanTable",
    "ScoreWeights",
    "params_for",
    "row_data",
    "scan",
    "with_fit",
]


#: Most candidates one scan evaluates: the payoff arrays take ~500 bytes per candidate (an iron condor with
#: both delta ranges wide over every expiry can reach millions; the verticals of a whole chain are ~50k).
MAX_CANDIDATES = 2_000_000


class ScanError(ValueError):
    """The scan's inputs do not belong together (IVs or surface of another snapshot)."""


def scan(snapshot: ChainSnapshot, civ: ChainIV, surface: VolSurface, params: ScanParams, *,
         densities: Mapping[tuple[Root, date], object] | None = None) -> ScanResult:
    """Scan ``snapshot`` for ``params.structure``; see the module docstring.

    Args:
        civ: ``chain_iv(snapshot)``.
        surface: ``fit_surface(civ)``.
        densities: risk-neutral densities by (root, expiry) already computed for this surface; calendars
            integrate over them (the scan computes the ones it needs that are missing, with ``expiry_density``).
            Single-expiry structures need no density object: their POP uses the same closed-form CDF of the
            served slices, batched over every expiry (:class:`~scanner_surface.ServedSlices`).

    Raises:
        ScanError: ``civ`` or ``surface`` was computed from another snapshot.
    """
    _check_inputs(snapshot, civ, surface)
    all_books = books_of(snapshot)
    books = [b for b in all_books if params.allows_dte(b.dte) and (not params.roots or b.root in params.roots)]
    empty = {"params": params, "snapshot_checksum": snapshot.checksum, "time_ns": snapshot.time_ns,
             "candidates": [], "table": None, "n_expiries": len(books)}
    if not books:
        return ScanResult(**empty, n_considered=0, reason=_no_expiry_reason(snapshot, all_books, params))
    data = row_data(snapshot, civ)
    cands = generate(params, books, all_books, strike=data.strike, abs_delta=data.abs_delta)
    if not len(cands):
        return ScanResult(**empty, n_considered=0, reason=_no_candidate_reason(params, books))
    if len(cands) > MAX_CANDIDATES:
        return ScanResult(**empty, n_considered=len(cands), reason=(
            f"{len(cands):,} candidates is more than one scan evaluates ({MAX_CANDIDATES:,}: ~1 GB of arrays); "
            f"narrow the short delta range, the widths or the DTE range"))
    removed, keep, reason = _run_filters(_quote_filters(params, cands, data), len(cands))
    table, densities_used = None, {}
    if keep.any():
        kept = cands.take(keep)
        slices = ServedSlices(surface, [_fit_of(surface, b) for b in all_books])
        data = with_fit(data, slices, kept.rows.ravel())
        table, densities_used, mid_only = _evaluate(kept, data, slices, surface, params, books, densities)
        steps = _metric_filters(params, table, mid_only)
        more, keep2, reason = _run_filters(steps, len(table))
        removed += more
        table = table.take(keep2) if keep2.any() else None
    if table is None:
        return ScanResult(**empty, n_considered=len(cands), removed=removed, reason=reason)
    expiry_of = {b.index: b.expiry for b in all_books}
    top = [table.candidate(i, snapshot, params.structure, expiry_of[int(table.candidates.book[i])])
           for i in range(min(params.top, len(table)))]
    return ScanResult(params, snapshot.checksum, snapshot.time_ns, top, table, len(books), len(cands), removed,
                      "", densities_used)


# --- inputs ----------------------------------------------------------------------------------------------
def _check_inputs(snapshot: ChainSnapshot, civ: ChainIV, surface: VolSurface) -> None:
    if civ.snapshot is not snapshot and civ.snapshot.checksum != snapshot.checksum:
        raise ScanError("the ChainIV was computed from another snapshot; pass chain_iv(snapshot)")
    if surface.snapshot_checksum != snapshot.checksum:
        raise ScanError("the surface was fitted to another snapshot; pass fit_surface(chain_iv(snapshot))")


def row_data(snapshot: ChainSnapshot, civ: ChainIV) -> RowData:
    """Per-row inputs of the scores; the fitted IVs and fair values are NaN until :func:`with_fit` fills them."""
    c = snapshot.columns
    nan = np.full(len(snapshot), np.nan)
    return RowData(strike=c["strike"], is_call=c["is_call"], bid=c["bid"], ask=c["ask"],
                   open_interest=c["open_interest"], flags=c["flags"], abs_delta=np.abs(civ.delta),
                   iv_mid=civ.iv_mid, vega=civ.vega, t=civ.t, forward=civ.forward, discount=civ.discount,
                   k=civ.k, book=civ.expiry_index, iv_fit=nan, fair=nan.copy())


def with_fit(data: RowData, slices: ServedSlices, rows: np.ndarray) -> RowData:
    """``data`` with the fitted IV and Black-76 fair value of ``rows`` (the legs the scan prices).

    The fitted IV is the expiry's served slice at k = ln(K/F), i.e. ``ExpiryFit.iv(k)``, for every row of
    every expiry in one batch; rows of expiries the surface did not fit stay NaN.
    """
    rows = np.unique(rows)
    iv_fit = data.iv_fit.copy()
    iv_fit[rows] = slices.iv(data.book[rows], data.k[rows])
    fair = data.fair.copy()
    ok = rows[np.isfinite(iv_fit[rows]) & (data.t[rows] > 0)]
    fair[ok] = black76.price(forward=data.forward[ok], strike=data.strike[ok], t=data.t[ok], vol=iv_fit[ok],
                             discount=data.discount[ok], is_call=data.is_call[ok])
    return dataclasses.replace(data, iv_fit=iv_fit, fair=fair)


def _fit_of(surface: VolSurface, book: Book):
    fits = surface.expiries
    fit = fits[book.index] if book.index < len(fits) else None
    if fit is None or (fit.root, fit.expiry) != (book.root, book.expiry):
        fit = surface.by_expiry(book.root, book.expiry)
    return fit if fit is not None and fit.fitted else None


# --- filters ---------------------------------------------------------------------------------------------
Step = tuple[str, Callable[[], np.ndarray], str]  # (name, mask of candidates kept, why they go)


def _quote_filters(params: ScanParams, c: Candidates, d: RowData) -> list[Step]:
    bid, ask = d.bid[c.rows], d.ask[c.rows]
    spread = ask - bid
    steps: list[Step] = [(
        "two-sided quotes", lambda: np.all(np.isfinite(bid) & np.isfinite(ask) & (bid >= 0), axis=1),
        "a leg has no bid or no ask")]
    if not params.allow_flagged:
        flags = d.flags[c.rows]
        seen = int(np.bitwise_or.reduce(flags.ravel())) if flags.size else 0
        steps.append(("quote flags", lambda: np.all(flags == 0, axis=1),
                      f"a leg's quote is flagged ({describe_flags(seen)}); allow flagged quotes to keep them"))
    if params.min_open_interest > 0:
        steps.append(("open interest", lambda: np.all(d.open_interest[c.rows] >= params.min_open_interest, axis=1),
                      f"a leg has open interest below {params.min_open_interest}"))
    if params.max_leg_spread is not None:
        steps.append(("leg spread", lambda: np.all(spread <= params.max_leg_spread, axis=1),
                      f"a leg's bid/ask spread is wider than {params.max_leg_spread:g} points"))
    if params.max_package_spread is not None:
        steps.append(("package spread",
                      lambda: spread @ np.abs(c.ratios).astype(np.float64) <= params.max_package_spread,
                      f"the package's bid/ask spread is wider than {params.max_package_spread:g} points"))
    return steps


def _metric_filters(params: ScanParams, t: ScanTable, mid_only: np.ndarray) -> list[Step]:
    # Always on: a package that cannot lose at its mid but can at the natural is an arbitrage inside the
    # quotes' spread only (stale or after-hours quotes: a long fly "for a credit"); its max loss of 0 and POP
    # of 100% would top every ranking, yet nobody fills it there. An arbitrage at the natural stays.
    steps: list[Step] = [("riskless only at mid", lambda: ~mid_only,
                          ("it cannot lose at the mid but can at the natural price (the legs' mids are "
                           "inconsistent, e.g. stale after-hours quotes); scan a snapshot with live quotes"))]
    if params.min_credit_per_width is not None:
        steps.append(("credit/width", lambda: t.credit_per_width >= params.min_credit_per_width,
                      f"credit/width is below {params.min_credit_per_width:g} (or the structure has no width)"))
    if params.min_pop is not None:
        steps.append(("POP", lambda: t.pop >= params.min_pop,
                      f"POP is below {params.min_pop:g} (or unknown: no density for the expiry)"))
    return steps


def _run_filters(steps: list[Step], n: int) -> tuple[tuple[tuple[str, int], ...], np.ndarray, str]:
    """Apply ``steps`` in order; (removed counts, kept mask, reason when nothing is left)."""
    keep = np.ones(n, dtype=bool)
    removed = []
    for name, mask, why in steps:
        before = int(keep.sum())
        with np.errstate(invalid="ignore"):
            keep &= mask()
        removed.append((name, before - int(keep.sum())))
        if not keep.any():
            return tuple(removed), keep, f"the {name} filter removed all {before} remaining candidates: {why}"
    return tuple(removed), keep, ""


# --- evaluation ------------------------------------------------------------------------------------------
def _evaluate(c: Candidates, data: RowData, slices: ServedSlices, surface: VolSurface, params: ScanParams,
              books: list[Book], densities) -> tuple[ScanTable, dict, np.ndarray]:
    """The scored table, best first; the densities used; per table row, riskless at the fill price only."""
    p = prices(c, data)
    cost = p.credit_mid if params.fill is Fill.MID else p.credit_natural
    used: dict = {}
    if params.structure is ScanStructure.CALENDAR:  # valued on the near density's quadrature
        scanned = set(np.unique(c.book).tolist())
        by_book, used = _densities(surface, [b for b in books if b.index in scanned], densities)

        def odds_of(cc: Candidates, credit: np.ndarray):
            return calendar_odds(cc, data, by_book, credit)
    else:
        def odds_of(cc: Candidates, credit: np.ndarray):
            return expiry_odds(cc, data, slices, credit)
    odds = odds_of(c, cost)
    # the few riskless at the fill price: can they lose at the natural? (same payoff, a smaller credit)
    mid_only = np.zeros(len(c), dtype=bool)
    riskless = np.flatnonzero((odds.max_loss <= 0) & (cost > p.credit_natural))
    if len(riskless):
        mid_only[riskless] = odds_of(c.take(riskless), p.credit_natural[riskless]).max_loss > 0
    edge_pts, edge_volpts = edge(c, data, p.credit_mid)
    terms = score_terms(credit_mid=p.credit_mid, width=c.width, max_loss=odds.max_loss, pop=odds.pop, ev=odds.ev,
                        edge_usd=100.0 * edge_pts, edge_volpts=edge_volpts)
    total = score(terms, params.weights)
    dte_of = np.zeros(max(b.index for b in books) + 1, dtype=np.int64)
    for b in books:
        dte_of[b.index] = b.dte
    # Best first; ties broken by expiry then strikes so the order never depends on generation order.
    order = np.lexsort(tuple(c.rows.T[::-1]) + (c.book, -np.nan_to_num(total, nan=-np.inf)))
    table = ScanTable(c, dte_of[c.book], p.credit_mid, p.credit_natural, p.package_spread, odds.max_loss,
                      odds.pop, odds.ev, terms["ev_per_max_loss"], 100.0 * edge_pts, edge_volpts,
                      terms["credit_per_width"], total)
    return table.take(order), used, mid_only[order]


def _densities(surface: VolSurface, books: list[Book], given) -> tuple[dict[int, object], dict]:
    """Per book index: its risk-neutral density (given, else computed from the fitted slice); None where the
    surface has no fitted slice. Also the densities by (root, expiry), for the caller to reuse."""
    from spx_core.surface.density import (
        expiry_density,  # the probability layer (imports scipy)
    )

    by_book: dict[int, object] = {}
    by_key = {}
    for book in books:
        key = (book.root, book.expiry)
        density = (given or {}).get(key)
        if density is None:
            fit = _fit_of(surface, book)
            density = None if fit is None else expiry_density(surface, fit)
        by_book[book.index] = density
        if density is not None:
            by_key[key] = density
    return by_book, by_key


# --- empty results explained -------------------------------------------------------------------------------
def _no_expiry_reason(snapshot: ChainSnapshot, books: list[Book], params: ScanParams) -> str:
    roots = [b for b in books if not params.roots or b.root in params.roots]
    listed = sorted({b.dte for b in roots})
    shown = ", ".join(str(d) for d in listed[:12]) + (", ..." if len(listed) > 12 else "")
    only = f" (only {'/'.join(map(str, params.dte_days))})" if params.dte_days else ""  # "3/5/7", not a tuple
    want = f"{params.dte[0]}-{params.dte[1]}{only}"
    root_text = "/".join(r.value for r in params.roots) + " " if params.roots else ""
    return (f"no listed {root_text}expiry has DTE {want} on {snapshot_date(snapshot)}; listed DTEs: "
            f"{shown or 'none'}; widen the DTE range")


def _no_candidate_reason(params: ScanParams, books: list[Book]) -> str:
    delta = params.short_delta
    what = (f"|delta| in {delta[0]:g}-{delta[1]:g}" if isinstance(delta, tuple) else f"a delta near {delta:g}")
    wings = "" if params.structure is ScanStructure.CALENDAR else (
        f" with a strike listed {', '.join(f'{w:g}' for w in params.widths)} points away")
    if params.structure is ScanStructure.CALENDAR:
        wings = f" with the same strike listed {params.calendar_gap[0]}-{params.calendar_gap[1]} days later"
    return (f"no {params.structure.value} in the {len(books)} expiries scanned: no short strike with {what}"
            f"{wings}; widen the delta range or try other widths")
