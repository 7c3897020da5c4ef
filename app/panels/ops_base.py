"""OpsPanel: a live panel that follows the window's alerts/automation service (``AppContext.ops``).

Like :class:`~app.panels.session_panel.SessionPanel` for the trading session: :meth:`set_ops` disconnects the old
service's signals, connects the new one's (named by :meth:`ops_slots`) and calls :meth:`ops_changed` to repaint.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from app.panels.base import LivePanel

if TYPE_CHECKING:
    from app.context import AppContext

__all__ = ["NO_OPS", "OpsPanel"]

#: What a panel says while the window has no order service (alerts and automation live with it).
NO_OPS = "no order service: the database is not open yet"


class OpsPanel(LivePanel):
    """A :class:`LivePanel` bound to the context's OpsSession (``self.ops``; None until there is one)."""

    ops: Any = None

    def bind(self, context: AppContext) -> None:
        super().bind(context)
        context.ops_changed.connect(self.set_ops)
        self.set_ops(context.ops)

    def set_ops(self, ops: Any) -> None:
        if self.ops is not None:
            for (source, name), slot in self.ops_slots(self.ops).items():
                try:
                    getattr(source, name).disconnect(slot)
                except (RuntimeError, TypeError):  # the old service was deleted first
                    pass
        self.ops = ops
        if ops is not None:
            for (source, name), slot in self.ops_slots(ops).items():
                getattr(source, name).connect(slot)
        self.ops_changed(ops)

    def ops_slots(self, ops: Any) -> dict[tuple[Any, str], Callable]:
        """(object, signal name) -> slot this panel listens to on ``ops`` (override)."""
        return {}

    def ops_changed(self, ops: Any) -> None:
        """Show ``ops``'s state (None: none); override."""
