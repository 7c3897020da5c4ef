"""The position check run after every (re)connect: TWS's positions of our account against the book.

The broker runs :meth:`PositionWatch.check` at the end of its reconciliation, so the executions the reconnect
brought are booked first, and (:meth:`PositionWatch.every`) every ``position_check_interval`` seconds while
connected: a trade entered in TWS by hand or an assignment shows without waiting for a drop. The comparison
itself is :func:`~spx_core.execution.ib.positions.compare_positions`;
its result is reported, never applied: the book stays what our fills say.

Events (plain callbacks; a failing callback is logged and does not stop the others):
    ``on_check(cb(PositionCheck))``: after every check (also kept in ``last``). No check runs while no ``book``
        is set.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable

from spx_core.execution.ib.positions import PositionCheck, compare_positions
from spx_core.portfolio.positions import Position

__all__ = ["POSITION_CHECK_TRIES", "PositionWatch"]

log = logging.getLogger(__name__)

#: IB's positions are read again (once) when an execution arrived while they were read and booked: the two
#: sides would otherwise be compared at different moments.
POSITION_CHECK_TRIES = 2

#: Our positions of an account (the store's), the side TWS's positions are compared with.
BookReader = Callable[[str], Iterable[Position]]


class PositionWatch:
    """See the module docstring.

    Args:
        ib: the client library's ``IB`` (``reqPositionsAsync``).
        account: the account to compare ("" = every account TWS reports).
        timeout: seconds TWS has to answer the positions request.
        settle_wait: seconds at most to wait for executions still waiting for their commission report (they reach
            the book only once reported).
        executions_pending: whether any execution still waits to be booked.
        book: our positions of an account; None: no check runs.
    """

    def __init__(self, ib: object, *, account: Callable[[], str], timeout: float, settle_wait: float,
                 executions_pending: Callable[[], bool], book: BookReader | None = None) -> None:
        self.ib = ib
        self.book = book
        self.last: PositionCheck | None = None
        self._account = account
        self._timeout = timeout
        self._settle_wait = settle_wait
        self._pending = executions_pending
        self._cbs: list[Callable[[PositionCheck], None]] = []
        self._running = False
        self._executions = 0
        self._timer: asyncio.Task | None = None

    def on_check(self, cb: Callable[[PositionCheck], None]) -> Callable[[], None]:
        self._cbs.append(cb)
        return lambda: self._cbs.remove(cb) if cb in self._cbs else None

    def every(self, interval: float, *, connected: Callable[[], bool]) -> None:
        """Check every ``interval`` seconds (0: never) while ``connected()``, on the running loop; started once,
        it lives across reconnects until :meth:`stop`."""
        if interval > 0 and (self._timer is None or self._timer.done()):
            self._timer = asyncio.get_running_loop().create_task(self._periodic(interval, connected),
                                                                 name="ib-position-check")

    def stop(self) -> None:
        """End the periodic check."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    async def _periodic(self, interval: float, connected: Callable[[], bool]) -> None:
        while True:
            await asyncio.sleep(interval)
            if connected():  # a drop skips the turn: the reconnect's reconciliation checks anyway
                try:
                    await self.check()
                except Exception:  # a bug in one check must not end the schedule
                    log.exception("IB position check failed")

    def execution_seen(self) -> None:
        """An execution report arrived (the broker's execDetails tap)."""
        self._executions += 1

    async def check(self) -> PositionCheck | None:
        """Compare TWS's positions of our account with the book; report the result.

        None when there is no book, a check is already under way (the library keeps one positions request at a
        time), or TWS did not answer within the timeout (logged; the check runs again after the next reconnect).
        """
        if self.book is None or self._running:
            return None
        self._running = True
        try:
            positions = await self._read_positions()
            account = self._account()
            check = compare_positions(positions, self.book(account), account=account)
        except (TimeoutError, ConnectionError) as exc:
            log.warning("IB position check incomplete (%s); it runs again after the next reconnect",
                        str(exc) or f"no answer within {self._timeout:g} s")
            return None
        finally:
            self._running = False
        self.last = check
        log.log(logging.INFO if check.ok else logging.WARNING, "%s", check.message)
        for cb in list(self._cbs):
            try:
                cb(check)
            except Exception:
                log.exception("IB position check callback %r failed", cb)
        return check

    async def _read_positions(self) -> list:
        positions: list = []
        for attempt in range(POSITION_CHECK_TRIES):
            seen = self._executions
            positions = await asyncio.wait_for(self.ib.reqPositionsAsync(), self._timeout)
            deadline = time.monotonic() + self._settle_wait
            while self._pending() and time.monotonic() < deadline:
                await asyncio.sleep(0.02)
            if self._executions == seen:
                break
            log.info("IB position check: an execution arrived meanwhile; reading the positions again (%d)",
                     attempt + 1)
        return positions
