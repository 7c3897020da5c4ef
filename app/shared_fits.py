"""SharedFits: the window's one :class:`~spx_core.surface.fit_memo.FitMemo`, created on first use in a worker.

Panels (surface, scanner, market, builder) pass ``shared.memo`` into their worker jobs instead of fitting
on their own, so a snapshot is fitted once however many views show it. The memo module imports the
surface package (~0.3 s), so it is imported by the first worker that asks, never on the GUI thread at
start-up. A panel outside a window (tests, a standalone view) has its own.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from spx_core.surface.fit_memo import FitMemo

__all__ = ["SharedFits"]


class SharedFits:
    """Holds one FitMemo, created thread-safely by the first caller of :meth:`memo`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._memo: FitMemo | None = None

    def memo(self) -> FitMemo:
        """The memo (any thread; the first call imports and creates it)."""
        with self._lock:
            if self._memo is None:
                from spx_core.surface.fit_memo import FitMemo

                self._memo = FitMemo()
            return self._memo

    @property
    def created(self) -> FitMemo | None:
        """The memo if a worker has created it (for status and tests), else None; never imports."""
        return self._memo
