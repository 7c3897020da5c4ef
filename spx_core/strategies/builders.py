"""Builders for the structures a trader names: verticals, condors, butterflies, calendars, the SPX/SPY pair.

Builders take contracts or (root, expiry, strikes), never snapshots: a structure names contracts, what
they cost is :mod:`spx_core.strategies.valuation`'s job. Each builder checks its inputs (one-line
:class:`BuildError` saying what is wrong), makes the legs, and names them through
:func:`~spx_core.strategies.recognize.recognize`, so a built structure and the same legs selected in the
chain carry the same kind and name. Strikes and widths are in index points of the root's underlying.
"""

from __future__ import annotations

import math
from datetime import date

from spx_core.domain.contracts import OptionContract, Right, Root
from spx_core.strategies.recognize import recognize
from spx_core.strategies.structure import Leg, Structure, StructureError, StructureKind

__all__ = [
    "BuildError",
    "bear_call_vertical",
    "bear_put_vertical",
    "broken_wing_butterfly",
    "bull_call_vertical",
    "bull_put_vertical",
    "butterfly",
    "calendar",
    "call_credit_vertical",
    "call_debit_vertical",
    "diagonal",
    "iron_butterfly",
    "iron_condor",
    "put_credit_vertical",
    "put_debit_vertical",
    "single",
    "spx_spy_pair",
    "straddle",
    "strangle",
    "vertical",
]


class BuildError(StructureError):
    """A builder was asked for a structure that cannot exist (non-positive width, strikes on the wrong side)."""


def _option(root: Root | str, expiry: date, strike: float, right: Right | str) -> OptionContract:
    if not strike > 0:
        raise BuildError(f"{root} {expiry} {Right(right).value} strike {strike:g} is not positive: "
                         f"a width reaches below zero; use a smaller width")
    try:
        return OptionContract(root=Root(root), expiry=expiry, strike=strike, right=Right(right))
    except ValueError as exc:
        raise BuildError(f"{root} {expiry} {strike:g}{Right(right).value}: {exc}") from None


def _positive(name: str, value: float) -> float:
    if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
        raise BuildError(f"{name} must be a positive number of points, got {value!r}")
    return float(value)


def _named(legs: list[Leg], kind: StructureKind) -> Structure:
    structure = recognize(legs)
    if structure.kind is not kind:  # the builders' own shapes always match; guard the contract anyway
        raise BuildError(f"built legs read as {structure.kind.value}, not {kind.value}: {structure.name}")
    return structure


def single(contract: OptionContract, ratio: int = 1) -> Structure:
    """One option, ``ratio`` contracts per unit (negative = short)."""
    return _named([Leg(contract, ratio)], StructureKind.SINGLE)


# --- verticals -------------------------------------------------------------------------------------
def vertical(short: OptionContract, long: OptionContract, *, credit: bool | None = None) -> Structure:
    """Short one, long the other: same root, expiry and right, different strikes.

    Credit or debit follows from the strikes: a short put above the long put (or a short call below
    the long call) is a credit vertical, the other way round a debit vertical. Pass ``credit`` to have
    a long strike on the wrong side for the intended trade refused.
    """
    if (short.root, short.expiry, short.right) != (long.root, long.expiry, long.right):
        raise BuildError(f"a vertical needs the same root, expiry and right on both legs: {short} vs {long}")
    if short.strike == long.strike:
        raise BuildError(f"a vertical needs two strikes; both legs are at {short.strike:g}")
    is_credit = (short.strike < long.strike) if short.is_call else (short.strike > long.strike)
    if credit is not None and credit != is_credit:
        right = "call" if short.is_call else "put"
        side = ("above" if short.is_call else "below") if credit else ("below" if short.is_call else "above")
        raise BuildError(f"long {right} {long.strike:g} is on the wrong side of short {right} {short.strike:g} "
                         f"for a {'credit' if credit else 'debit'} vertical: put the long {right} {side} it")
    return _named([Leg(short, -1), Leg(long, 1)], StructureKind.VERTICAL)


