"""``spx-terminal``: the GUI entry point (qasync: one event loop for Qt and asyncio).

``spx-terminal [--db PATH] [--source sim|replay|ib] [--seed N] [--self-test SECONDS]``

Exit codes: 0 closed normally (or the self-test passed), 1 the self-test failed, 2 bad usage or a
path the app cannot use (``--db``, ``$SPX_TERMINAL_DB``, ``$SPX_TERMINAL_HOME``): one line on stderr
says which and how to fix it. A bad database path in the settings file is not fatal: the default
database is used and the fall-back is said on stderr and in the status bar.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

_T0 = time.perf_counter()

__all__ = ["main", "parse_args", "check_startup_paths", "startup_db"]

#: How long the status bar shows a startup note (a settings fall-back), in milliseconds.
NOTE_MS = 30_000


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    from spx_core.path_checks import db_argument

    p = argparse.ArgumentParser(prog="spx-terminal", description="SPX/SPXW options terminal")
    p.add_argument("--db", metavar="PATH", type=db_argument,
                   help="SQLite database (default: the user data folder's)")
    p.add_argument("--source", choices=("sim", "replay", "ib"), default="sim",
                   help="start on the simulated market (default), replay the latest stored session, or Interactive "
                        "Brokers market data (TWS / IB Gateway at the host, port and client id of the settings)")
    p.add_argument("--seed", type=int, metavar="N", help="simulator seed (default: from settings)")
    p.add_argument("--self-test", type=float, metavar="SECONDS", dest="self_test",
                   help="open the window, run the feed, check chain and surface populate, print, exit")
    args = p.parse_args(argv)
    if args.seed is not None and args.seed < 0:
        p.error(f"--seed {args.seed} must be >= 0")
    if args.self_test is not None and not args.self_test > 0:
        p.error("--self-test SECONDS must be > 0")
    return args


def check_startup_paths(cli_db: str | None) -> None:
    """Check, before anything writes there, the data and log folders and a ``--db`` given on the command line.

    Raises:
        DataPathError: ``$SPX_TERMINAL_HOME`` (or the user data folder) is a file or not writable, or
            ``--db`` is a folder or lies under a file or an unwritable folder.
    """
    from spx_core.path_checks import FLAG_DB, check_database_path, check_home

    check_home()
    if cli_db:
        check_database_path(Path(cli_db).expanduser(), FLAG_DB, must_exist=False)


def startup_db(cli_db: str | None, settings_db: str) -> Path:
    """The database the window opens: ``--db``, else the settings' path, else ``$SPX_TERMINAL_DB`` or the default.

    ``settings_db`` has been checked by :func:`app.settings.load_settings_with_notes` (a bad one is "").

    Raises:
        DataPathError: the chosen path cannot be used (the message names its source and the fix).
    """
    from spx_core.path_checks import check_database_path, database_origin

    from app.settings import SETTINGS_DB

    if cli_db:
        path, origin = database_origin(cli_db)
    elif settings_db:
        path, origin = database_origin(settings_db, SETTINGS_DB)
    else:
        path, origin = database_origin(None)
    return check_database_path(path, origin, must_exist=False)


def _fatal(exc: BaseException) -> int:
    print(f"spx-terminal: {exc}", file=sys.stderr)
    return 2


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    from spx_core.path_checks import DataPathError

    try:
        check_startup_paths(args.db)
    except DataPathError as exc:  # no window yet: stderr is the only place to say it
        return _fatal(exc)
    from PySide6.QtWidgets import QApplication

    from app.logs import ErrorReporter, setup_logging

    log_path = setup_logging()
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("SPX Terminal")
    app.setOrganizationName("SPXTerminal")
    reporter = ErrorReporter(show=args.self_test is None)
    with qasync_runner(app) as runner:
        reporter.install(runner.get_loop())
        return runner.run(_run(app, args, reporter, log_path))


def qasync_runner(app) -> asyncio.Runner:
    """A Runner on a qasync loop over ``app``, also registered as the thread's event loop: ib_insync looks the loop
    up through the policy (``asyncio.get_event_loop_policy().get_event_loop()``), which a Runner with a loop factory
    leaves unset, so its connect would wait on a second loop ("attached to a different loop")."""
    import qasync

    runner = asyncio.Runner(loop_factory=lambda: qasync.QEventLoop(app))
    asyncio.set_event_loop(runner.get_loop())
    return runner


async def _run(app, args: argparse.Namespace, reporter, log_path) -> int:
    import logging

    from spx_core.path_checks import DataPathError

    from app.main_window import MainWindow, apply_theme
    from app.settings import load_settings_with_notes

    settings, notes = load_settings_with_notes()  # a fall-back is logged (stderr) and shown once the window is
    try:
        db_path = startup_db(args.db, settings.db_path)
    except DataPathError as exc:  # $SPX_TERMINAL_DB: as explicit as --db, so as fatal
        return _fatal(exc)
    if args.seed is not None:
        settings = settings.with_changes(seed=args.seed)
    apply_theme(app, settings.theme)
    window = MainWindow(settings, source=args.source, db_path=str(db_path))
    if args.self_test is not None:
        # the self-test places and closes paper orders: in a temporary order book, never the user's own
        import atexit
        import shutil
        import tempfile

        folder = tempfile.mkdtemp(prefix="spx-self-test-")
        atexit.register(shutil.rmtree, folder, True)
        window.trading_db = str(Path(folder) / "self_test_orders.sqlite")
    if os.environ.get("SPX_TERMINAL_REPORT_PAINT"):
        window.installEventFilter(_FirstPaint(window))
    quit_event = asyncio.Event()
    app.setQuitOnLastWindowClosed(False)  # closing the window ends main() cleanly instead of the loop
    app.aboutToQuit.connect(quit_event.set)
    window.closed.connect(quit_event.set)
    window.show()
    for note in notes:
        window.status.showMessage(note, NOTE_MS)
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
