"""Logging and the one excepthook: a rotating log file, and unhandled errors logged and shown."""

from __future__ import annotations

import logging
import sys
import traceback
from collections.abc import Callable
from logging.handlers import RotatingFileHandler
from pathlib import Path
from types import TracebackType
from typing import Any

from spx_core.paths import log_dir

__all__ = ["setup_logging", "ErrorReporter"]

log = logging.getLogger("app")


def setup_logging(level: int = logging.INFO) -> Path:
    """Log to ``<log folder>/spx-terminal.log`` (rotating, 5 x 2 MB) and warnings to stderr."""
    path = log_dir() / "spx-terminal.log"
    root = logging.getLogger()
    if not any(isinstance(h, RotatingFileHandler) for h in root.handlers):
        handler = RotatingFileHandler(path, maxBytes=2_000_000, backupCount=5, encoding="utf-8")
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root.addHandler(handler)
        console = logging.StreamHandler(sys.stderr)
        console.setLevel(logging.WARNING)
        console.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        root.addHandler(console)
    root.setLevel(level)
    return path


class ErrorReporter:
    """The app's single handler of unhandled exceptions (sys.excepthook and the asyncio loop).

    Each error is logged with its traceback, remembered in :attr:`errors`, and shown in a dialog
    unless ``show`` is False (self-test, tests), where the caller checks :attr:`errors` instead.
    """

    def __init__(self, *, show: bool = True, dialog: Callable[[str, str], None] | None = None) -> None:
        self.show = show
        self.errors: list[str] = []
        self._dialog = dialog or _message_box
        self._showing = False

    def install(self, loop: Any | None = None) -> None:
        sys.excepthook = self.excepthook
        if loop is not None:
            loop.set_exception_handler(self.loop_handler)

    def excepthook(self, exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
        if issubclass(exc_type, KeyboardInterrupt):
            sys.__excepthook__(exc_type, exc, tb)
            return
        text = "".join(traceback.format_exception(exc_type, exc, tb))
        self.report(f"{exc_type.__name__}: {exc}", text)

    def loop_handler(self, loop: Any, context: dict[str, Any]) -> None:
        exc = context.get("exception")
        if exc is None:
            self.report(context.get("message", "asyncio error"), repr(context))
        else:
            self.report(f"{type(exc).__name__}: {exc}",
                        "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)))

    def report(self, summary: str, details: str) -> None:
        log.error("unhandled error: %s\n%s", summary, details)
        self.errors.append(summary)
        if self.show and not self._showing:
            self._showing = True  # one dialog at a time: a failing timer must not stack hundreds
            try:
                self._dialog(summary, details)
            finally:
                self._showing = False


def _message_box(summary: str, details: str) -> None:
    from PySide6.QtWidgets import QApplication, QMessageBox

    if QApplication.instance() is None:
        return
    box = QMessageBox(QMessageBox.Icon.Critical, "SPX Terminal: unexpected error",
                      f"{summary}\n\nThe error was logged; the app keeps running.")
    box.setDetailedText(details)
    box.exec()
