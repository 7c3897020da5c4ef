"""``spx-terminal``: the GUI entry point (qasync: one event loop for Qt and asyncio).

``spx-terminal [--db PATH] [--source sim|replay] [--seed N] [--self-test SECONDS]``
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from collections.abc import Sequence

_T0 = time.perf_counter()

__all__ = ["main", "parse_args"]


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="spx-terminal", description="SPX/SPXW options terminal")
    p.add_argument("--db", metavar="PATH", help="SQLite database (default: the user data folder's)")
    p.add_argument("--source", choices=("sim", "replay"), default="sim",
                   help="start on the simulated market (default) or replay the latest stored session")
    p.add_argument("--seed", type=int, metavar="N", help="simulator seed (default: from settings)")
    p.add_argument("--self-test", type=float, metavar="SECONDS", dest="self_test",
                   help="open the window, run the feed, check chain and surface populate, print, exit")
    args = p.parse_args(argv)
    if args.seed is not None and args.seed < 0:
        p.error(f"--seed {args.seed} must be >= 0")
    if args.self_test is not None and not args.self_test > 0:
        p.error("--self-test SECONDS must be > 0")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    from PySide6.QtWidgets import QApplication

    from app.logs import ErrorReporter, setup_logging

    log_path = setup_logging()
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("SPX Terminal")
    app.setOrganizationName("SPXTerminal")
    reporter = ErrorReporter(show=args.self_test is None)
    import qasync

    with asyncio.Runner(loop_factory=lambda: qasync.QEventLoop(app)) as runner:
        reporter.install(runner.get_loop())
        return runner.run(_run(app, args, reporter, log_path))


async def _run(app, args: argparse.Namespace, reporter, log_path) -> int:
    import logging

    from app.main_window import MainWindow, apply_theme
    from app.settings import load_settings

    settings = load_settings()
    if args.seed is not None:
        settings = settings.with_changes(seed=args.seed)
    apply_theme(app, settings.theme)
    window = MainWindow(settings, source=args.source, db_path=args.db)
    if os.environ.get("SPX_TERMINAL_REPORT_PAINT"):
        window.installEventFilter(_FirstPaint(window))
    quit_event = asyncio.Event()
    app.setQuitOnLastWindowClosed(False)  # closing the window ends main() cleanly instead of the loop
    app.aboutToQuit.connect(quit_event.set)
    window.closed.connect(quit_event.set)
    window.show()
    logging.getLogger("app").info("window shown %.3fs after start; log %s", time.perf_counter() - _T0, log_path)
    window.warm_up_pricing = True
    feed_task = asyncio.ensure_future(window.start_feed())
    try:
        if args.self_test is not None:
            from app.self_test import run_self_test

            code = await run_self_test(window, args.self_test, reporter)
            window.close()
            return code
        await quit_event.wait()
        return 0
    finally:
        if not feed_task.done():
            feed_task.cancel()
        await window.shutdown()


class _FirstPaint:
    """Benchmark hook: print the seconds from process start to the first paint, then quit."""

    def __new__(cls, window):  # a QObject subclass built lazily so importing app.main stays Qt-free
        from PySide6.QtCore import QEvent, QObject, QTimer

        class Filter(QObject):
            def eventFilter(self, obj, event):  # noqa: N802 (Qt API)
                if event.type() == QEvent.Type.Paint and not getattr(self, "done", False):
                    self.done = True
                    print(f"FIRST_PAINT {time.perf_counter() - _T0:.4f}", flush=True)
                    QTimer.singleShot(0, window.close)
                return False

        return Filter(window)


if __name__ == "__main__":
    sys.exit(main())
