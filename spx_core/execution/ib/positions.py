"""IB's positions against our book: which contracts agree, which differ, which only one side holds.

Our positions are built from our stored fills (:mod:`spx_core.portfolio.positions`); TWS keeps its own. They
drift apart when a trade is placed outside the terminal (TWS, the phone app, another API client), when an
execution never reached us, or on an assignment. This module only *reports* the difference: the book is never
rewritten from IB's numbers (a position we cannot explain by fills has no cost basis, trade or P&L we could trust).

Matching is by listing, not by object equality: ``(root, expiry, strike, right)`` (:class:`ContractKey`), so an
exchange label (TWS reports positions with an empty exchange), a conId or a trading-class field never makes two
descriptions of one option differ. IB's inputs are read tolerantly (either client library's ``Position``, or any
object with the same fields): the root is the trading class (SPX monthly AM vs SPXW), else the OCC local symbol,
else the symbol when it is unambiguous; strikes are rounded to the OCC thousandth (float noise); the right may be
``C`` / ``CALL`` / ``P`` / ``PUT``; the expiry may carry a time suffix (``20261218 16:00:00 US/Eastern``).
IB's ``avgCost`` is per contract TIMES the multiplier (dollars); it is reported in points per contract.

What the terminal does not trade (stock, futures, other underlyings, contracts it cannot place) is listed as
"not tracked by the terminal", never as a mismatch.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

from spx_core.domain.contracts import OccSymbolError, OptionContract, Right, Root
from spx_core.execution.ib.compat import unset_to_nan
from spx_core.portfolio.positions import Position

__all__ = ["ContractKey", "PositionCheck", "PositionLine", "Untracked", "compare_positions", "key_of_ib"]

#: IB underlying symbols whose options the terminal trades, and the roots they list under.
_ROOTS_OF_SYMBOL = {"SPX": (Root.SPX, Root.SPXW), "XSP": (Root.XSP,), "SPY": (Root.SPY,)}
_RIGHTS = {"C": Right.CALL, "CALL": Right.CALL, "P": Right.PUT, "PUT": Right.PUT}
#: How many differing contracts one message names before it says "and N more" (an alert is one line).
MAX_NAMED = 8


@dataclass(frozen=True, slots=True, order=True)
class ContractKey:
    """One listed option, whatever its exchange label or broker ids (strike in points, rounded to 0.001)."""

    root: Root
    expiry: date
    strike: float
    right: Right

    @classmethod
    def of(cls, contract: OptionContract) -> ContractKey:
        return cls(contract.root, contract.expiry, contract.strike, contract.right)

    def __str__(self) -> str:
        """``SPXW 2026-12-18 5900P``."""
        return f"{self.root.value} {self.expiry:%Y-%m-%d} {self.strike:g}{self.right.value}"


@dataclass(frozen=True, slots=True)
class PositionLine:
    """One contract on both sides: signed contracts in our book and at IB (0 where a side holds none).

    ``ib_avg_cost``: IB's average cost in points per contract (its ``avgCost`` / multiplier; NaN when IB holds
    none). Shown for the trader; never compared (IB nets fees into a short's basis, we book them as realized).
    """

    key: ContractKey
    ours: int
    ib: int
    ib_avg_cost: float = math.nan

    def __str__(self) -> str:
        return f"{self.key} ours {self.ours:+d}, IB {self.ib:+d}"


@dataclass(frozen=True, slots=True)
class Untracked:
    """An IB position the terminal does not trade (listed for the trader, not compared)."""

    description: str  # e.g. "STK SPY" or "OPT ES 20261218 5900P"
    quantity: float
    reason: str


@dataclass(frozen=True, slots=True)
class PositionCheck:
    """The comparison of one account's IB positions with our book (see the module docstring).

    Attributes:
        account: the IB account compared ("" = every account TWS reported).
        matches: contracts both sides hold in the same quantity.
        mismatches: contracts both sides hold, in different quantities.
        only_ib: contracts IB holds and our book does not.
        only_ours: contracts our book holds and IB does not.
        untracked: IB positions the terminal does not trade.
        other_accounts: IB positions of other accounts (ignored).
    """

    account: str
    matches: tuple[PositionLine, ...] = ()
    mismatches: tuple[PositionLine, ...] = ()
    only_ib: tuple[PositionLine, ...] = ()
    only_ours: tuple[PositionLine, ...] = ()
    untracked: tuple[Untracked, ...] = ()
    other_accounts: int = 0

    @property
    def ok(self) -> bool:
        """Every contract the terminal trades agrees (untracked positions do not count)."""
        return not (self.mismatches or self.only_ib or self.only_ours)

    @property
    def differences(self) -> tuple[PositionLine, ...]:
        """Every differing contract in contract order."""
        return tuple(sorted(self.mismatches + self.only_ib + self.only_ours, key=lambda line: line.key))

    @property
    def message(self) -> str:
        """One line for the trader: the match, or each differing contract (ours vs IB) and the likely cause."""
        if self.ok:
            text = f"IB positions match the book ({len(self.matches)} contracts)"
        else:
            diffs = self.differences
            named = "; ".join(str(line) for line in diffs[:MAX_NAMED])
            more = f"; and {len(diffs) - MAX_NAMED} more" if len(diffs) > MAX_NAMED else ""
            text = (f"IB positions differ from the book: {named}{more} (trades placed outside the terminal, or "
                    f"fills it missed? the book is not changed: check TWS)")
        if self.untracked:
            shown = ", ".join(f"{u.description} {u.quantity:g}" for u in self.untracked[:MAX_NAMED])
            more = f" and {len(self.untracked) - MAX_NAMED} more" if len(self.untracked) > MAX_NAMED else ""
            text += f"; not tracked by the terminal: {shown}{more}"
        return text


def key_of_ib(contract: object) -> tuple[ContractKey | None, str]:
    """The key of an IB contract, or ``(None, why it is not tracked)``."""
    sec_type = str(getattr(contract, "secType", "") or "").upper()
    symbol = str(getattr(contract, "symbol", "") or "").upper()
    if sec_type != "OPT":
        return None, f"{sec_type or 'unknown security type'} is not an option the terminal trades"
    if symbol not in _ROOTS_OF_SYMBOL:
        return None, f"options on {symbol or '?'} are not traded by the terminal"
    try:
        expiry = _expiry(getattr(contract, "lastTradeDateOrContractMonth", ""))
        strike = round(float(getattr(contract, "strike", 0) or 0) * 1000) / 1000
        right = _RIGHTS[str(getattr(contract, "right", "") or "").strip().upper()]
    except (ValueError, OverflowError, KeyError):  # OverflowError: an infinite strike
        return None, "its expiry, strike or right cannot be read"
    if not 0 < strike < 100_000:
        return None, f"strike {strike:g} is not a listed strike"
    root, why = _root(contract, symbol, expiry, strike, right)
    return (None, why) if root is None else (ContractKey(root, expiry, strike, right), "")


def _expiry(text: object) -> date:
    """``20261218``, ``20261218 16:00:00 US/Eastern``, ``2026-12-18``; a month (``202612``) is refused."""
    words = str(text or "").split()
    digits = "".join(ch for ch in words[0] if ch.isdigit()) if words else ""
    if len(digits) != 8:
        raise ValueError(f"expiry {text!r} is not a date")
    return date(int(digits[:4]), int(digits[4:6]), int(digits[6:]))


def _root(contract: object, symbol: str, expiry: date, strike: float, right: Right) -> tuple[Root | None, str]:
    roots = _ROOTS_OF_SYMBOL[symbol]
    trading_class = str(getattr(contract, "tradingClass", "") or "").strip().upper()
    if trading_class:
        if trading_class in {r.value for r in roots}:
            return Root(trading_class), ""
        return None, f"trading class {trading_class} of {symbol} is not traded by the terminal"
    local = str(getattr(contract, "localSymbol", "") or "").strip()
    if local:
        try:
            found = OptionContract.from_occ(local)
            if found.root in roots and (found.expiry, found.strike, found.right) == (expiry, strike, right):
                return found.root, ""
        except OccSymbolError:
            pass
    if len(roots) == 1:
        return roots[0], ""
    if _third_friday(expiry):  # both SPX (AM) and SPXW (PM) list it: a guess could pass a real difference
        return None, "IB did not say whether it is an SPX (AM) or SPXW (PM) option (no trading class)"
    return Root.SPXW, ""  # the AM monthly lists only on third Fridays: any other day is an SPXW


def _third_friday(day: date) -> bool:
    return day.weekday() == 4 and 15 <= day.day <= 21


def _multiplier(contract: object) -> float:
    try:
        value = float(getattr(contract, "multiplier", "") or 100)
    except (TypeError, ValueError):
        return 100.0
    return value if value > 0 else 100.0


def _contracts(quantity: object) -> int:
    value = unset_to_nan(quantity if quantity is not None else 0)
    return round(value) if math.isfinite(value) else 0  # an unreadable quantity is no position


def _describe(contract: object) -> str:
    parts = [str(getattr(contract, name, "") or "") for name in
             ("secType", "symbol", "lastTradeDateOrContractMonth")]
    strike = getattr(contract, "strike", 0) or 0
    if strike:
        parts.append(f"{float(strike):g}{str(getattr(contract, 'right', '') or '')[:1]}")
    return " ".join(p for p in parts if p) or "unknown contract"


def compare_positions(ib_positions: Iterable[object], ours: Iterable[Position], *, account: str = ""
                      ) -> PositionCheck:
    """Compare IB's positions (``Position(account, contract, position, avgCost)`` tuples) of ``account`` ("" =
    all) with our book's positions (flat ones ignored). See :class:`PositionCheck`."""
    ib_qty: dict[ContractKey, int] = {}
    ib_held: dict[ContractKey, int] = {}  # |contracts| over IB's lines of a key, to average their costs
    ib_cost: dict[ContractKey, float] = {}  # points x |contracts|
    untracked: list[Untracked] = []
    other = 0
    for p in ib_positions:
        if account and str(getattr(p, "account", "") or "") not in ("", account):
            other += 1
            continue
        contract, quantity = getattr(p, "contract", None), _contracts(getattr(p, "position", 0))
        if quantity == 0:
            continue  # TWS lists a position closed today with quantity 0
        key, why = key_of_ib(contract)
        if key is None:
            untracked.append(Untracked(_describe(contract), unset_to_nan(getattr(p, "position", 0)), why))
            continue
        ib_qty[key] = ib_qty.get(key, 0) + quantity
        ib_held[key] = ib_held.get(key, 0) + abs(quantity)
        cost = unset_to_nan(getattr(p, "avgCost", math.nan)) / _multiplier(contract)
        ib_cost[key] = ib_cost.get(key, 0.0) + cost * abs(quantity)
    our_qty: dict[ContractKey, int] = {}
    for position in ours:
        if position.quantity:
            key = ContractKey.of(position.contract)
            our_qty[key] = our_qty.get(key, 0) + position.quantity
    lines: dict[str, list[PositionLine]] = {"match": [], "mismatch": [], "ib": [], "ours": []}
    for key in sorted(ib_qty.keys() | our_qty.keys()):
        mine, theirs = our_qty.get(key, 0), ib_qty.get(key, 0)
        if mine == theirs == 0:
            continue  # lines that net to flat on both sides
        avg = ib_cost[key] / ib_held[key] if theirs else math.nan
        line = PositionLine(key, mine, theirs, avg)
        kind = ("match" if mine == theirs else "ib" if mine == 0 else "ours" if theirs == 0 else "mismatch")
        lines[kind].append(line)
    return PositionCheck(account, tuple(lines["match"]), tuple(lines["mismatch"]), tuple(lines["ib"]),
                         tuple(lines["ours"]), tuple(untracked), other)
