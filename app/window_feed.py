"""The main window's data side: open the database, list sessions, start and steer the data source.

A mixin of :class:`app.main_window.MainWindow` (its ``feed``, ``toolbar``, ``status``, ``store``, ``settings``,
``db_path``, ``initial_source``): the async steps :meth:`open_store` and :meth:`start_feed` run on the qasync loop
after the first paint; the toolbar's speed, pause, seek and skip-gaps controls land in the plain methods here.
The window's Qt slots (``asyncSlot``) stay on the QMainWindow class itself.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from app.settings import save_settings
from spx_core.marketdata.source import Seekable, SourceKind, SpeedControl

log = logging.getLogger("app.main_window")

__all__ = ["FeedWindowMixin"]


class FeedWindowMixin:
    """Database, sessions and the data source of the window (see the module docstring)."""

    async def open_store(self) -> Any:
        """Open (and migrate) the database off the GUI thread; refresh the replayable sessions."""
        if self.store is None:
            from spx_core.storage import Store

            self.store = await asyncio.to_thread(Store.open, self.db_path)
        self.start_trading()
        await self.refresh_sessions()
        return self.store

    async def refresh_sessions(self) -> None:
        """Re-read the stored sessions (one grouped query on the session index, off the GUI thread), so
        sessions recorded or imported while the app runs can be picked."""
        if self.store is None:
            return
        sessions = await asyncio.to_thread(self.store.list_sessions)
        self.toolbar.set_sessions(sessions)

    async def start_feed(self) -> None:
        """Start the source chosen on the command line (replay falls back to sim with a message)."""
        from spx_core.domain.calendar import default_calendar

        await asyncio.to_thread(default_calendar().load)  # runs after the first paint
        if self.warm_up_pricing:
            from spx_core.pricing import start_background_warm_up

            # a new install compiles the pricing kernels (~14 s): meanwhile panels price on the numpy
            # path instead of showing an empty chain until the compile is done
            start_background_warm_up()  # pandas-heavy: off the GUI thread, after paint
        self.status.refresh()
        try:
            await self.open_store()
        except Exception as exc:  # a broken database must not stop the simulated market
            log.exception("cannot open database %s", self.db_path)
            self.status.showMessage(f"Database {self.db_path} unavailable: {exc}", 15_000)
        self.toolbar.start_session_refresh()
        if SourceKind(self.initial_source) is SourceKind.REPLAY:
            names = self.toolbar.session_names()
            if names:
                await self._start(SourceKind.REPLAY, names[-1])  # the latest; the toolbar picks another
                return
            self.status.showMessage(f"No recorded sessions to replay in {self.db_path}: record one with "
                                    f"`spx-data simulate --db {self.db_path}` or import files with `spx-data "
                                    f"import`; running the simulated market", 15_000)
        elif SourceKind(self.initial_source) is SourceKind.IB:
            await self._start(SourceKind.IB, "")  # a TWS that cannot be reached is the source's ERROR status
            return
        await self._start(SourceKind.SIM, "")

    async def _start(self, kind: SourceKind, session: str) -> None:
        if kind is SourceKind.REPLAY:
            skip = self.toolbar.skip_gaps_action.isChecked()
            await self.feed.replay(self.store, session, speed=1.0, skip_gaps=skip)
            self.toolbar.set_mode(kind, session=session, speed=1.0, skip_gaps=skip)
        elif kind is SourceKind.IB:
            from app.feed import ib_data_settings

            self.toolbar.set_mode(kind)  # before connecting: the choice shows while TWS answers
            await self.feed.ib(ib_data_settings(self.settings), strike_window=self.settings.strike_window)
        else:
            await self.feed.simulated(seed=self.settings.seed, speed=self.settings.speed)
            self.toolbar.set_mode(SourceKind.SIM, speed=self.settings.speed)
        self._show_pace()

    def _set_speed(self, speed: float) -> None:
        src = self.feed.source
        if isinstance(src, SpeedControl):
            src.set_speed(speed)
            self.toolbar.set_speed(speed)
            self._show_pace()
        if self._mode() is SourceKind.SIM and speed in (1.0, 10.0, 60.0) and speed != self.settings.speed:
            self.settings = self.settings.with_changes(speed=speed)
            save_settings(self.settings)

    def _set_paused(self, paused: bool) -> None:
        src = self.feed.source
        if src is not None:
            src.pause() if paused else src.resume()
        self._show_pace()

    def _seek(self, index: int) -> None:
        src = self.feed.source
        if isinstance(src, Seekable):
            src.seek(index)

    def _set_skip_gaps(self, skip: bool) -> None:
        from spx_core.marketdata.replay import (
            ReplaySource,  # loaded already when a replay runs
        )

        src = self.feed.source
        if isinstance(src, ReplaySource):
            src.set_skip_gaps(skip)

    def _show_pace(self) -> None:
        """Stated and measured speed to the toolbar and status bar (measured by the source, per batch)."""
        src = self.feed.source
        if isinstance(src, SpeedControl):
            achieved = src.achieved_speed
            self.toolbar.set_achieved(src.speed, achieved)
            self.status.set_pace(src.speed, achieved)
        else:
            self.status.set_pace(None)
