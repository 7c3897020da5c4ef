"""The only ticket to a broker: an :class:`ApprovedOrder`, which only the pre-trade gate can issue.

The architecture's rule is that no order reaches a broker without passing the gate, by construction:

- :class:`ApprovedOrder` cannot be constructed by calling it; it is minted by :func:`mint`, which needs the
  key that exactly one module (the gate, :mod:`spx_core.execution.gate`) registers at import time;
  a second registration is refused, so no other module can hold the key.
- Every broker's ``submit`` / ``modify`` is :class:`~spx_core.execution.broker.Broker`'s final method that
  takes an ApprovedOrder, checks it, and *consumes* it: an approval sends one request once (a retry or a
  replayed click needs a new approval, so the idempotency of the order reference is never tested by luck).
- An approval expires ``APPROVAL_TTL_NS`` after the gate issued it (market clock): a verdict on an old
  market is not a verdict on this one.
"""

from __future__ import annotations

import threading

from spx_core.execution.orders import OrderRequest

__all__ = ["ApprovedOrder", "GateBypassError", "register_minter", "mint", "APPROVAL_TTL_NS"]

#: How long (market-clock ns) an approval stays valid: long enough for the paper broker's latency and the
#: IB round trip, short enough that a verdict never outlives the market it was given on.
APPROVAL_TTL_NS = 30 * 1_000_000_000


class GateBypassError(RuntimeError):
    """Something tried to reach a broker without a fresh approval from the pre-trade gate."""


_lock = threading.Lock()
_minter_key: object | None = None


def register_minter(key: object) -> None:
    """Called once, by the gate module at import. Any later call is refused."""
    global _minter_key
    with _lock:
        if _minter_key is not None:
            raise GateBypassError("the pre-trade gate is already registered; no other module may issue approvals")
        _minter_key = key


class ApprovedOrder:
    """A request the gate approved, with the names of the checks it passed. Single use."""

    __slots__ = ("request", "checks", "approved_ns", "_used")

    def __init__(self, *args: object, **kwargs: object) -> None:
        raise GateBypassError("an ApprovedOrder is issued only by PreTradeGate.check(); send orders through "
                              "the order service")

    def consume(self, now_ns: int | None = None) -> OrderRequest:
        """The approved request, once. Raises GateBypassError if used before or expired."""
        with _lock:
            if self._used:
                raise GateBypassError(f"order {self.request.ref}: this approval was already used; ask the gate again")
            if now_ns is not None and now_ns - self.approved_ns > APPROVAL_TTL_NS:
                raise GateBypassError(f"order {self.request.ref}: the gate's approval is "
                                      f"{(now_ns - self.approved_ns) / 1e9:.0f} s old; ask the gate again")
            object.__setattr__(self, "_used", True)
        return self.request

    @property
    def used(self) -> bool:
        return self._used

    def __repr__(self) -> str:
        return f"ApprovedOrder({self.request.ref}, checks={list(self.checks)}, used={self._used})"


def mint(key: object, request: OrderRequest, checks: tuple[str, ...], approved_ns: int) -> ApprovedOrder:
    """Issue an approval (the gate's key only)."""
    if _minter_key is None or key is not _minter_key:
        raise GateBypassError("only the pre-trade gate issues approvals")
    if not isinstance(request, OrderRequest):
        raise GateBypassError(f"cannot approve {type(request).__name__}; the gate approves OrderRequest only")
    approved = object.__new__(ApprovedOrder)
    object.__setattr__(approved, "request", request)
    object.__setattr__(approved, "checks", tuple(checks))
    object.__setattr__(approved, "approved_ns", int(approved_ns))
    object.__setattr__(approved, "_used", False)
    return approved
