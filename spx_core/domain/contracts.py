"""Option contracts: roots, rights, settlement styles and the OCC symbol.

An :class:`OptionContract` is a value object: it names one listed option, carries
no market state, and compares and hashes by value (broker ids excluded).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum

__all__ = [
    "Root",
    "Right",
    "Settlement",
    "OptionContract",
    "OccSymbolError",
    "settlement_for_root",
    "ROOTS",
]


class Root(StrEnum):
    """Option root (OCC "root symbol" / IB trading class)."""

    SPX = "SPX"  # monthly, AM-settled (SOQ), third Friday
    SPXW = "SPXW"  # dailies/weeklies/quarterlies, PM-settled
    XSP = "XSP"  # mini-SPX, PM-settled
    SPY = "SPY"  # ETF option (American; room for later)


#: Stable code order for columnar storage: ``ROOTS[code] -> Root``. Append only.
ROOTS: tuple[Root, ...] = (Root.SPX, Root.SPXW, Root.XSP, Root.SPY)


class Right(StrEnum):
    CALL = "C"
    PUT = "P"


class Settlement(StrEnum):
    """How the expiry value is fixed.

    AM: the Special Opening Quotation on expiry day (trading stops the prior day).
    PM: the closing index value on expiry day (trading until the close).
    """

    AM = "AM"
    PM = "PM"


_ROOT_SETTLEMENT = {Root.SPX: Settlement.AM, Root.SPXW: Settlement.PM, Root.XSP: Settlement.PM,
                    Root.SPY: Settlement.PM}


def settlement_for_root(root: Root | str) -> Settlement:
    """The settlement style a root lists with (SPX is AM, SPXW/XSP/SPY are PM)."""
    return _ROOT_SETTLEMENT[Root(root)]


class OccSymbolError(ValueError):
    """An OCC option symbol could not be parsed."""


@dataclass(frozen=True, slots=True)
class OptionContract:
    """One listed index option.

    Attributes:
        root: option root (SPX, SPXW, ...).
        expiry: expiration date (the date printed in the OCC symbol).
        strike: strike in index points (a multiple of 0.001).
        right: call or put.
        settlement: AM or PM; defaults to the root's listing style.
        multiplier: dollars per index point (100 for SPX).
        exchange: listing exchange.
        currency: ISO currency code.
        con_id: Interactive Brokers contract id, when known (not part of equality).
        trading_class: IB trading class, when known (not part of equality).
    """

    root: Root
    expiry: date
    strike: float
    right: Right
    settlement: Settlement | None = None
    multiplier: int = 100
    exchange: str = "CBOE"
    currency: str = "USD"
    con_id: int | None = field(default=None, compare=False)
    trading_class: str | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Root(self.root))
        object.__setattr__(self, "right", Right(self.right))
        if self.settlement is None:
            object.__setattr__(self, "settlement", settlement_for_root(self.root))
        else:
            object.__setattr__(self, "settlement", Settlement(self.settlement))
        strike = float(self.strike)
        if not strike > 0 or strike >= 100_000:
            raise ValueError(f"strike {self.strike!r} must be in (0, 100000) index points")
        milli = round(strike * 1000)
        if abs(milli - strike * 1000) > 1e-6:
            raise ValueError(f"strike {self.strike!r} must be a multiple of 0.001 (OCC encodes thousandths)")
        object.__setattr__(self, "strike", milli / 1000)
        if self.multiplier <= 0:
            raise ValueError(f"multiplier {self.multiplier} must be positive")

    @property
    def is_call(self) -> bool:
        return self.right is Right.CALL

    @property
    def occ_symbol(self) -> str:
        """The 21-character OCC symbol, e.g. ``SPXW  240105C04700000``."""
        return (f"{self.root.value:<6}{self.expiry:%y%m%d}{self.right.value}"
                f"{round(self.strike * 1000):08d}")

    @classmethod
    def from_occ(cls, symbol: str, **kwargs: object) -> OptionContract:
        """Parse an OCC symbol (padded ``SPXW  240105C04700000`` or compact ``SPXW240105C04700000``).

        Raises:
            OccSymbolError: naming what is wrong with the symbol.
        """
        s = symbol.strip()
        if len(s) < 16 or (" " in s and len(s) != 21):
            raise OccSymbolError(f"OCC symbol {symbol!r} is too short or too long: expected 21 characters "
                                 f"(root padded to 6, YYMMDD, C/P, 8-digit strike in thousandths)")
        tail, root = s[-15:], s[:-15].strip()
        ymd, right, strike = tail[:6], tail[6], tail[7:]
        if not root or not root.isalpha():
            raise OccSymbolError(f"OCC symbol {symbol!r}: root {root!r} must be letters")
        try:
            root_enum = Root(root)
        except ValueError:
            raise OccSymbolError(f"OCC symbol {symbol!r}: unknown root {root!r}; "
                                 f"known roots: {', '.join(r.value for r in Root)}") from None
        if not ymd.isdigit() or not strike.isdigit():
            raise OccSymbolError(f"OCC symbol {symbol!r}: expiry {ymd!r} and strike {strike!r} must be digits")
        if right not in ("C", "P"):
            raise OccSymbolError(f"OCC symbol {symbol!r}: right {right!r} must be C or P")
        try:
            expiry = date(2000 + int(ymd[:2]), int(ymd[2:4]), int(ymd[4:]))
        except ValueError as exc:
            raise OccSymbolError(f"OCC symbol {symbol!r}: bad expiry {ymd!r} ({exc})") from None
        if int(strike) == 0:
            raise OccSymbolError(f"OCC symbol {symbol!r}: strike is zero")
        return cls(root=root_enum, expiry=expiry, strike=int(strike) / 1000, right=Right(right), **kwargs)

    def __str__(self) -> str:
        return f"{self.root.value} {self.expiry:%Y-%m-%d} {self.strike:g}{self.right.value} {self.settlement.value}"
