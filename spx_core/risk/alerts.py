"""Alerts: what a rule raises (:class:`AlertDraft`) and what the store keeps (:class:`Alert`).

A draft names a condition by a stable ``key`` (rule + subject, e.g. ``"limit_breach:max_delta"``): the
:class:`~spx_core.storage.alerts_repo.AlertRepository` folds a repeat of a key that is still unacknowledged into
the stored alert (count and last time), so a restart or a flapping rule does not flood the trader.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

__all__ = ["Alert", "AlertDraft", "Severity"]


class Severity(StrEnum):
    """How loudly an alert asks for attention (ordered: INFO < WARNING < CRITICAL)."""

    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        """0, 1, 2 for info, warning, critical (compare severities by rank, never by their text)."""
        return _RANK[self]


_RANK = {Severity.INFO: 0, Severity.WARNING: 1, Severity.CRITICAL: 2}


@dataclass(frozen=True, slots=True)
class AlertDraft:
    """A condition a rule found, before it is stored.

    Attributes:
        key: stable de-duplication key, ``"<rule>:<subject>"`` (the same condition gives the same key across
            restarts).
        rule: the rule's name ("limit_warning", "short_strike", "order_rejected", ...).
        severity: how loud.
        message: one plain line a trader reads.
    """

    key: str
    rule: str
    severity: Severity
    message: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "severity", Severity(self.severity))
        if not self.key or not self.rule:
            raise ValueError("an alert needs a key and a rule; name the condition as '<rule>:<subject>'")
        if "\n" in self.message:
            raise ValueError(f"alert {self.key}: the message must be one line")


@dataclass(frozen=True, slots=True)
class Alert:
    """A stored alert.

    Attributes:
        id: the store's row id.
        key, rule, severity, message: as drafted (message and severity of the latest repeat).
        first_ns: when it was first raised (market clock, UTC ns).
        last_ns: when it was last raised (a repeat while unacknowledged moves it).
        count: how many times it was raised while unacknowledged (1 for a fresh alert).
        acknowledged_ns: when the trader acknowledged it (None while open).
    """

    id: int
    key: str
    rule: str
    severity: Severity
    message: str
    first_ns: int
    last_ns: int
    count: int = 1
    acknowledged_ns: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "severity", Severity(self.severity))

    @property
    def is_open(self) -> bool:
        """True until acknowledged."""
        return self.acknowledged_ns is None
