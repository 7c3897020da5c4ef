"""Name a set of legs: which structure a trader would call it, with its legs in reading order.

``recognize(legs)`` takes legs in any order with any common multiple (a 2-lot iron condor is still an
iron condor, named "2 x ..."), reduces the ratios by their greatest common divisor and matches the
reduced shape against the structures of :class:`StructureKind`. The builders in
:mod:`spx_core.strategies.builders` name what they build through this module, so a built structure
and the same legs recognised from the chain always carry the same kind and name.

Reading order (what a ticket shows, what the name lists):
    vertical         the leg nearer the money first (puts: higher strike, calls: lower strike), so a put
                     credit vertical reads short/long "4700/4675" and a call debit vertical long/short
    iron condor/fly  ascending strike: long put, short put, short call, long call
    butterfly/BWB    ascending strike: lower wing, body, upper wing
    calendar/diag.   near expiry first
    straddle/strangle put first
    SPX/SPY pair     the SPX leg first
    single, custom   underlying (primary first), expiry, strike, put before call
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import reduce
from math import gcd

from spx_core.domain.contracts import Root
from spx_core.strategies.structure import Leg, Structure, StructureKind

__all__ = ["recognize", "structure_width"]

_UNDERLYING_ORDER = {"SPX": 0, "XSP": 1, "SPY": 2}


@dataclass(frozen=True, slots=True)
class _Match:
    kind: StructureKind
    legs: tuple[Leg, ...]
    name: str


def recognize(legs: Sequence[Leg]) -> Structure:
    """The structure ``legs`` form: kind, a trader's name and the legs in canonical reading order.

    Ratios may carry any common multiple; the legs keep their ratios and the name says the multiple
    ("2 x SPXW 2024-01-05 4700/4675 put credit vertical (25 wide)"). Anything unmatched is
    :attr:`StructureKind.CUSTOM`, its legs sorted by underlying, expiry, strike and right.

    Raises:
        StructureError: no legs, or a contract listed twice (from :class:`Structure`).
    """
    legs = tuple(legs)
    if not legs:
        return Structure(legs)  # raises the one-line "needs at least one leg"
    Structure(legs)  # validate (duplicates, types) before matching
    unit = reduce(gcd, (abs(leg.ratio) for leg in legs))
    reduced = tuple(Leg(leg.contract, leg.ratio // unit) for leg in legs)
    match = _match(reduced)
    if match is None:
        ordered = tuple(sorted(legs, key=_sort_key))
        return Structure(ordered, StructureKind.CUSTOM)
    back = {leg.contract: leg for leg in legs}
    ordered = tuple(back[leg.contract] for leg in match.legs)
    name = match.name if unit == 1 else f"{unit} x {match.name}"
    return Structure(ordered, match.kind, name)


def structure_width(structure: Structure) -> float:
    """The width a trader quotes, in points of the primary underlying (NaN when the kind has none).

    Verticals and diagonals: the strike distance; iron condors/butterflies and butterflies/BWBs: the
    wider wing; strangles: the distance between the put and call strikes; others (single, straddle, calendar, pair): NaN.
    The shape is read from the legs (:func:`recognize`), whatever kind, name and order the caller gave.
    """
    shape = recognize(structure.legs)
    strikes = [leg.contract.strike for leg in shape.legs]
    kind = shape.kind
    if kind in (StructureKind.VERTICAL, StructureKind.DIAGONAL):
        return abs(strikes[0] - strikes[1])
    if kind in (StructureKind.IRON_CONDOR, StructureKind.IRON_BUTTERFLY):
        return max(strikes[1] - strikes[0], strikes[3] - strikes[2])
    if kind in (StructureKind.BUTTERFLY, StructureKind.BROKEN_WING_BUTTERFLY):
        return max(strikes[1] - strikes[0], strikes[2] - strikes[1])
    if kind is StructureKind.STRANGLE:
        return abs(strikes[1] - strikes[0])  # a "guts" strangle has its put above its call
    return float("nan")


# --- matching ------------------------------------------------------------------------------------
def _sort_key(leg: Leg) -> tuple:
    c = leg.contract
    return (_UNDERLYING_ORDER.get(leg.underlying, 9), c.expiry, c.root.value, c.strike, c.is_call)


def _k(x: float) -> str:
    return f"{x:g}"


def _head(legs: Sequence[Leg]) -> str:
    c = legs[0].contract
    return f"{c.root.value} {c.expiry:%Y-%m-%d}"


def _same(legs: Sequence[Leg], *attrs: str) -> bool:
    return all(len({getattr(leg.contract, a) for leg in legs}) == 1 for a in attrs)


def _match(legs: tuple[Leg, ...]) -> _Match | None:
    n = len(legs)
    if n == 1:
        return _single(legs[0])
    if len({leg.underlying for leg in legs}) > 1:
        return _pair(legs) if n == 2 else None
    if n == 2:
        if _same(legs, "expiry", "root"):
            return _vertical(legs) or _straddle_strangle(legs)
        return _calendar_diagonal(legs)
    if not _same(legs, "expiry", "root"):
        return None
    if n == 3:
        return _butterfly(legs)
    if n == 4:
        return _iron(legs)
    return None


def _single(leg: Leg) -> _Match:
    c = leg.contract
    side = "long" if leg.is_long else "short"
    right = "call" if c.is_call else "put"
    return _Match(StructureKind.SINGLE, (leg,), f"{_head((leg,))} {_k(c.strike)} {side} {right}")


def _vertical(legs: tuple[Leg, ...]) -> _Match | None:
    a, b = legs
    if not _same(legs, "right") or a.ratio != -b.ratio:
        return None
    is_call = a.contract.is_call
    # Nearer the money first: the dearer leg; which of the two is short decides credit or debit.
    near, far = sorted(legs, key=lambda leg: leg.contract.strike if is_call else -leg.contract.strike)
    credit = not near.is_long
    right = "call" if is_call else "put"
    width = abs(a.contract.strike - b.contract.strike)
    name = (f"{_head(legs)} {_k(near.contract.strike)}/{_k(far.contract.strike)} {right} "
            f"{'credit' if credit else 'debit'} vertical ({_k(width)} wide)")
    return _Match(StructureKind.VERTICAL, (near, far), name)


def _straddle_strangle(legs: tuple[Leg, ...]) -> _Match | None:
    put, call = sorted(legs, key=lambda leg: leg.contract.is_call)
    if put.contract.is_call or not call.contract.is_call or put.ratio != call.ratio:
        return None
    side = "long" if put.is_long else "short"
    if put.contract.strike == call.contract.strike:
        return _Match(StructureKind.STRADDLE, (put, call),
                      f"{_head(legs)} {_k(put.contract.strike)} {side} straddle")
    return _Match(StructureKind.STRANGLE, (put, call),
                  f"{_head(legs)} {_k(put.contract.strike)}/{_k(call.contract.strike)} {side} strangle")


def _calendar_diagonal(legs: tuple[Leg, ...]) -> _Match | None:
    near, far = sorted(legs, key=lambda leg: leg.contract.expiry)
    if not _same(legs, "right") or near.contract.expiry == far.contract.expiry or near.ratio != -far.ratio:
        return None
    right = "call" if near.contract.is_call else "put"
    side = "" if far.is_long else "short "
    roots = near.contract.root.value if near.contract.root == far.contract.root else \
        f"{near.contract.root.value}/{far.contract.root.value}"
    dates = f"{near.contract.expiry:%Y-%m-%d}/{far.contract.expiry:%Y-%m-%d}"
    if near.contract.strike == far.contract.strike:
        return _Match(StructureKind.CALENDAR, (near, far),
                      f"{roots} {dates} {_k(near.contract.strike)} {side}{right} calendar")
    return _Match(StructureKind.DIAGONAL, (near, far),
                  f"{roots} {dates} {_k(near.contract.strike)}/{_k(far.contract.strike)} {side}{right} diagonal")


def _butterfly(legs: tuple[Leg, ...]) -> _Match | None:
    low, body, high = sorted(legs, key=lambda leg: leg.contract.strike)
    if not _same(legs, "right") or not (low.ratio == high.ratio == -body.ratio // 2 and body.ratio % 2 == 0):
        return None
    lower, upper = body.contract.strike - low.contract.strike, high.contract.strike - body.contract.strike
    right = "call" if body.contract.is_call else "put"
    side = "" if low.is_long else "short "
    strikes = "/".join(_k(leg.contract.strike) for leg in (low, body, high))
    if lower == upper:
        return _Match(StructureKind.BUTTERFLY, (low, body, high),
                      f"{_head(legs)} {strikes} {side}{right} butterfly ({_k(lower)} wide)")
    return _Match(StructureKind.BROKEN_WING_BUTTERFLY, (low, body, high),
                  f"{_head(legs)} {strikes} {side}{right} broken-wing butterfly ({_k(lower)}/{_k(upper)} wide)")


def _iron(legs: tuple[Leg, ...]) -> _Match | None:
    puts = sorted((leg for leg in legs if not leg.contract.is_call), key=lambda leg: leg.contract.strike)
    calls = sorted((leg for leg in legs if leg.contract.is_call), key=lambda leg: leg.contract.strike)
    if len(puts) != 2 or len(calls) != 2:
        return None
    lp, sp, sc, lc = puts[0], puts[1], calls[0], calls[1]
    sign = 1 if lp.is_long else -1  # -1: the bought (long) iron condor / butterfly
    if (lp.ratio, sp.ratio, sc.ratio, lc.ratio) != (sign, -sign, -sign, sign):
        return None
    if sp.contract.strike > sc.contract.strike:
        return None
    ordered = (lp, sp, sc, lc)
    put_w, call_w = sp.contract.strike - lp.contract.strike, lc.contract.strike - sc.contract.strike
    widths = _k(put_w) if put_w == call_w else f"{_k(put_w)}/{_k(call_w)}"
    side = "" if sign == 1 else "long "
    if sp.contract.strike == sc.contract.strike:
        strikes = "/".join(_k(leg.contract.strike) for leg in (lp, sp, lc))
        return _Match(StructureKind.IRON_BUTTERFLY, ordered,
                      f"{_head(legs)} {strikes} {side}iron butterfly ({widths} wide)")
    strikes = "/".join(_k(leg.contract.strike) for leg in ordered)
    return _Match(StructureKind.IRON_CONDOR, ordered, f"{_head(legs)} {strikes} {side}iron condor ({widths} wide)")


def _pair(legs: tuple[Leg, ...]) -> _Match | None:
    spx = [leg for leg in legs if leg.underlying == "SPX"]
    spy = [leg for leg in legs if leg.contract.root is Root.SPY]
    if len(spx) != 1 or len(spy) != 1:
        return None
    a, b = spx[0], spy[0]
    if not (a.contract.is_call and b.contract.is_call) or a.contract.expiry != b.contract.expiry:
        return None
    # 10 SPY calls per SPX call, strikes matching to within one $1 SPY strike of SPX/10.
    if b.ratio != -10 * a.ratio or abs(b.contract.strike * 10 - a.contract.strike) > 10:
        return None
    side = "long SPX, short 10 SPY" if a.is_long else "short SPX, long 10 SPY"
    name = (f"{a.contract.root.value}/SPY {a.contract.expiry:%Y-%m-%d} {_k(a.contract.strike)}/"
            f"{_k(b.contract.strike)} call pair ({side})")
    return _Match(StructureKind.SPX_SPY_PAIR, (a, b), name)
