"""Server -> client message layouts of the fake IB Gateway, per server version.

Each function returns the field list of one message; the layouts mirror what ib_insync 0.9.86 and ib_async 2.1
decode (``decoder.py``), with the version thresholds those decoders use: contractDetails drops its version field
and mdSizeMultiplier from 164 and adds three size fields; error adds advancedOrderRejectJson from 166; openOrder adds
duration (159), postToAts (160), autoCancelParent (162), five peg fields (170) and drops faProfile from 177;
execDetails adds pendingPriceRevision from 178. Exact field counts matter: the decoders unpack into fixed tuples and
drop the whole message (logging "Error handling fields") on a mismatch.
"""

from __future__ import annotations

from collections.abc import Sequence

from tests.fakes.ib_book import Greeks, Instrument
from tests.fakes.ib_codec import UNSET_DOUBLE_TEXT, WireContract, WireLeg

UNSET_INTEGER = 2**31 - 1  # TWS's "unset" int (displaySize of a plain order)
# TWS reports deltaNeutralOrderType as the string "None", which makes the decoders read the delta-neutral fields
# that follow; a client re-sending that order object sends them too (the placeOrder parser skips them).
DELTA_NEUTRAL_TYPE = "None"


def error(version: int, req_id: int, code: int, text: str) -> list[object]:
    fields: list[object] = [4, 2, req_id, code, text]
    if version >= 166:
        fields.append("")  # advancedOrderRejectJson
    return fields


def contract_details(version: int, req_id: int, inst: Instrument, exchange: str, market_rule: str) -> list[object]:
    """One contractDetails (10) message for ``inst`` as listed on ``exchange``."""
    head: list[object] = [10]
    if version < 164:
        head.append(8)  # message version, gone from 164
    fields = head + [
        req_id, inst.symbol, inst.sec_type,
        inst.last_trade_date,
        inst.strike, inst.right, exchange, inst.currency, inst.local_symbol,
        inst.trading_class, inst.trading_class, inst.con_id, inst.min_tick,
    ]
    if version < 164:
        fields.append(1)  # obsolete mdSizeMultiplier
    under_con_id = 416904 if inst.sec_type == "OPT" else 0
    fields += [
        inst.multiplier, "ACTIVETIM,AD,ADJUST,ALERT,ALLOC,COND,LMT,MKT,STP,STPLMT,TRAIL",
        "SMART,CBOE" if inst.sec_type == "OPT" else inst.exchange, 1, under_con_id, inst.long_name,
        inst.exchange if inst.sec_type == "STK" else "",
        inst.expiry.strftime("%Y%m") if inst.expiry else "", "", "", "", "US/Eastern",
        "", "", "", "",  # tradingHours, liquidHours, evRule, evMultiplier
        0,  # no secIds
        1, "SPX" if inst.sec_type == "OPT" else "", "IND" if inst.sec_type == "OPT" else "",
        market_rule, inst.last_trade_date, "",  # aggGroup, underSymbol, underSecType, rules, realExpiry, stockType
    ]
    if version >= 164:
        fields += [1, 1, 1]  # minSize, sizeIncrement, suggestedSizeIncrement
    return fields


def sec_def_opt_params(req_id: int, exchange: str, under_con_id: int, trading_class: str, multiplier: str,
                       expiries: Sequence[str], strikes: Sequence[float]) -> list[object]:
    return [75, req_id, exchange, under_con_id, trading_class, multiplier, len(expiries), *expiries,
            len(strikes), *strikes]


def tick_price(req_id: int, tick_type: int, price: float, size: float) -> list[object]:
    return [1, 6, req_id, tick_type, price, size, 0]


def tick_size(req_id: int, tick_type: int, size: float) -> list[object]:
    return [2, 6, req_id, tick_type, size]


def tick_option(req_id: int, tick_type: int, g: Greeks, *, iv: float, price: float, no_vega_theta: bool
                ) -> list[object]:
    """tickOptionComputation (21): 12 fields, no version; -1/-2 are IB's "not computed"."""
    vega, theta = (-2.0, -2.0) if no_vega_theta else (g.vega, g.theta)
    return [21, req_id, tick_type, 1, iv, g.delta, price, g.pv_dividend, g.gamma, vega, theta, g.und_price]


def order_status(order_id: int, status: str, filled: float, remaining: float, avg_price: float, perm_id: int,
                 last_price: float, client_id: int) -> list[object]:
    return [3, order_id, status, filled, remaining, avg_price, perm_id, 0, last_price, client_id, "", 0.0]


def _contract_block(c: WireContract) -> list[object]:
    return [c.con_id, c.symbol, c.sec_type, c.last_trade_date, c.strike if c.strike else 0.0, c.right,
            c.multiplier, c.exchange, c.currency, c.local_symbol, c.trading_class]


def _legs_block(legs: Sequence[WireLeg]) -> list[object]:
    fields: list[object] = [len(legs)]
    for leg in legs:
        fields += [leg.con_id, leg.ratio, leg.action, leg.exchange, leg.open_close, leg.short_sale_slot,
                   leg.designated_location, leg.exempt_code]
    return fields


