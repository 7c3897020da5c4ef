"""The simulated market's simulated past, for the panels that read daily history (market state, VaR).

A simulated market comes with a simulated past: while the window's source is the simulator and the store holds
fewer SPX daily sessions than the market state needs (:data:`MIN_STORED_SESSIONS`, the trend rule's slow SMA),
the Market panel and the risk panel's VaR read
:func:`~spx_core.marketdata.simulator.history.simulated_daily_history` instead of the store's bars. The frames live
in memory only (never written into the user's database) and are named where the source is shown
("simulated history (750 days, seed 7)"). A replay or the IB source never uses them: the main window sets the
config only while the simulator runs (:meth:`SimulatedPast.set_config`).

Which session the history leads into: the simulation's first session. A config with a ``start`` fixes it; the
app's simulator starts at the wall clock, so the first session asked for (the first snapshot's) stands for it, and
holds for the whole run (the past does not move while the simulation runs on).

Thread use: :meth:`SimulatedPast.set_config` on the GUI thread, :meth:`SimulatedPast.replacing` in the workers.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from spx_core.marketdata.simulator import SimulatorConfig

__all__ = ["MIN_STORED_SESSIONS", "SimBars", "SimulatedPast", "stored_sessions"]


def _min_sessions() -> int:
    from spx_core.analytics.regimes import TrendRule

    return TrendRule().slow  # the market state's longest need: the trend rule's slow SMA (200 sessions)


#: Stored SPX daily sessions (before the snapshot's) from which the store's bars are used, simulator or not.
MIN_STORED_SESSIONS = _min_sessions()


@dataclass(frozen=True, slots=True, eq=False)
class SimBars:
    """The simulated past of one simulation: frames shaped as ``Store.load_bars`` returns them (read-only:
    every reader shares them), its label, and the session it leads into."""

    spx: Any
    vix: Any
    label: str
    end: date
    generation: int  # which simulation (set_config call) they belong to


def stored_sessions(bars: Any, session: date) -> int:
    """ET trading dates with a close in a ``Store.load_bars`` frame before ``session`` (daily or minute bars)."""
    if bars is None or len(bars) == 0:
        return 0
    from spx_core.analytics.bars import daily_closes

    closes = daily_closes(bars)
    return int(sum(1 for day in closes.index if day < session))


class SimulatedPast:
    """The window's simulated past (module docstring); one per window, shared by its panels (``AppContext``).

    Args:
        days: trading days of history generated.
    """

    def __init__(self, days: int | None = None) -> None:
        self._days = days  # None: the generator's default (resolved on first use: the window builds this early)
        self._lock = threading.Lock()
        self._config: SimulatorConfig | None = None
        self._generation = 0
        self._bars: SimBars | None = None
        self.generated = 0  # histories generated (tests: once per simulation)

    @property
    def days(self) -> int:
        if self._days is None:
            from spx_core.marketdata.simulator.history import DEFAULT_DAYS

            self._days = DEFAULT_DAYS
        return self._days

    @property
    def config(self) -> SimulatorConfig | None:
        """The running simulation's config; None while the source is not the simulator."""
        return self._config

    @property
    def generation(self) -> int:
        """Changes with every :meth:`set_config`: what a reader caches is stale when it differs."""
        return self._generation

    def set_config(self, config: SimulatorConfig | None) -> None:
        """A new source started: the simulator with ``config``, or another source (None). Forgets the past."""
        with self._lock:
            self._config, self._bars = config, None
            self._generation += 1

    def bars(self, session: date) -> SimBars | None:
        """The simulated past (generated on the first call of a simulation), or None when no simulator runs."""
        with self._lock:
            config, generation, bars = self._config, self._generation, self._bars
        if config is None:
            return None
        if bars is not None:
            return bars
        from spx_core.marketdata.simulator.history import (
            history_end,
            history_label,
            simulated_daily_history,
        )

        end = history_end(config) if config.start is not None else session
        spx, vix = simulated_daily_history(config, end=end, days=self.days)  # ~40 ms, in the worker
        bars = SimBars(spx, vix, history_label(config, self.days), end, generation)
        with self._lock:
            if self._generation != generation:  # the source switched meanwhile: the store answers this one read
                return None
            if self._bars is None:
                self._bars = bars
                self.generated += 1
            return self._bars

    def replacing(self, stored_spx: Any, session: date) -> SimBars | None:
        """The simulated past to read instead of the store's bars: while the simulator runs and ``stored_spx``
        (the store's SPX bars, None without a store) has fewer than :data:`MIN_STORED_SESSIONS` sessions before
        ``session``; None otherwise (read the store)."""
        if self._config is None or stored_sessions(stored_spx, session) >= MIN_STORED_SESSIONS:
            return None
        return self.bars(session)
