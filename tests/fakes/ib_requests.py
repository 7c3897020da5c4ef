"""Client -> server parsing of the fake IB Gateway: placeOrder's layout and contract lookup by (partial) spec.

placeOrder is read field by field in the order ``ib_insync.client.Client.placeOrder`` writes it (the same in
ib_async below server version 177, which drops faProfile), far enough to reach the ``whatIf`` flag: nLegs sits at
field index 35 for a BAG, followed by 8 fields per leg.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

from tests.fakes.ib_book import Instrument, OptionBook
from tests.fakes.ib_codec import FieldReader, WireContract

_RIGHTS = {"C": "C", "CALL": "C", "P": "P", "PUT": "P", "": ""}
_EXCHANGES = {"OPT": {"", "SMART", "CBOE"}, "IND": {"", "CBOE", "SMART"}, "STK": {"", "SMART", "ARCA"}}
BAG_LEGS_INDEX = 35


@dataclass(frozen=True, slots=True)
class PlacedOrder:
    """What one placeOrder message asked for."""

    order_id: int
    contract: WireContract
    action: str
    quantity: float
    order_type: str
    lmt_price: float | None
    aux_price: float | None
    tif: str
    account: str
    order_ref: str
    transmit: bool
    outside_rth: bool
    what_if: bool


def _opt_float(r: FieldReader) -> float | None:
    text = r.str()
    return float(text) if text else None


def parse_place_order(fields: list[str], version: int) -> PlacedOrder:
    r = FieldReader(fields, 1)
    order_id = r.int()
    contract = r.contract()
    r.skip(2)  # secIdType, secId
    action, quantity, order_type = r.str(), r.float(), r.str()
    lmt_price, aux_price = _opt_float(r), _opt_float(r)
    tif = r.str()
    r.skip(1)  # ocaGroup
    account = r.str()
    r.skip(2)  # openClose, origin
    order_ref = r.str()
    transmit = r.str() != "0"
    r.skip(6)  # parentId, blockOrder, sweepToFill, displaySize, triggerMethod, outsideRth
    outside_rth = fields[r.pos - 1] == "1"
    r.skip(1)  # hidden
    if contract.sec_type == "BAG":
        assert r.pos == BAG_LEGS_INDEX, r.pos
        contract.legs = r.order_legs()
        r.skip(r.int())  # orderComboLegs prices
        r.skip(2 * r.int())  # smartComboRoutingParams
    r.skip(7)  # '', discretionaryAmt, goodAfterTime, goodTillDate, faGroup, faMethod, faPercentage
    if version < 177:
        r.skip(1)  # faProfile
    r.skip(22)  # modelCode .. volatilityType
    delta_neutral_type = r.str()
    r.skip(1)  # deltaNeutralAuxPrice
    if delta_neutral_type:
        r.skip(8)
    r.skip(6)  # continuousUpdate .. scaleSubsLevelSize
    increment = r.float()
    if 0 < increment < sys.float_info.max:
        r.skip(7)
    r.skip(3)  # scaleTable, activeStartTime, activeStopTime
    if r.str():  # hedgeType
        r.skip(1)
    r.skip(4)  # optOutSmartRouting, clearingAccount, clearingIntent, notHeld
    if r.bool():  # deltaNeutralContract
        r.skip(3)
    if r.str():  # algoStrategy
        r.skip(2 * r.int())
    r.skip(1)  # algoId
    what_if = r.bool()
    return PlacedOrder(order_id, contract, action, quantity, order_type, lmt_price, aux_price, tif, account,
                       order_ref, transmit, outside_rth, what_if)


def match_instruments(book: OptionBook, c: WireContract) -> list[Instrument]:
    """Every listed instrument the (partial) spec fits, as reqContractDetails would return them."""
    if c.con_id:
        inst = book.by_con_id.get(c.con_id)
        return [inst] if inst is not None and _fits(inst, c, by_con_id=True) else []
    if not c.symbol and not c.local_symbol:
        return []
    candidates = book.instruments(c.symbol, c.last_trade_date) if c.sec_type == "OPT" else book.instruments()
    return [inst for inst in candidates if _fits(inst, c, by_con_id=False)]


def _fits(inst: Instrument, c: WireContract, *, by_con_id: bool) -> bool:
    if c.sec_type and c.sec_type != inst.sec_type:
        return False
    if c.exchange not in _EXCHANGES.get(inst.sec_type, {"", "SMART"}):
        return False
    if by_con_id:
        return True
    right = _RIGHTS.get(c.right.upper(), "?")
    checks = (
        (c.symbol, inst.symbol),
        (c.currency, inst.currency),
        (c.trading_class, inst.trading_class),
        (c.multiplier, inst.multiplier),
        (right, inst.right),
    )
    if any(want and want != have for want, have in checks):
        return False
    if c.local_symbol and c.local_symbol.replace(" ", "") != inst.local_symbol.replace(" ", ""):
        return False
    if c.last_trade_date and not inst.last_trade_date.startswith(c.last_trade_date):
        return False
    return not (c.strike and abs(c.strike - inst.strike) > 1e-6)