def put_credit_vertical(root: Root | str, expiry: date, short_strike: float, width: float) -> Structure:
    """Bull put: short the ``short_strike`` put, long the put ``width`` points below."""
    width = _positive("width", width)
    return vertical(_option(root, expiry, short_strike, Right.PUT),
                    _option(root, expiry, short_strike - width, Right.PUT))


def call_credit_vertical(root: Root | str, expiry: date, short_strike: float, width: float) -> Structure:
    """Bear call: short the ``short_strike`` call, long the call ``width`` points above."""
    width = _positive("width", width)
    return vertical(_option(root, expiry, short_strike, Right.CALL),
                    _option(root, expiry, short_strike + width, Right.CALL))


def put_debit_vertical(root: Root | str, expiry: date, long_strike: float, width: float) -> Structure:
    """Bear put: long the ``long_strike`` put, short the put ``width`` points below."""
    width = _positive("width", width)
    return vertical(_option(root, expiry, long_strike - width, Right.PUT),
                    _option(root, expiry, long_strike, Right.PUT))


def call_debit_vertical(root: Root | str, expiry: date, long_strike: float, width: float) -> Structure:
    """Bull call: long the ``long_strike`` call, short the call ``width`` points above."""
    width = _positive("width", width)
    return vertical(_option(root, expiry, long_strike + width, Right.CALL),
                    _option(root, expiry, long_strike, Right.CALL))


bull_put_vertical = put_credit_vertical
bear_call_vertical = call_credit_vertical
bear_put_vertical = put_debit_vertical
bull_call_vertical = call_debit_vertical


# --- four-leg and three-leg, one expiry -------------------------------------------------------------
def iron_condor(root: Root | str, expiry: date, put_short: float, call_short: float, put_width: float,
                call_width: float | None = None) -> Structure:
    """Short iron condor: a put credit vertical below a call credit vertical (``call_width`` defaults to
    ``put_width``). The short put must sit below the short call (equal strikes: use :func:`iron_butterfly`)."""
    put_width = _positive("put_width", put_width)
    call_width = put_width if call_width is None else _positive("call_width", call_width)
    if not put_short < call_short:
        raise BuildError(f"iron condor short put {put_short:g} must be below short call {call_short:g} "
                         f"(equal strikes make an iron butterfly)")
    legs = [Leg(_option(root, expiry, put_short - put_width, Right.PUT), 1),
            Leg(_option(root, expiry, put_short, Right.PUT), -1),
            Leg(_option(root, expiry, call_short, Right.CALL), -1),
            Leg(_option(root, expiry, call_short + call_width, Right.CALL), 1)]
    return _named(legs, StructureKind.IRON_CONDOR)


def iron_butterfly(root: Root | str, expiry: date, center: float, width: float,
                   call_width: float | None = None) -> Structure:
    """Short iron butterfly: short put and call at ``center``, long wings ``width`` points out
    (``call_width`` for an unequal call wing)."""
    width = _positive("width", width)
    call_width = width if call_width is None else _positive("call_width", call_width)
    legs = [Leg(_option(root, expiry, center - width, Right.PUT), 1),
            Leg(_option(root, expiry, center, Right.PUT), -1),
            Leg(_option(root, expiry, center, Right.CALL), -1),
            Leg(_option(root, expiry, center + call_width, Right.CALL), 1)]
    return _named(legs, StructureKind.IRON_BUTTERFLY)


def butterfly(root: Root | str, expiry: date, center: float, width: float, right: Right | str) -> Structure:
    """Long 1x2x1 butterfly: long ``center - width``, short 2 ``center``, long ``center + width``."""
    width = _positive("width", width)
    legs = [Leg(_option(root, expiry, center - width, right), 1), Leg(_option(root, expiry, center, right), -2),
            Leg(_option(root, expiry, center + width, right), 1)]
    return _named(legs, StructureKind.BUTTERFLY)


