"""Our :class:`OptionContract` <-> IB's ``Option`` / ``Bag`` contracts, and qualification of order legs.

IB names an SPX option by symbol SPX and trading class SPX (monthly, AM) or SPXW (weeklies/dailies, PM). On a
third Friday both classes list the same strikes, so a request without the trading class is ambiguous: we always
send it. Qualification is judged by the contract objects themselves (both libraries fill a qualified contract's
conId in place) and never by the returned list, whose shape differs: ib_insync drops an unknown or ambiguous
contract from the list (later positions shift), ib_async returns None in its slot.

TWS answers no contract-details request for a BAG: a combo is built from its qualified legs' conIds.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import replace
from datetime import date

from spx_core.domain.contracts import OccSymbolError, OptionContract, Right, Root
from spx_core.execution.broker import BrokerError
from spx_core.execution.ib.compat import ib_module

__all__ = ["ContractError", "QualifiedCache", "bag_for", "from_ib", "ib_symbol", "qualify", "to_ib_option"]

#: The underlying symbol IB lists each root's options under.
_SYMBOL = {Root.SPX: "SPX", Root.SPXW: "SPX", Root.XSP: "XSP", Root.SPY: "SPY"}


class ContractError(BrokerError):
    """A contract IB does not know (or cannot tell apart); says which and what to check."""


def ib_symbol(root: Root | str) -> str:
    return _SYMBOL[Root(root)]


def to_ib_option(contract: OptionContract, *, exchange: str = "SMART"):
    """The IB ``Option`` for one of our contracts (trading class always set: SPX and SPXW share strikes)."""
    ib = ib_module()
    option = ib.Option(symbol=ib_symbol(contract.root), lastTradeDateOrContractMonth=f"{contract.expiry:%Y%m%d}",
                       strike=contract.strike, right=contract.right.value, exchange=exchange,
                       multiplier=str(contract.multiplier), currency=contract.currency,
                       tradingClass=contract.trading_class or contract.root.value)
    if contract.con_id:
        option.conId = int(contract.con_id)
    return option


def from_ib(ib_contract) -> OptionContract | None:
    """Our contract for an IB option contract (None for anything else: BAG, index, stock, unknown roots).

    The OCC local symbol is authoritative when present; otherwise the fields (trading class as root)."""
    if getattr(ib_contract, "secType", "") != "OPT":
        return None
    con_id = int(ib_contract.conId) or None
    multiplier = int(float(ib_contract.multiplier or 100))
    local = (ib_contract.localSymbol or "").strip()
    if local:
        try:
            found = OptionContract.from_occ(ib_contract.localSymbol, multiplier=multiplier)
            return _with_ids(found, con_id, ib_contract.tradingClass or found.root.value)
        except OccSymbolError:
            pass
    root_name = ib_contract.tradingClass or ib_contract.symbol
    try:
        root = Root(root_name)
        expiry_text = ib_contract.lastTradeDateOrContractMonth.split()[0]
        expiry = date(int(expiry_text[:4]), int(expiry_text[4:6]), int(expiry_text[6:8]))
        found = OptionContract(root=root, expiry=expiry, strike=float(ib_contract.strike),
                               right=Right(ib_contract.right[:1]), multiplier=multiplier)
    except (ValueError, IndexError):
        return None
    return _with_ids(found, con_id, root_name)


def _with_ids(contract: OptionContract, con_id: int | None, trading_class: str) -> OptionContract:
    return replace(contract, con_id=con_id, trading_class=trading_class)


class QualifiedCache:
    """conIds of contracts qualified before (a conId never changes for a listed option)."""

    def __init__(self) -> None:
        self._con_ids: dict[OptionContract, int] = {}

    def get(self, contract: OptionContract) -> int | None:
        return contract.con_id or self._con_ids.get(contract)

    def put(self, contract: OptionContract, con_id: int) -> None:
        self._con_ids[contract] = con_id


async def qualify(ib, contracts: Sequence[OptionContract], *, exchange: str = "SMART", timeout: float = 10.0,
                  cache: QualifiedCache | None = None):
    """Qualified IB ``Option`` contracts, one per input in order; raises :class:`ContractError` naming the first
    contract IB did not resolve to exactly one listing."""
    cache = cache if cache is not None else QualifiedCache()
    options = [to_ib_option(c, exchange=exchange) for c in contracts]
    todo = []
    for contract, option in zip(contracts, options, strict=True):
        con_id = cache.get(contract)
        if con_id:
            option.conId = con_id
        else:
            todo.append(option)
    if todo:
        try:
            await asyncio.wait_for(ib.qualifyContractsAsync(*todo), timeout)
        except TimeoutError:
            raise ContractError(f"IB did not answer the contract lookup of {len(todo)} legs within {timeout:g} s; "
                                f"check the TWS connection") from None
    for contract, option in zip(contracts, options, strict=True):
        if not option.conId:  # unqualified in both libraries, whatever the returned list looked like
            raise ContractError(f"IB does not list {contract} (trading class {option.tradingClass}); "
                                f"check the expiry, strike and root")
        cache.put(contract, int(option.conId))
    return options


def bag_for(legs: Sequence[tuple[object, int]], *, exchange: str = "SMART", currency: str = "USD"):
    """A BAG combo from ``(qualified IB option, signed ratio)`` legs: + bought, - sold per unit."""
    ib = ib_module()
    first = legs[0][0]
    combo = [ib.ComboLeg(conId=int(opt.conId), ratio=abs(int(ratio)), action="BUY" if ratio > 0 else "SELL",
                         exchange=exchange) for opt, ratio in legs]
    return ib.Contract(secType="BAG", symbol=first.symbol, exchange=exchange, currency=currency, comboLegs=combo)
