"""Desktop notifications and the alert sound: a system-tray balloon per new alert, where the desktop has a tray.

An offscreen or tray-less session (CI, a bare X server, some Wayland desktops) has no tray: the notifier then
says so once in the log and does nothing more; alerts still show in the panel and the status bar.
"""

from __future__ import annotations

import logging

from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QApplication, QSystemTrayIcon

__all__ = ["DesktopNotifier"]

log = logging.getLogger(__name__)

#: How long a balloon stays up (ms); critical ones until the desktop's own maximum.
BALLOON_MS = 8_000

_ICONS = {"critical": QSystemTrayIcon.MessageIcon.Critical, "warning": QSystemTrayIcon.MessageIcon.Warning}


class DesktopNotifier:
    """Shows alerts as tray balloons and beeps; degrades silently (one log line) without a tray."""

    def __init__(self, icon: QIcon | None = None) -> None:
        self._tray: QSystemTrayIcon | None = None
        self._icon = icon
        self._told = False
        #: balloons shown (title, message): what a test reads
        self.shown: list[tuple[str, str]] = []

    @property
    def available(self) -> bool:
        return QSystemTrayIcon.isSystemTrayAvailable() and QSystemTrayIcon.supportsMessages()

    def notify(self, title: str, message: str, severity: str = "info") -> bool:
        """Show a balloon; False (and one log line the first time) when the desktop has no tray."""
        if not self.available:
            if not self._told:
                self._told = True
                log.info("no system tray on this desktop: alerts show in the Alerts panel and the status bar only")
            return False
        if self._tray is None:
            app = QApplication.instance()
            self._tray = QSystemTrayIcon(self._icon or (app.windowIcon() if app is not None else QIcon()))
            self._tray.setToolTip("SPX Terminal")
            self._tray.show()
        self._tray.showMessage(title, message, _ICONS.get(severity, QSystemTrayIcon.MessageIcon.Information),
                               BALLOON_MS)
        self.shown.append((title, message))
        return True

    @staticmethod
    def beep() -> None:
        """The platform's alert sound (nothing where there is none)."""
        QApplication.beep()

    def close(self) -> None:
        if self._tray is not None:
            self._tray.hide()
            self._tray.deleteLater()
            self._tray = None
