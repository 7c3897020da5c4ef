"""LivePanel: the shared machinery of panels fed by the market-data feed (chain, surface, scanner, risk...).

What a panel writes (three hooks; everything else is here):
    ``job(batch) -> Job | None``    GUI thread: bind what the worker needs (the snapshot plus any GUI
                                    state such as the selected expiry) into a :class:`Job`; None skips.
    ``compute`` (the Job's function) worker thread: a pure function of its arguments, never a widget.
    ``show_result(result)``         GUI thread: put the result on screen.
Optional: ``on_tick()`` (per refresh on the GUI thread, e.g. fading highlights), ``health()`` for the
self-test, ``status_message(text)`` to show a one-line status, ``create(context)`` to build from the
settings, ``bind(context)`` to publish or follow selections, ``menu_actions()`` for the Data menu.

What the base does (in the spirit of ``spx_core.marketdata.source.PacedSource``):
    * :meth:`on_batch` only buffers: the latest snapshot and the union of changed rows since the last
      job (``layout_changed`` sticks until taken), so it is safe at any batch rate.
    * A refresh timer takes the buffered batch and runs the job in a :class:`JobRunner` (one at a time;
      while one runs the input keeps buffering, so a slow job never queues work).
    * Nothing is computed or painted while the panel is not on screen (closed dock, hidden tab, dock
      tabbed behind another, minimised window): the timer stops on hide (it idles while covered) and
      the panel catches up with the latest batch when shown.
    * Work is only done when the data moved (:meth:`moved`; by default a batch with no changed row,
      no layout change and the same underlying price is not recomputed); ``refresh(full=True)`` forces
      a job, e.g. after the user picked another expiry.
    * A failing job or ``show_result`` is logged and shown as one status line and fails the self-test
      until the next good result; the panel keeps running.
    * :meth:`shutdown` (also on close) stops the timer and the worker; idempotent, never blocks.

Events (Qt signals):
    computed(float): a result was shown; the job's worker seconds.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from PySide6.QtCore import QTimer, Signal, Slot
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QWidget

from app.shared_fits import SharedFits
from app.widgets.job_runner import JobRunner
from spx_core.marketdata.source import QuoteBatch

if TYPE_CHECKING:
    from app.context import AppContext

__all__ = ["Job", "LivePanel", "coalesce", "data_moved"]

log = logging.getLogger(__name__)

_NO_ROWS = np.zeros(0, np.int64)


@dataclass(frozen=True, slots=True)
class Job:
    """A worker-thread call: ``fn(*args)``; args are immutable snapshots of what the job reads."""

    fn: Callable[..., object]
    args: tuple[object, ...] = ()


def coalesce(older: QuoteBatch | None, newer: QuoteBatch) -> QuoteBatch:
    """One batch equivalent to ``older`` then ``newer``: the newer snapshot, the union of changed rows.

    Companion batches (other underlyings, e.g. the simulator's SPY) are the newer's, their changed rows not
    merged: a panel showing one re-reads its rows.

    A layout change in either makes the union a layout change (row indices are no longer comparable).
    """
    if older is None:
        return newer
    if older.layout_changed or newer.layout_changed:
        return QuoteBatch(newer.snapshot, _NO_ROWS, True, newer.sequence, newer.companions)
    changed = np.union1d(np.asarray(older.changed, np.int64), np.asarray(newer.changed, np.int64))
    return QuoteBatch(newer.snapshot, changed, False, newer.sequence, newer.companions)


def data_moved(previous: QuoteBatch, batch: QuoteBatch) -> bool:
    """True when ``batch`` (coalesced since ``previous``) differs from it in anything but the clock."""
    return (batch.layout_changed or len(batch.changed) > 0
            or batch.snapshot.underlying_price != previous.snapshot.underlying_price)


class LivePanel(QWidget):
    """Base of every panel fed by the feed; see the module docstring for the contract."""

    computed = Signal(float)

    def __init__(self, parent: QWidget | None = None, *, job_name: str, refresh_seconds: float) -> None:
        super().__init__(parent)
        self._pending: QuoteBatch | None = None  # buffered since the last job was started
        self._force = False  # recompute even if the data did not move (a selection changed)
        self._latest: QuoteBatch | None = None  # the last batch a job was started on
        self._job_started_at = -float("inf")  # time.monotonic() when the last job was prepared (job_spacing)
        self._last_error = ""
        self._closed = False
        self.results = 0  # results shown (the self-test waits for a live panel to refresh)
        self.last_compute_seconds = float("nan")
        self.context: AppContext | None = None
        self._own_fits: SharedFits | None = None
        self._runner = JobRunner(job_name, self)
        self._runner.finished.connect(self._on_result)
        self._runner.failed.connect(self._report_error)
        self._timer = QTimer(self)
        self._timer.setInterval(max(int(refresh_seconds * 1000), 1))
        self._timer.timeout.connect(self._on_timer)

    # --- hooks for subclasses ---------------------------------------------------------------------------
    @classmethod
    def create(cls, context: AppContext) -> LivePanel:
        """Build the panel for the main window (override to read settings from ``context``)."""
        return cls()

    def bind(self, context: AppContext) -> None:
        """Join the app context (override to connect selections; call super)."""
        self.context = context

    @property
    def shared_fits(self) -> SharedFits:
        """The window's shared surface fits (the panel's own outside a window): pass it into a job and
        call ``shared_fits.memo().fit(snapshot)`` in the worker for the snapshot's chain IVs and fitted surface."""
        if self.context is not None:
            return self.context.fits
        if self._own_fits is None:
            self._own_fits = SharedFits()
        return self._own_fits

    def job(self, batch: QuoteBatch) -> Job | None:
        """GUI thread: the worker job for this (coalesced) batch, or None to skip it."""
        raise NotImplementedError

    def show_result(self, result: Any) -> None:
        """GUI thread: show a job's result."""
        raise NotImplementedError

    def moved(self, previous: QuoteBatch, batch: QuoteBatch) -> bool:
        """Is ``batch`` worth a job after ``previous`` (the last batch computed)? Default: any quote or
        the underlying changed. Override to refit less often (e.g. an expensive fit); layout changes
        and forced refreshes never ask."""
        return data_moved(previous, batch)

    def job_spacing(self) -> float:
        """Least wall seconds between the starts of two jobs on new data (forced refreshes and layout changes
        never wait). Default 0: a result shown starts the next job at once when data arrived meanwhile (the
        chain). An expensive, slowly changing view (scanner, market state) returns its refresh interval so it
        does not recompute back to back on a live feed."""
        return 0.0

    def on_tick(self) -> None:
        """GUI thread, every refresh while shown (before a job is started)."""

    def health(self) -> tuple[bool, str]:
        """(ok, message) for the self-test when no error is pending (override)."""
        return self.results > 0, f"{self.objectName()}: {self.results} results shown"

    def status_message(self, text: str) -> None:
        """Show a one-line status (errors included); override to put it in a label."""

    def menu_actions(self) -> list[QAction]:
        """Actions (with shortcuts) the main window lists in its Data menu."""
        return []

    # --- feeding ------------------------------------------------------------------------------------------
    @Slot(object)
    def on_batch(self, batch: QuoteBatch) -> None:
        """Buffer the batch (cheap: safe at any rate); the refresh timer applies it."""
        self._pending = coalesce(self._pending, batch)

    @property
    def latest_batch(self) -> QuoteBatch | None:
        """The last batch a job was started on (None before the first)."""
        return self._latest

    def refresh(self, *, full: bool = False) -> bool:
        """Start a job on the buffered batch now if shown and idle (True when started).

        ``full``: recompute from the latest data even if it did not move and re-read every row (a
        selection changed); when no job can start now, the next tick does it.
        """
        if full:
            self._force = True
            base = self._pending or self._latest
            if base is not None:
                self._pending = QuoteBatch(base.snapshot, _NO_ROWS, True, base.sequence, base.companions)
        if self._pending is None or self._runner.busy or self._closed or not self.on_screen():
            return False
        batch, self._pending = self._pending, None
        force, self._force = self._force, False
        if not (force or batch.layout_changed or self._latest is None
                or (time.monotonic() - self._job_started_at >= self.job_spacing() and self.moved(self._latest, batch))):
            self._pending = batch  # the shown result stands; keep the changes until the data moved enough
            return False
        self._latest = batch
        self._job_started_at = time.monotonic()
        try:
            job = self.job(batch)
        except Exception as exc:  # a panel bug must not stop the refresh loop
            log.exception("%s: preparing a job failed", self.objectName())
            self._report_error(f"{self.objectName()}: {type(exc).__name__}: {exc}")
            return False
        return job is not None and self._runner.submit(job.fn, *job.args)

    def on_screen(self) -> bool:
        """Shown to the user: visible (not a closed dock or hidden tab), its window not minimised, and
        not covered (a dock tabbed behind another stays "visible" but has an empty visible region)."""
        return self.isVisible() and not self.window().isMinimized() and not self.visibleRegion().isEmpty()

    def _on_timer(self) -> None:
        if not self.isVisible() or self.window().isMinimized():
            self._timer.stop()  # showEvent restarts it
            return
        if self.visibleRegion().isEmpty():
            return  # covered: no show event comes when it is uncovered, so keep the (idle) timer
        self.on_tick()
        self.refresh()

    def showEvent(self, event: Any) -> None:
        super().showEvent(event)
        if not self._closed:
            self._timer.start()
            QTimer.singleShot(0, self, self._catch_up)  # context: dropped if the panel is deleted first

    def hideEvent(self, event: Any) -> None:
        # also sent (spontaneous) to every child when the window is minimised; restoring sends showEvent
        super().hideEvent(event)
        self._timer.stop()

    def _catch_up(self) -> None:
        if not self._closed and self.on_screen():
            self.refresh()

    @Slot(object)
    def _on_result(self, result: Any) -> None:
        t0 = time.perf_counter()
        try:
            self.show_result(result)
        except Exception as exc:
            log.exception("%s: showing a result failed", self.objectName())
            self._report_error(f"{self.objectName()}: {type(exc).__name__}: {exc}")
            return
        self._last_error = ""
        self.results += 1
        seconds = getattr(result, "seconds", float("nan"))
        self.last_compute_seconds = seconds
        log.debug("%s shown in %.1f ms", self.objectName(), (time.perf_counter() - t0) * 1e3)
        self.computed.emit(seconds)
        self.refresh()  # data that arrived meanwhile starts now rather than on the next tick

    @Slot(str)
    def _report_error(self, message: str) -> None:
        self._last_error = message
        log.error("%s", message)
        self.status_message(message)

    # --- health and lifetime ----------------------------------------------------------------------------
    @property
    def last_error(self) -> str:
        return self._last_error

    def self_test_status(self) -> tuple[bool, str]:
        """(ok, message): the last error if any, else :meth:`health`."""
        if self._last_error:
            return False, self._last_error
        return self.health()

    @property
    def running(self) -> bool:
        """The refresh timer is active (False when hidden or shut down)."""
        return self._timer.isActive()

    def shutdown(self) -> None:
        """Stop the refresh timer and the worker (idempotent, does not block)."""
        self._closed = True
        self._timer.stop()
        self._runner.shutdown()

    def closeEvent(self, event: Any) -> None:
        self.shutdown()
        super().closeEvent(event)
