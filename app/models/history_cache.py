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
    the day as the reason, so a missing history costs one read a day, not one per job. With ``past`` (the window's
    :class:`~app.sim_history.SimulatedPast`) the simulated market's past stands in for a store short of SPX bars;
    a source switch (its ``generation``) reads again."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._key: tuple[int, date, int | None] | None = None
        self._value: tuple[Any | None, str] = (None, "")

    def get(self, store: Any | None, day: date, end_ns: int, past: Any | None = None) -> tuple[Any | None, str]:
        """The history up to ``end_ns`` (market clock: a replayed day never sees later closes), read once per
        (store, ``day``, source)."""
        simulating = past is not None and past.config is not None
        if store is None and not simulating:
            return None, NO_STORE
        with self._lock:
            key = (id(store), day, past.generation if simulating else None)
            if key != self._key:
                self._value = _load_history(store, day, end_ns, past if simulating else None)
                self._key = key
            return self._value


def _load_history(store: Any | None, day: date, end_ns: int, past: Any | None) -> tuple[Any | None, str]:
    from spx_core.risk.history import HistoryError, return_history

    try:
        sim = None
        if past is not None:
            sim = past.replacing(store.load_bars("SPX", None, end_ns) if store is not None else None, day)
        if sim is not None:  # simulated, never written to the store; the report's note names it
            return return_history(store, end_ns=end_ns, bars=(sim.spx, sim.vix, sim.label)), ""
        if store is None:
            return None, NO_STORE
        return return_history(store, end_ns=end_ns), ""
    except HistoryError as exc:  # a store without enough daily bars: VaR says why, the rest still shows
        return None, f"VaR: {exc}"
