"""Trade decisions: what the automation (issue 10) decided at one instant, and why, with the data it saw.

A decision is a plain record; the store keeps every one (TRADE and SKIP alike) so a session can be audited:
which strategy, which snapshot (id + checksum), which configuration and limit profile, and the order it
sent if it traded.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

__all__ = ["Action", "DecisionError", "TradeDecision"]


class DecisionError(ValueError):
    """A decision record is malformed."""


class Action(StrEnum):
    TRADE = "TRADE"
    SKIP = "SKIP"


@dataclass(frozen=True, slots=True)
class TradeDecision:
    """One decision of one strategy.

    Attributes:
        time_ns: when it was decided (market clock, UTC ns).
        strategy: the strategy's name.
        action: "TRADE" or "SKIP".
        reasons: why, one plain sentence each (a SKIP names what failed).
        snapshot_id / snapshot_checksum: the chain snapshot decided on (the checksum is the one that matters).
        config_hash: hash of the strategy configuration in force.
        limit_profile: the risk-limit profile in force ("" when none).
        order_ref: the order sent (TRADE), or None.
    """

    time_ns: int
    strategy: str
    action: str
    reasons: tuple[str, ...] = ()
    snapshot_id: int | None = None
    snapshot_checksum: str | None = None
    config_hash: str = ""
    limit_profile: str = ""
    order_ref: str | None = None

    def __post_init__(self) -> None:
        try:
            action = Action(str(self.action).upper())
        except ValueError:
            raise DecisionError(f"decision of {self.strategy!r}: action {self.action!r} must be "
                                f"TRADE or SKIP") from None
        object.__setattr__(self, "action", action.value)
        if isinstance(self.reasons, str):  # one reason given as a string: not a tuple of characters
            object.__setattr__(self, "reasons", (self.reasons,))
        else:
            object.__setattr__(self, "reasons", tuple(str(r) for r in self.reasons))
        if not self.strategy:
            raise DecisionError("a decision needs the strategy's name")
        if action is Action.SKIP and self.order_ref is not None:
            raise DecisionError(f"decision of {self.strategy!r}: a SKIP sends no order (order_ref "
                                f"{self.order_ref!r})")

    @property
    def traded(self) -> bool:
        return self.action == Action.TRADE.value
