"""Domain model: contracts, expiry clock, quotes and flags, chain snapshots. No Qt, no I/O."""

from spx_core.domain.calendar import ET, UTC, MarketCalendar, MarketSession, default_calendar, time_to_expiry
from spx_core.domain.contracts import ROOTS, OccSymbolError, OptionContract, Right, Root, Settlement
from spx_core.domain.quotes import QualityThresholds, Quote, QuoteFlag, describe_flags, quality_flags
from spx_core.domain.snapshot import COLUMNS, ChainSnapshot, ExpirySlice, SnapshotError

__all__ = [
    "ET", "UTC", "MarketCalendar", "MarketSession", "default_calendar", "time_to_expiry",
    "ROOTS", "OccSymbolError", "OptionContract", "Right", "Root", "Settlement",
    "QualityThresholds", "Quote", "QuoteFlag", "describe_flags", "quality_flags",
    "COLUMNS", "ChainSnapshot", "ExpirySlice", "SnapshotError",
]
