"""Where a sweep's grid points run: a local process pool, or a Dask distributed cluster.

    with Pool(workers=4) as pool:                      # or Pool(scheduler="tcp://host:8786")
        for done in pool.map_unordered(fn, args, progress=..., cancel=...):
            done.index, done.value, done.error

``fn`` must be a module-level function (it is pickled by name) whose argument and return value pickle; it runs in
another process, so it must not rely on the parent's state. Results come back as they finish, in any order.

Local: a ``concurrent.futures.ProcessPoolExecutor`` on the ``spawn`` context (the same on Linux, macOS and
Windows, no forked copy of a parent's threads or SQLite connections, and what a PyInstaller bundle supports once
its entry point calls ``multiprocessing.freeze_support()``). Dask: ``distributed.Client(scheduler)``; the
cluster's workers must be able to import ``spx_core`` and read the database path they are given.

Submission is bounded (as many in flight as there are workers, twice that on Dask so that no worker idles while
a result travels back): ``cancel()`` is polled every ``POLL_S`` seconds, and once it is true nothing more is
submitted and every queued future is cancelled; the points already running finish and are yielded (a running
backtest in another process cannot be stopped halfway without losing its partial result anyway).

A task that raises, or whose worker dies, is a :class:`Done` with ``error`` (one line), not a failure of the map.
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
import os
import signal
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Self

__all__ = ["Done", "Pool", "PoolError", "one_line"]

POLL_S = 0.1  # how often cancel() is asked while every running task is still busy
CONNECT_TIMEOUT_S = 10.0  # a Dask scheduler that does not answer within this is an error, not a hang


class PoolError(RuntimeError):
    """The pool cannot start (bad worker count, unreachable scheduler); one line saying how to fix it."""


@dataclass(frozen=True, slots=True)
class Done:
    """One finished task: ``value`` is what ``fn`` returned (None when it failed); ``error`` one line or None."""

    index: int
    value: Any
    error: str | None = None


def one_line(exc: BaseException) -> str:
    """``"TypeName: first line of the message"`` (a row's error is one line, never a traceback)."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


class Pool:
    """A local process pool (``workers`` processes, default: one per CPU) or a Dask client on ``scheduler``.

    ``size_hint``: how many tasks the caller will map, so that a local pool never starts more processes than
    tasks. Use as a context manager (or call :meth:`close`): the processes / the client are released on exit.
    """

    def __init__(self, *, workers: int | None = None, scheduler: str | None = None, size_hint: int | None = None):
        if workers is not None and scheduler is not None:
            raise PoolError("give either a worker count (local processes) or a Dask scheduler address, not both")
        if workers is not None and workers < 1:
            raise PoolError(f"workers {workers} must be at least 1")
        self.scheduler = scheduler
        self._client: Any = None
        self._executor: cf.ProcessPoolExecutor | None = None
        if scheduler is not None:
            self._client = _connect(scheduler)
            self.workers = max(1, sum(self._client.nthreads().values()))
        else:
            cpus = os.cpu_count() or 1
            self.workers = workers if workers is not None else cpus
            if size_hint is not None:
                self.workers = max(1, min(self.workers, size_hint))

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        self.close(abort=exc_type is not None)

    def close(self, *, abort: bool = False) -> None:
        """Release the workers. ``abort`` (leaving on an exception, a second Ctrl-C): stop the local worker
        processes now instead of waiting for the points they are running (their results are not wanted)."""
        if self._executor is not None:
            if abort:
                # no public way to stop a running task: end this pool's own worker processes (never others)
                for process in list((self._executor._processes or {}).values()):
                    process.terminate()
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None
        if self._client is not None:
            self._client.close()
            self._client = None

    # --- the two back ends -----------------------------------------------------------------------------------
    def _start_task(self, fn: Callable[[Any], Any], arg: Any) -> Any:
        if self._client is not None:
            return self._client.submit(fn, arg, pure=False)
        if self._executor is None:  # started on first use: a pool that maps nothing starts no process
            self._executor = cf.ProcessPoolExecutor(max_workers=self.workers,
                                                    mp_context=multiprocessing.get_context("spawn"),
                                                    initializer=_ignore_interrupt)
        return self._executor.submit(fn, arg)

    def _in_flight(self) -> int:
        return self.workers * (2 if self._client is not None else 1)

    def _drop_queued(self, futures: Sequence[Any]) -> None:
        if self._client is not None:
            pending = [f for f in futures if f.status == "pending"]
            if pending:
                self._client.cancel(pending)
        else:
            for f in futures:
                f.cancel()  # only a future not yet running is cancelled; a running one finishes

    def _wait(self, futures: set[Any]) -> set[Any]:
        if self._client is None:
            done, _ = cf.wait(futures, timeout=POLL_S, return_when=cf.FIRST_COMPLETED)
            return done
        done = {f for f in futures if f.done()}
        if not done:
            time.sleep(POLL_S)
        return done

    @staticmethod
    def _outcome(index: int, future: Any) -> Done:
        try:
            return Done(index, future.result())
        except Exception as exc:  # noqa: BLE001 - a task's failure is its row's error (module docstring)
            return Done(index, None, one_line(exc))

    # --- the map ---------------------------------------------------------------------------------------------
    def map_unordered(self, fn: Callable[[Any], Any], args: Sequence[Any], *,
                      progress: Callable[[int, int], None] | None = None,
                      cancel: Callable[[], bool] | None = None) -> Iterator[Done]:
        """``fn(arg)`` for each of ``args``; yields each :class:`Done` as it finishes, ``progress(done, total)``
        after each. Tasks never submitted because of ``cancel`` are not yielded."""
        total = len(args)
        queue = list(range(total))[::-1]  # popped from the end: submitted in order
        running: dict[Any, int] = {}
        finished = 0
        stopped = False
        while queue or running:
            if not stopped and cancel is not None and cancel():
                stopped = True
                queue.clear()
                self._drop_queued(list(running))
            while queue and len(running) < self._in_flight():
                index = queue.pop()
                try:
                    running[self._start_task(fn, args[index])] = index
                except Exception as exc:  # noqa: BLE001 - e.g. a broken local pool: this point's error
                    finished += 1
                    yield Done(index, None, one_line(exc))
                    if progress is not None:
                        progress(finished, total)
            for future in self._wait(set(running)):
                index = running.pop(future)
                if future.cancelled():
                    continue  # cancelled before it started: as if never submitted
                finished += 1
                yield self._outcome(index, future)
                if progress is not None:
                    progress(finished, total)


def _ignore_interrupt() -> None:
    """In a local worker: Ctrl-C in a terminal reaches the whole process group; the PARENT decides (it stops
    submitting, see ``cancel``), so a worker finishes its point instead of dying with a half-read result."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _connect(address: str) -> Any:
    """A ``distributed.Client`` on ``address``; one clear line when it cannot be reached."""
    try:
        import distributed
    except ImportError as exc:
        raise PoolError(f"the Dask scheduler {address} needs the distributed package ({exc.name} is missing): "
                        f"pip install 'dask[distributed]', or run without --scheduler") from None
    try:
        return distributed.Client(address, timeout=CONNECT_TIMEOUT_S, set_as_default=False)
    except (OSError, TimeoutError, ValueError) as exc:
        raise PoolError(f"cannot reach the Dask scheduler at {address} ({one_line(exc)}): start one with "
                        f"`dask scheduler` and `dask worker {address}`, or run without --scheduler") from None
