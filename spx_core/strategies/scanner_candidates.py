"""Candidate generation for the spread scanner: index arrays of snapshot rows, one column per leg.

A scan of one structure yields a :class:`Candidates` block: ``rows[i, j]`` is the snapshot row of leg
``j`` of candidate ``i``, with the structure's fixed signed ``ratios[j]``. Each right's rows over all the
scanned expiries are keyed ``expiry index x 1e6 + strike`` (ascending: the snapshot's canonical order), so
one ``searchsorted`` finds the wing of every (short strike, width) of every expiry at once; Python loops run
per expiry only where a structure pairs strikes per expiry (condor puts x calls, calendar expiry pairs),
never per candidate. Every later step (prices, payoff, probability, scores) gathers leg columns through
``rows`` in one vectorized pass.

Leg order is the order a ticket reads: credit verticals short then long, debit verticals long then
short, condors and flies by ascending strike, calendars near (short) then far (long).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np

from spx_core.domain.calendar import ET
from spx_core.domain.contracts import Root
from spx_core.domain.snapshot import ChainSnapshot
from spx_core.strategies.scanner_params import ScanParams, ScanStructure

__all__ = ["LEG_RATIOS", "Book", "Candidates", "books_of", "generate"]

#: Signed ratios per leg, in leg order, per structure (BWB/butterfly bodies are short two).
LEG_RATIOS: dict[ScanStructure, tuple[int, ...]] = {
    ScanStructure.PUT_CREDIT_VERTICAL: (-1, 1),
    ScanStructure.CALL_CREDIT_VERTICAL: (-1, 1),
    ScanStructure.PUT_DEBIT_VERTICAL: (1, -1),
    ScanStructure.CALL_DEBIT_VERTICAL: (1, -1),
    ScanStructure.IRON_CONDOR: (1, -1, -1, 1),
    ScanStructure.IRON_BUTTERFLY: (1, -1, -1, 1),
    ScanStructure.BUTTERFLY: (1, -2, 1),
    ScanStructure.BWB: (1, -2, 1),
    ScanStructure.CALENDAR: (-1, 1),
}
_STRIKE_TOL = 1e-6  # strikes are multiples of 0.001: anything closer is the same strike
_KEY_SCALE = 1e6  # above any strike (< 100000 points), so (book, strike) keys of different books never overlap


@dataclass(frozen=True, slots=True)
class Book:
    """One listed (root, expiry) of a snapshot, its rows split by right in ascending strike order.

    Attributes:
        index: position in ``snapshot.expiries()`` (and ``ChainIV.forwards``).
        dte: calendar days from the snapshot's US/Eastern date to the expiry (0 = same day).
        calls, puts: snapshot row numbers (int64), strike-ascending.
    """

    index: int
    root: Root
    expiry: date
    dte: int
    calls: np.ndarray
    puts: np.ndarray

    def side(self, is_call: bool) -> np.ndarray:
        return self.calls if is_call else self.puts


@dataclass(frozen=True, slots=True)
class Candidates:
    """A block of candidates of one structure.

    Attributes:
        rows: (n, legs) int64 snapshot rows.
        ratios: (legs,) int64 signed ratios per leg (negative = short).
        width: (n,) the structure's width (index points; NaN for calendars).
        book: (n,) int64 front-expiry index into ``snapshot.expiries()``.
        far_book: (n,) int64 back-expiry index for calendars (equal to ``book`` otherwise).
    """

    rows: np.ndarray
    ratios: np.ndarray
    width: np.ndarray
    book: np.ndarray
    far_book: np.ndarray

    def __len__(self) -> int:
        return len(self.rows)

    def take(self, index: np.ndarray) -> Candidates:
        """The candidates at ``index`` (a boolean mask or positions)."""
        return Candidates(self.rows[index], self.ratios, self.width[index], self.book[index], self.far_book[index])


def snapshot_date(snapshot: ChainSnapshot) -> date:
    """The trading date of a snapshot: its time in US/Eastern (DTE counts from it, never the wall clock)."""
    return snapshot.time.astimezone(ET).date()


def books_of(snapshot: ChainSnapshot) -> list[Book]:
    """Every (root, expiry) of ``snapshot`` as a :class:`Book`, in snapshot order."""
    today = snapshot_date(snapshot)
    is_call = snapshot.columns["is_call"]
    out = []
    for i, sl in enumerate(snapshot.expiries()):
        rows = np.arange(sl.start, sl.stop, dtype=np.int64)
        calls = is_call[sl.rows]
        # Canonical order is (strike, call before put) inside a slice: each side is strike-ascending.
        out.append(Book(i, sl.root, sl.expiry, (sl.expiry - today).days, rows[calls], rows[~calls]))
    return out


@dataclass(frozen=True, slots=True)
class Side:
    """The rows of one right over the books a scan uses, ordered by (book, strike), with a sortable key."""

    rows: np.ndarray
    book: np.ndarray
    key: np.ndarray  # book * KEY_SCALE + strike: ascending, so one searchsorted finds any (book, strike)

    @classmethod
    def build(cls, books: list[Book], is_call: bool, strike: np.ndarray) -> Side:
        parts = [b.side(is_call) for b in books]
        rows = np.concatenate(parts) if parts else np.zeros(0, np.int64)
        book = np.repeat(np.array([b.index for b in books], dtype=np.int64), [len(p) for p in parts])
        order = np.argsort(book * _KEY_SCALE + strike[rows], kind="stable")
        rows, book = rows[order], book[order]
        return cls(rows, book, book * _KEY_SCALE + strike[rows])

    def find(self, book: np.ndarray, strike: np.ndarray) -> np.ndarray:
        """Rows listed at (book, strike), broadcast; -1 where that strike is not listed in that book."""
        target = np.asarray(book) * _KEY_SCALE + np.asarray(strike)
        if len(self.key) == 0:
            return np.full(target.shape, -1, dtype=np.int64)
        pos = np.clip(np.searchsorted(self.key, target - _STRIKE_TOL), 0, len(self.key) - 1)
        return np.where(np.abs(self.key[pos] - target) <= _STRIKE_TOL, self.rows[pos], -1)

    def shorts(self, front: np.ndarray, abs_delta: np.ndarray, spec) -> np.ndarray:
        """Rows of the front books whose |delta| meets ``spec``: per book the one nearest a target, or all
        inside a range (rows without a delta never qualify)."""
        sel = np.isin(self.book, front)
        rows, book = self.rows[sel], self.book[sel]
        d = abs_delta[rows]
        ok = np.isfinite(d)
        if isinstance(spec, tuple):
            return rows[ok & (d >= spec[0]) & (d <= spec[1])]
        dist = np.where(ok, np.abs(d - spec), np.inf)
        order = np.lexsort((dist, book))  # per book, nearest first (ties: the lower strike, stable)
        _, first = np.unique(book[order], return_index=True)
        best = order[first]
        return rows[best[np.isfinite(dist[best])]]


@dataclass(frozen=True, slots=True)
class _Context:
    params: ScanParams
    front: np.ndarray  # book indices of the front expiries scanned
    books: list[Book]  # every listed book
    book_of: np.ndarray  # per snapshot row: its book index
    strike: np.ndarray
    abs_delta: np.ndarray
    calls: Side
    puts: Side

    def side(self, is_call: bool) -> Side:
        return self.calls if is_call else self.puts


def generate(params: ScanParams, books: list[Book], all_books: list[Book], *, strike: np.ndarray,
             abs_delta: np.ndarray) -> Candidates:
    """Every candidate of ``params.structure`` over ``books`` (the front expiries in the DTE range).

    ``all_books`` is every listed expiry (calendars take their far leg from it); ``strike`` and
    ``abs_delta`` are per snapshot row (|delta| NaN where the chain has no delta).
    """
    book_of = np.zeros(len(strike), dtype=np.int64)
    for b in all_books:
        book_of[b.calls] = b.index
        book_of[b.puts] = b.index
    used = all_books if params.structure is ScanStructure.CALENDAR else books
    ctx = _Context(params, np.array([b.index for b in books], dtype=np.int64), all_books, book_of, strike,
                   abs_delta, Side.build(used, True, strike), Side.build(used, False, strike))
    ratios = np.array(LEG_RATIOS[params.structure], dtype=np.int64)
    blocks = [(rows[keep], width[keep], far[keep])
              for rows, width, far in _GENERATORS[params.structure](ctx)
              for keep in [np.all(rows >= 0, axis=1)]]
    if not blocks:
        return Candidates(np.zeros((0, len(ratios)), np.int64), ratios, np.zeros(0), np.zeros(0, np.int64),
                          np.zeros(0, np.int64))
    rows = np.concatenate([b[0] for b in blocks])
    return Candidates(rows, ratios, np.concatenate([b[1] for b in blocks]), book_of[rows[:, 0]],
                      np.concatenate([b[2] for b in blocks]))


# --- one generator per structure: yield (rows (n, legs) with -1 for unlisted, width (n,), far book (n,)) ------
def _wings(ctx: _Context, shorts: np.ndarray, widths: tuple[float, ...]):
    """Every (short, width) pair, flattened: (short rows, their books, their strikes, widths)."""
    s = np.repeat(shorts, len(widths))
    w = np.tile(np.asarray(widths, dtype=np.float64), len(shorts))
    return s, ctx.book_of[s], ctx.strike[s], w


def _verticals(is_call: bool, credit: bool):
    # Credit: the long leg is further OTM (put: below, call: above); debit: the long leg is nearer the money.
    sign = (1.0 if is_call else -1.0) * (1.0 if credit else -1.0)

    def gen(ctx: _Context):
        side = ctx.side(is_call)
        s, book, k, w = _wings(ctx, side.shorts(ctx.front, ctx.abs_delta, ctx.params.short_delta), ctx.params.widths)
        longs = side.find(book, k + sign * w)
        yield np.stack([s, longs] if credit else [longs, s], axis=1), w, book
    return gen


def _iron_condor(ctx: _Context):
    sp_all = ctx.puts.shorts(ctx.front, ctx.abs_delta, ctx.params.short_delta)
    sc_all = ctx.calls.shorts(ctx.front, ctx.abs_delta, ctx.params.short_delta)
    for b in ctx.front:  # the put x call product is per expiry
        sp, sc = sp_all[ctx.book_of[sp_all] == b], sc_all[ctx.book_of[sc_all] == b]
        p_idx, c_idx = np.meshgrid(np.arange(len(sp)), np.arange(len(sc)), indexing="ij")
        sp, sc = sp[p_idx.ravel()], sc[c_idx.ravel()]
        keep = ctx.strike[sp] < ctx.strike[sc]  # put short below call short: a condor, not a reversed strangle
        sp, sc = np.repeat(sp[keep], len(ctx.params.widths)), np.repeat(sc[keep], len(ctx.params.widths))
        w = np.tile(np.asarray(ctx.params.widths, dtype=np.float64), int(keep.sum()))
        book = np.full(len(sp), b, dtype=np.int64)
        lp = ctx.puts.find(book, ctx.strike[sp] - w)
        lc = ctx.calls.find(book, ctx.strike[sc] + w)
        yield np.stack([lp, sp, sc, lc], axis=1), w, book


def _iron_butterfly(ctx: _Context):
    sc, book, k, w = _wings(ctx, ctx.calls.shorts(ctx.front, ctx.abs_delta, ctx.params.short_delta),
                            ctx.params.widths)
    rows = [ctx.puts.find(book, k - w), ctx.puts.find(book, k), sc, ctx.calls.find(book, k + w)]
    yield np.stack(rows, axis=1), w, book


def _butterfly(ctx: _Context):
    for is_call in (False, True):
        side = ctx.side(is_call)
        body, book, k, w = _wings(ctx, side.shorts(ctx.front, ctx.abs_delta, ctx.params.short_delta),
                                  ctx.params.widths)
        yield np.stack([side.find(book, k - w), body, side.find(book, k + w)], axis=1), w, book


def _bwb(ctx: _Context):
    # The broken (wider) wing sits away from the money: below the body for puts, above it for calls.
    skips = np.asarray(ctx.params.skips, dtype=np.float64)
    for is_call in (False, True):
        side = ctx.side(is_call)
        body, book, k, w = _wings(ctx, side.shorts(ctx.front, ctx.abs_delta, ctx.params.short_delta),
                                  ctx.params.widths)
        body, book, k, w = (np.repeat(a, len(skips)) for a in (body, book, k, w))
        skip = np.tile(skips, len(body) // max(len(skips), 1))
        lo = side.find(book, k - (w if is_call else w + skip))
        hi = side.find(book, k + (w + skip if is_call else w))
        yield np.stack([lo, body, hi], axis=1), w, book


def _calendar(ctx: _Context):
    lo, hi = ctx.params.calendar_gap
    front = {int(b) for b in ctx.front}
    for near in (b for b in ctx.books if b.index in front):
        for far in ctx.books:
            if far.root is not near.root or not lo <= far.dte - near.dte <= hi:
                continue
            for is_call in (False, True):
                side = ctx.side(is_call)
                rows = side.shorts(np.array([near.index]), ctx.abs_delta, ctx.params.short_delta)
                far_book = np.full(len(rows), far.index, dtype=np.int64)
                yield (np.stack([rows, side.find(far_book, ctx.strike[rows])], axis=1),
                       np.full(len(rows), np.nan), far_book)


_GENERATORS = {
    ScanStructure.PUT_CREDIT_VERTICAL: _verticals(is_call=False, credit=True),
    ScanStructure.CALL_CREDIT_VERTICAL: _verticals(is_call=True, credit=True),
    ScanStructure.PUT_DEBIT_VERTICAL: _verticals(is_call=False, credit=False),
    ScanStructure.CALL_DEBIT_VERTICAL: _verticals(is_call=True, credit=False),
    ScanStructure.IRON_CONDOR: _iron_condor,
    ScanStructure.IRON_BUTTERFLY: _iron_butterfly,
    ScanStructure.BUTTERFLY: _butterfly,
    ScanStructure.BWB: _bwb,
    ScanStructure.CALENDAR: _calendar,
}
