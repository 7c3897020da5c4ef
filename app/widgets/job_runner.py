"""JobRunner: run one CPU-heavy job at a time in a worker thread, deliver the result on the GUI thread.

Panels call :meth:`JobRunner.submit` from a refresh timer; while a job runs, further submits are
refused (the caller keeps only its latest input and retries on the next tick), so work never
queues up behind a slow fit and the GUI thread never waits.

Events (Qt signals, always delivered on the thread that owns the runner, i.e. the GUI thread):
    finished(object): the job's return value.
    failed(str): the job raised; the message names the job and the error (the traceback is logged).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from PySide6.QtCore import QObject, Signal, Slot

__all__ = ["JobRunner"]

log = logging.getLogger(__name__)

_core_lock = threading.Lock()
_core_loaded = False


def _load_core() -> None:
    """Import the core packages every worker uses, once, in one thread at a time.

    Several panels' workers start together and import ``spx_core.surface`` / ``spx_core.strategies`` at the
    same moment; those packages import each other, and Python's per-module import locks resolve such a
    cycle between threads by handing one thread a partially initialised module ("cannot import name
    'ExpiryFit' from partially initialized module", about one start in six). Loading them under one lock
    first makes every later import in any worker a dictionary look-up.
    """
    global _core_loaded
    if _core_loaded:
        return
    with _core_lock:
        if not _core_loaded:
            import spx_core.surface  # noqa: F401
            import spx_core.strategies  # noqa: F401

            _core_loaded = True


def _run(fn: Callable[..., Any], *args: Any) -> Any:
    _load_core()
    return fn(*args)


class JobRunner(QObject):
    finished = Signal(object)
    failed = Signal(str)
    _done = Signal(object)  # worker thread -> GUI thread hop (queued: the runner lives on the GUI thread)

    def __init__(self, name: str, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._name = name
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)
        self._job: Future | None = None
        self._closed = False
        self._done.connect(self._on_done)

    @property
    def busy(self) -> bool:
        return self._job is not None

    def submit(self, fn: Callable[..., Any], *args: Any) -> bool:
        """Start ``fn(*args)`` in the worker unless a job is running (then return False)."""
        if self._job is not None or self._closed:
            return False
        job = self._executor.submit(_run, fn, *args)
        self._job = job
        job.add_done_callback(self._from_worker)
        return True

    def _from_worker(self, job: Future) -> None:
        try:
            self._done.emit(job)
        except RuntimeError:  # the runner was deleted while the job ran: nobody is waiting
            pass

    @Slot(object)
    def _on_done(self, job: Future) -> None:
        self._job = None
        if self._closed or job.cancelled():
            return
        try:
            result = job.result()
        except Exception as exc:  # reported through `failed`; a bad input must not kill the panel
            log.exception("%s job failed", self._name)
            self.failed.emit(f"{self._name} failed: {type(exc).__name__}: {exc}")
            return
        self.finished.emit(result)

    def shutdown(self) -> None:
        """Drop pending work and let the worker thread end (idempotent, does not block)."""
        self._closed = True
        self._executor.shutdown(wait=False, cancel_futures=True)
