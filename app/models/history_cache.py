"""The VaR return history of the window's store, read once per market day and shared by every panel.

One :class:`HistoryCache` per window (``AppContext.history_cache``): the Portfolio & risk panel and the order
ticket's what-if read the same history, so the store is read once a day for both, never past the feed's time.
"""

from __future__ import annotations

import threading
from datetime import date
from typing import Any

__all__ = ["NO_STORE", "HistoryCache"]

#: Why there is no history without a database, and how to get one.
NO_STORE = ("VaR: no database open for the return history (open one holding the SPX and VIX daily bars: "
            "`spx-data import --format daily-bars sp500.csv.gz vix.csv.gz`)")


class HistoryCache:
    """The return history for VaR, read from ``store`` at most once per market day (any thread, locked).

    ``get`` returns ``(history or None, reason)``; a store too short for VaR (``HistoryError``) is remembered for
    the day as the reason, so a missing history costs one read a day, not one per job."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._key: tuple[int, date] | None = None
        self._value: tuple[Any | None, str] = (None, "")

    def get(self, store: Any | None, day: date, end_ns: int) -> tuple[Any | None, str]:
        """The history up to ``end_ns`` (market clock: a replayed day never sees later closes), read once per
        (store, ``day``)."""
        if store is None:
            return None, NO_STORE
        with self._lock:
            key = (id(store), day)
            if key != self._key:
                self._value = _load_history(store, end_ns)
                self._key = key
            return self._value


def _load_history(store: Any, end_ns: int) -> tuple[Any | None, str]:
    from spx_core.risk.history import HistoryError, return_history

    try:
        return return_history(store, end_ns=end_ns), ""
    except HistoryError as exc:  # a store without enough daily bars: VaR says why, the rest still shows
        return None, f"VaR: {exc}"