def broken_wing_butterfly(root: Root | str, expiry: date, center: float, width: float, skip: float,
                          right: Right | str, *, broken_side: str | None = None) -> Structure:
    """Skip-strike butterfly: a 1x2x1 with one wing ``width + skip`` points from the body.

    ``broken_side`` is "low" or "high"; by default the out-of-the-money side (low for puts, high for
    calls), which is how the trade is usually put on for a credit or a small debit.
    """
    width = _positive("width", width)
    skip = _positive("skip", skip)
    side = broken_side or ("low" if Right(right) is Right.PUT else "high")
    if side not in ("low", "high"):
        raise BuildError(f"broken_side must be 'low' or 'high', got {broken_side!r}")
    low = center - width - (skip if side == "low" else 0.0)
    high = center + width + (skip if side == "high" else 0.0)
    legs = [Leg(_option(root, expiry, low, right), 1), Leg(_option(root, expiry, center, right), -2),
            Leg(_option(root, expiry, high, right), 1)]
    return _named(legs, StructureKind.BROKEN_WING_BUTTERFLY)


def straddle(root: Root | str, expiry: date, strike: float, *, short: bool = False) -> Structure:
    """Put and call at ``strike``, both bought (or both sold with ``short=True``)."""
    sign = -1 if short else 1
    legs = [Leg(_option(root, expiry, strike, Right.PUT), sign), Leg(_option(root, expiry, strike, Right.CALL), sign)]
    return _named(legs, StructureKind.STRADDLE)


def strangle(root: Root | str, expiry: date, put_strike: float, call_strike: float, *,
             short: bool = False) -> Structure:
    """Put below, call above, both bought (or sold with ``short=True``)."""
    if not put_strike < call_strike:
        raise BuildError(f"strangle put strike {put_strike:g} must be below call strike {call_strike:g} "
                         f"(equal strikes make a straddle)")
    sign = -1 if short else 1
    legs = [Leg(_option(root, expiry, put_strike, Right.PUT), sign),
            Leg(_option(root, expiry, call_strike, Right.CALL), sign)]
    return _named(legs, StructureKind.STRANGLE)


# --- two expiries ----------------------------------------------------------------------------------
def _two_expiries(near: date, far: date) -> None:
    if not far > near:
        raise BuildError(f"far expiry {far} must be after near expiry {near}")


def calendar(root: Root | str, near: date, far: date, strike: float, right: Right | str) -> Structure:
    """Long calendar: short the ``near`` option, long the ``far`` one, same strike and right."""
    _two_expiries(near, far)
    legs = [Leg(_option(root, near, strike, right), -1), Leg(_option(root, far, strike, right), 1)]
    return _named(legs, StructureKind.CALENDAR)


def diagonal(root: Root | str, near: date, far: date, near_strike: float, far_strike: float,
             right: Right | str) -> Structure:
    """Long diagonal: short the ``near`` option at ``near_strike``, long the ``far`` one at ``far_strike``."""
    _two_expiries(near, far)
    if near_strike == far_strike:
        raise BuildError(f"a diagonal needs two strikes; both are {near_strike:g} (that is a calendar)")
    legs = [Leg(_option(root, near, near_strike, right), -1), Leg(_option(root, far, far_strike, right), 1)]
    return _named(legs, StructureKind.DIAGONAL)


# --- across underlyings ----------------------------------------------------------------------------
def spx_spy_pair(expiry: date, spx_strike: float, spy_strike: float | None = None) -> Structure:
    """Long 1 SPXW call, short 10 SPY calls, same expiry (the SPY/SPX arbitrage plan).

    ``spy_strike`` defaults to ``spx_strike / 10`` rounded half-up to SPY's $1 grid; a given SPY strike
    must lie within $1 of ``spx_strike / 10`` (further apart it is a directional trade, not the pair).
    """
    spx_strike = _positive("spx_strike", spx_strike)
    target = spx_strike / 10.0
    if spy_strike is None:
        spy_strike = float(math.floor(target + 0.5))
    elif abs(spy_strike - target) > 1.0:
        raise BuildError(f"SPY strike {spy_strike:g} is more than $1 from SPX strike / 10 = {target:g}")
    legs = [Leg(_option(Root.SPXW, expiry, spx_strike, Right.CALL), 1),
            Leg(_option(Root.SPY, expiry, spy_strike, Right.CALL), -10)]
    return _named(legs, StructureKind.SPX_SPY_PAIR)
