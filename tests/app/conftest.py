"""Qt + asyncio fixtures for app tests.

``make_window(**kwargs)``: a shown MainWindow (``MainWindow(AppSettings(seed=3), **kwargs)`` unless
``settings`` is given), shut down and closed after the test; ``window``: one made with the defaults.

``qloop``: a qasync loop over the pytest-qt QApplication (``already_running=True`` so qtbot's
waits drive it). Teardown never calls ``loop.stop()`` (it would call ``QApplication.exit()`` and
make every later ``waitUntil`` return at once). Exceptions raised in plain tasks are collected by
the loop's exception handler and fail the test.

``xvfb_display`` (per test) and ``xvfb_display_module`` (per module): a private Xvfb server's DISPLAY,
skipping with a reason where Xvfb is not installed.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import shutil
import subprocess
from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True)
def _qt_garbage_freed_on_the_gui_thread():
    """After every app test (its windows shut down, qtbot's widgets closed: this fixture is set up first, so torn
    down last), collect its reference cycles (panels, lambdas, wrappers) here, on the GUI thread. Left to a later
    automatic collection, a worker thread of a later test may free Qt objects: Qt warns "Timers cannot be started
    from another thread" (warnings fail tests), and PySide may hand out a stale wrapper for a reused address."""
    yield
    gc.collect()
    # what is still alive now is the session's (modules, caches, the QApplication): frozen out of later
    # collections, so each test's collection walks only what tests made since (cheap on a large heap)
    gc.freeze()


@pytest.fixture
def qloop(qapp):
    import qasync

    loop = qasync.QEventLoop(qapp, already_running=True)
    errors: list[str] = []

    def handler(_loop, context):
        exc = context.get("exception")
        errors.append(f"{type(exc).__name__}: {exc}" if exc else context.get("message", repr(context)))

    loop.set_exception_handler(handler)
    asyncio.set_event_loop(loop)
    yield loop
    # to_thread work runs on qasync's QThreadExecutor; end its QThreads now (Qt aborts if a QThread
    # is destroyed while running) without loop.close()/stop(), which would exit the QApplication.
    executor = getattr(loop, "_QEventLoop__default_executor", None)
    if executor is not None:
        executor.shutdown(wait=True)
        loop.set_default_executor(None)
    # already_running=True registered the loop as asyncio's running loop; unregister it so later
    # tests (asyncio.run in the core's tests) do not see a running loop.
    asyncio.events._set_running_loop(None)
    asyncio.set_event_loop(None)
    if errors:
        pytest.fail(f"exceptions raised inside the event loop: {errors}")


@pytest.fixture
def run_async(qloop, qtbot):
    """``run_async(coro, timeout=10)``: drive a coroutine to completion on the qasync loop via qtbot."""

    def run(coro, timeout: float = 10.0):
        task = qloop.create_task(coro)
        qtbot.waitUntil(task.done, timeout=int(timeout * 1000))
        return task.result()

    return run


@pytest.fixture
def make_window(qtbot, qloop, run_async):
    from app.main_window import MainWindow
    from app.settings import AppSettings

    made = []

    def make(settings: AppSettings | None = None, **kwargs):
        w = MainWindow(settings or AppSettings(seed=3), **kwargs)
        w.show()
        made.append(w)
        return w

    yield make
    # not registered with qtbot.addWidget: pytest-qt would close them before their shutdown runs
    for w in made:
        run_async(w.shutdown())
        w.close()
        w.deleteLater()


@pytest.fixture
def window(make_window):
    return make_window()


@contextlib.contextmanager
def xvfb_server(screen: str = "2000x1200x24") -> Iterator[str]:
    """A private Xvfb server (it picks a free display number itself, ``-displayfd``); yields ":N".

    The default screen fits a 1920x1080 window plus its frame.
    """
    binary = shutil.which("Xvfb")
    if binary is None:
        pytest.skip("Xvfb is not installed (Debian: apt-get install xvfb libxcb-icccm4 libxcb-keysyms1 ...)")
    read_fd, write_fd = os.pipe()
    proc = subprocess.Popen([binary, "-displayfd", str(write_fd), "-screen", "0", screen, "-nolisten", "tcp"],
                            pass_fds=(write_fd,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(write_fd)
    try:
        with os.fdopen(read_fd) as pipe:
            number = pipe.readline().strip()  # Xvfb writes the number once it accepts connections
        if not number:
            raise RuntimeError(f"Xvfb exited ({proc.wait(timeout=10)}) without opening a display")
        yield f":{number}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture
def xvfb_display() -> Iterator[str]:
    with xvfb_server() as display:
        yield display


@pytest.fixture(scope="module")
def xvfb_display_module() -> Iterator[str]:
    with xvfb_server() as display:
        yield display
