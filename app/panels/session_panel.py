"""SessionPanel: a live panel that follows the window's trading session (``AppContext.trading``).

The blotter, the positions and the ticket each show what one :class:`~app.trading.TradingSession` says and
must swap to the next one (a restart of the order service, a change of broker) without a stale connection:
:meth:`SessionPanel.set_session` disconnects the old session's signals, connects the new one's (the
subclass names them in :meth:`session_slots`) and then calls :meth:`session_changed` to repaint.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from app.panels.base import LivePanel

if TYPE_CHECKING:
    from app.context import AppContext
    from app.trading import TradingSession

__all__ = ["NO_SESSION", "SessionPanel"]

#: What a panel says while the window has no order service.
NO_SESSION = "no order service: the database is not open yet"


class SessionPanel(LivePanel):
    """A :class:`LivePanel` bound to the context's trading session (``self.session``; None until there is one)."""

    session: TradingSession | None = None

    def bind(self, context: AppContext) -> None:
        super().bind(context)
        context.trading_changed.connect(self.set_session)
        self.set_session(context.trading)

    def set_session(self, session: TradingSession | None) -> None:
        """Follow ``session`` (None: no order service)."""
        if self.session is not None:
            for name, slot in self.session_slots().items():
                getattr(self.session, name).disconnect(slot)
        self.session = session
        if session is not None:
            for name, slot in self.session_slots().items():
                getattr(session, name).connect(slot)
        self.session_changed(session)

    def session_slots(self) -> dict[str, Callable]:
        """The session's signals this panel listens to: signal name -> slot (override)."""
        return {}

    def session_changed(self, session: TradingSession | None) -> None:
        """Show ``session``'s state (connected already; None: none); override."""
