"""Commissions and fees of an option fill: a schedule whose every figure is a setting with its source.

Figures (``docs/market_rules.md``, "Costs"; IBKR Pro tiered pricing for US index options; fees change, so
each is a field to update, not a constant to hunt for):

    IBKR commission per contract by premium (points per contract):
        >= 0.10 -> $0.65;  0.05 <= p < 0.10 -> $0.50;  < 0.05 -> $0.25;  minimum $1.00 per order.
    Cboe customer fee, SPX and SPXW only: $0.45 per contract at premiums >= $1.00, $0.36 below.
    OCC clearing fee: $0.02 per contract.  Options Regulatory Fee (ORF): about $0.02 per contract, revised
    several times a year (``orf_as_of`` says which revision the figure is).  FINRA CAT fee: about $0.005.
    FINRA Trading Activity Fee (TAF): $0.00279 per contract SOLD (IBKR's options pricing page passes it through
    as "0.00279 * Quantity Sold"); bought contracts pay none.

Commission vs fees, as IB reports them: ``commission`` is IBKR's own charge (with the order minimum's top-up);
``fees`` are the third-party pass-throughs (exchange, clearing, regulatory). SPY and XSP legs pay no Cboe SPX
fee (their exchange fees vary by venue and are not modelled).

The $1.00 minimum applies per order across all of its fills: :meth:`FeeSchedule.order_commission` charges
each fill so that the order's commission so far is ``max(sum of per-contract commissions, minimum)``. The
first fill pays the top-up; later fills pay only what lifts the total past the minimum (a 1-lot vertical:
leg 1 pays $1.00, leg 2 $0.30, order total $1.30 = 2 x $0.65). Dollar amounts are rounded to 1e-6 to keep
binary-float dust out of the ledger; nothing else is rounded.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from spx_core.domain.contracts import OptionContract, Root

__all__ = ["DEFAULT_FEES", "FeeSchedule"]


def _money(x: float) -> float:
    return round(x + 0.0, 6)


@dataclass(frozen=True, slots=True)
class FeeSchedule:
    """Per-contract charges in dollars; premium thresholds in index points per contract.

    Attributes:
        commission: IBKR tiered commission at premiums >= ``commission_mid_below`` (interactivebrokers.com,
            options commissions, US, "IBKR Pro tiered": $0.65 for the first 10,000 contracts a month).
        commission_mid: IBKR commission for premiums in [``commission_low_below``, ``commission_mid_below``).
        commission_low: IBKR commission for premiums below ``commission_low_below``.
        commission_mid_below / commission_low_below: the premium thresholds ($0.10, $0.05).
        order_minimum: IBKR minimum commission per order ($1.00), applied across the order's fills.
        cboe_fee / cboe_fee_low: Cboe customer fee for SPX/SPXW at premiums >= ``cboe_fee_low_below`` / below
            it (IBKR's Cboe fee table; Cboe fee codes effective 2024-11-01).
        cboe_fee_low_below: the Cboe fee's premium threshold ($1.00).
        cboe_fee_roots: roots the Cboe SPX fee applies to (SPX, SPXW).
        occ_fee: OCC clearing fee per contract (OCC schedule: $0.02 up to 2,750 contracts per trade).
        orf_fee: Options Regulatory Fee per contract (OCC-collected, revised during the year).
        orf_as_of: the date the ``orf_fee`` figure was taken (check it against the current rate).
        cat_fee: FINRA Consolidated Audit Trail fee per contract (about $0.005).
        taf_fee: FINRA Trading Activity Fee per contract sold (none on contracts bought).
    """

    commission: float = 0.65
    commission_mid: float = 0.50
    commission_low: float = 0.25
    commission_mid_below: float = 0.10
    commission_low_below: float = 0.05
    order_minimum: float = 1.00
    cboe_fee: float = 0.45
    cboe_fee_low: float = 0.36
    cboe_fee_low_below: float = 1.00
    cboe_fee_roots: frozenset[Root] = field(default=frozenset({Root.SPX, Root.SPXW}))
    occ_fee: float = 0.02
    orf_fee: float = 0.02
    orf_as_of: date = date(2024, 11, 1)
    cat_fee: float = 0.005
    taf_fee: float = 0.00279

    def __post_init__(self) -> None:
        for name in ("commission", "commission_mid", "commission_low", "commission_mid_below",
                     "commission_low_below", "order_minimum", "cboe_fee", "cboe_fee_low", "cboe_fee_low_below",
                     "occ_fee", "orf_fee", "cat_fee", "taf_fee"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and value >= 0):
                raise ValueError(f"FeeSchedule.{name} must be a number >= 0 (dollars or points), got {value!r}")
        if self.commission_low_below > self.commission_mid_below:
            raise ValueError(f"FeeSchedule: commission_low_below {self.commission_low_below} must not exceed "
                             f"commission_mid_below {self.commission_mid_below}")
        object.__setattr__(self, "cboe_fee_roots", frozenset(Root(r) for r in self.cboe_fee_roots))

    # --- per fill ----------------------------------------------------------------------------------------------
    def commission_rate(self, price: float) -> float:
        """IBKR commission per contract at premium ``price`` (points per contract)."""
        p = abs(price)
        if p < self.commission_low_below:
            return self.commission_low
        if p < self.commission_mid_below:
            return self.commission_mid
        return self.commission

    def fee_rate(self, contract: OptionContract, price: float, *, sold: bool = False) -> float:
        """Third-party fees per contract (exchange + clearing + regulatory; the TAF when ``sold``) at premium
        ``price``."""
        exchange = 0.0
        if contract.root in self.cboe_fee_roots:
            exchange = self.cboe_fee_low if abs(price) < self.cboe_fee_low_below else self.cboe_fee
        return exchange + self.occ_fee + self.orf_fee + self.cat_fee + (self.taf_fee if sold else 0.0)

    def charges(self, contract: OptionContract, quantity: int, price: float, *,
                sold: bool = False) -> tuple[float, float]:
        """``(commission, fees)`` in dollars of one leg fill (``sold``: a sale), before the order minimum."""
        q = abs(int(quantity))
        return _money(q * self.commission_rate(price)), _money(q * self.fee_rate(contract, price, sold=sold))

    # --- per order ---------------------------------------------------------------------------------------------
    def order_commission(self, base_before: float, charged_before: float, base: float) -> float:
        """What one fill of an order is charged, given the order's earlier fills.

        ``base_before``: the per-contract commissions of the order's earlier fills (no minimum);
        ``charged_before``: what they were charged; ``base``: this fill's per-contract commission.
        The order's total after this fill is ``max(base_before + base, order_minimum)``.
        """
        return _money(max(max(base_before + base, self.order_minimum) - charged_before, 0.0))

    def estimate(self, legs: list[tuple[OptionContract, int, float]]) -> tuple[float, float]:
        """``(commission, fees)`` of a whole order filled at once: ``(contract, contracts, price)`` per leg,
        contracts negative for a leg sold."""
        base = fees = 0.0
        for contract, quantity, price in legs:
            c, f = self.charges(contract, quantity, price, sold=quantity < 0)
            base += c
            fees += f
        return self.order_commission(0.0, 0.0, base) if legs else 0.0, _money(fees)


#: The IBKR Pro tiered schedule of ``docs/market_rules.md``.
DEFAULT_FEES = FeeSchedule()