def open_order(version: int, o, margins: Sequence[str] | None = None, commission: str = "",
               warning: str = "") -> list[object]:
    """openOrder (5) for an ``OrderRecord``-like ``o``; ``margins`` = 9 strings for a what-if answer."""
    margins = list(margins) if margins is not None else [UNSET_DOUBLE_TEXT] * 9
    fields: list[object] = [5, o.order_id, *_contract_block(o.echo)]
    fields += [o.action, o.quantity, o.order_type, o.lmt_price, o.aux_price, o.tif, "", o.account, "O", 0,
               o.order_ref, o.client_id, o.perm_id, int(o.outside_rth), 0, 0.0, "",
               "",  # sharesAllocation (deprecated)
               "", "", ""]  # faGroup, faMethod, faPercentage
    if version < 177:
        fields.append("")  # faProfile
    fields += ["", "", "", "", "", 0, "", -1, 0, "", "", "", "", "",  # modelCode .. stockRangeUpper
               UNSET_INTEGER, 0, 0, 0, "", 3, 0, 0, "", 0, 0, "", 0,  # displaySize .. volatilityType
               DELTA_NEUTRAL_TYPE, "", 0, "", "", "", "", 0, 0, ""]  # "None" and the 8 fields it brings, as TWS
    fields += [0, 0, "", "", "", "", ""]  # continuousUpdate .. comboLegsDescrip
    fields += _legs_block(o.echo.legs)
    fields += [0, 0]  # orderComboLegs, smartComboRoutingParams
    fields += ["", "", "", ""]  # scaleInitLevelSize, scaleSubsLevelSize, scalePriceIncrement, hedgeType
    fields += [0, "", "IB", 0, 0, ""]  # optOutSmartRouting, clearingAccount/Intent, notHeld, dncPresent, algo
    fields += [0, int(o.what_if), o.status, *margins, commission, "", "", "USD" if commission else "", warning,
               0, 0]
    fields += [0]  # conditions
    fields += ["None", "", "", "", "", "", "", 0, "", "", "", "", 1, 0, "", 0]  # adjustedOrderType .. priceMgmt
    if version >= 159:
        fields.append("")  # duration
    if version >= 160:
        fields.append(0)  # postToAts
    if version >= 162:
        fields.append(0)  # autoCancelParent
    if version >= 170:
        fields += ["", "", "", "", ""]
    return fields


def completed_order(version: int, o) -> list[object]:
    """completedOrder (101); no orderId in this layout, the permId identifies the order."""
    fields: list[object] = [101, *_contract_block(o.echo)]
    fields += [o.action, o.quantity, o.order_type, o.lmt_price, o.aux_price, o.tif, "", o.account, "O", 0,
               o.order_ref, o.perm_id, int(o.outside_rth), 0, 0.0, "", "", "", ""]
    if version < 177:
        fields.append("")  # faProfile
    fields += ["", "", "", "", "", 0, "", -1, "", "", "", "", "", UNSET_INTEGER, 0, 0, "", 3, 0, "", 0,
               DELTA_NEUTRAL_TYPE, "", 0, 0, 0, ""]  # deltaNeutral "None" and its 4 fields in this layout
    fields += [0, 0, "", "", ""]  # continuousUpdate .. comboLegsDescrip
    fields += _legs_block(o.echo.legs)
    fields += [0, 0, "", "", "", ""]  # orderComboLegs, params, scale x3, hedgeType
    fields += ["", "IB", 0, 0, ""]  # clearingAccount, clearingIntent, notHeld, dncPresent, algoStrategy
    fields += [0, o.status, 0, 0]  # solicited, status, randomizeSize, randomizePrice
    fields += [0]  # conditions
    fields += ["", "", "", 1, 0, "", o.filled, 0, 0, "", 0, 0, 0, o.completed_time, o.completed_status]
    if version >= 170:
        fields += ["", "", "", "", ""]
    return fields


def exec_details(version: int, req_id: int, e) -> list[object]:
    """execDetails (11) for an ``Execution``-like ``e``: 31 fields (+ pendingPriceRevision from 178)."""
    fields = [11, req_id, e.order_id, *_contract_block(e.contract), e.exec_id, e.time, e.account,
              e.contract.exchange, e.side, e.shares, e.price, e.perm_id, e.client_id, 0, e.cum_qty, e.avg_price,
              e.order_ref, "", "", "", 1]
    if version >= 178:
        fields.append(0)
    return fields


def commission_report(exec_id: str, commission: float, realized_pnl: float | None) -> list[object]:
    return [59, 1, exec_id, commission, "USD",
            UNSET_DOUBLE_TEXT if realized_pnl is None else realized_pnl, UNSET_DOUBLE_TEXT, ""]


def _inst_block(inst: Instrument) -> list[object]:
    return [inst.con_id, inst.symbol, inst.sec_type, inst.last_trade_date, inst.strike, inst.right,
            inst.multiplier]


def position(account: str, inst: Instrument, qty: float, avg_cost: float) -> list[object]:
    """position (61): TWS leaves the exchange empty, so the contract cannot be sent back as an order as is."""
    return [61, 3, account, *_inst_block(inst), "", inst.currency, inst.local_symbol,
            inst.trading_class, qty, avg_cost]


def portfolio(account: str, inst: Instrument, qty: float, mark: float, value: float, avg_cost: float,
              unrealized: float, realized: float) -> list[object]:
    return [7, 8, *_inst_block(inst), "", inst.currency, inst.local_symbol, inst.trading_class,
            qty, mark, value, avg_cost, unrealized, realized, account]
