"""The account as IB values it: net liquidation, buying power and margin from TWS's account values, day P&L from
its P&L subscription (``reqPnL``: TWS's own daily P&L of the account, pushed as it changes).

TWS pushes an account's values after the subscription every connect makes (``reqAccountUpdates``) and whenever
they change; the client library keeps the latest per (account, tag, currency). They are IB's figures for the whole
account (positions this app did not place included): the paper starting cash of the app's settings says nothing
about an IB account, so the positions panel's account line takes these when the broker is IB.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from spx_core.execution.ib.compat import unset_to_nan

__all__ = ["IbAccount", "account_figures", "watch_pnl"]


@dataclass(frozen=True, slots=True)
class IbAccount:
    """The account as IB values it (dollars, the account's base currency; NaN where TWS did not say).

    Attributes:
        net_liquidation: IB's NetLiquidation (cash + every position at IB's marks).
        buying_power: IB's BuyingPower.
        maintenance_margin: IB's MaintMarginReq.
        day_pnl: IB's daily P&L of the account (NaN until the P&L subscription answered).
    """

    net_liquidation: float
    buying_power: float
    maintenance_margin: float
    day_pnl: float = math.nan


#: IbAccount field <- TWS account value tag.
_TAGS = {"net_liquidation": "NetLiquidation", "buying_power": "BuyingPower", "maintenance_margin": "MaintMarginReq"}
#: Currencies of the account-level values (a per-currency breakdown comes under each currency's own code).
_CURRENCIES = ("USD", "BASE")


def account_figures(ib: object, account: str) -> IbAccount | None:
    """``account``'s figures from the library's latest account values (None before TWS sent its net liquidation)."""
    if not account:
        return None
    values: dict[str, float] = {}
    for v in ib.accountValues(account):
        if v.tag in _TAGS.values() and v.currency in _CURRENCIES and v.tag not in values:
            values[v.tag] = unset_to_nan(v.value)
    if "NetLiquidation" not in values:
        return None
    day = next((unset_to_nan(p.dailyPnL) for p in ib.pnl(account) if not p.modelCode), math.nan)
    return IbAccount(**{name: values.get(tag, math.nan) for name, tag in _TAGS.items()}, day_pnl=day)


def watch_pnl(ib: object, account: str) -> None:
    """Subscribe to ``account``'s daily P&L unless subscribed (a reconnect starts the library afresh: again)."""
    if account and not any(p.account == account and not p.modelCode for p in ib.pnl(account)):
        ib.reqPnL(account)
