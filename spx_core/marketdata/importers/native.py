"""Native decoders' own stderr output, kept off the user's terminal.

databento_dbn is Rust: on a corrupt record it panics, which raises ``pyo3_runtime.PanicException`` (a
``BaseException``, contained per file by :func:`~spx_core.marketdata.importers.base.import_files`) and
also writes "thread ... panicked at ..." plus a backtrace straight to file descriptor 2, past
``sys.stderr``. The user must see one clear line, so decoding runs with fd 2 redirected.
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["NativeStderr"]


class NativeStderr:
    """Keeps the Rust panic report of databento_dbn (and its backtrace) off the user's terminal.

    A corrupt record makes the decoder panic: besides raising ``PanicException`` it writes
    "thread ... panicked at ..." straight to file descriptor 2. While :meth:`decode` runs, fd 2 points
    at a temporary file; a panic's message is kept (:attr:`panic`, for the error text) and anything
    else written meanwhile (another thread's log line) is passed on to the real stderr afterwards.
    """

    def __init__(self) -> None:
        self.panic: str | None = None
        self._file = None

    def __enter__(self) -> NativeStderr:
        self._file = tempfile.TemporaryFile()
        return self

    def __exit__(self, *exc: object) -> None:
        self._file.close()

    def decode(self, decoder, block: bytes) -> list:
        with self._redirected():
            return decoder.write_and_decode(block)

    @contextmanager
    def _redirected(self) -> Iterator[None]:
        sys.stderr.flush()
        saved = os.dup(2)
        os.dup2(self._file.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            self._collect()

    def _collect(self) -> None:
        if not self._file.tell():
            return
        self._file.seek(0)
        text = self._file.read().decode("utf-8", "replace")
        self._file.seek(0)
        self._file.truncate()
        if "panicked at" in text:
            lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
            at = next(i for i, ln in enumerate(lines) if "panicked at" in ln)
            self.panic = lines[at + 1] if at + 1 < len(lines) else lines[at]
            text = "\n".join(lines[:at])  # what other threads wrote before the panic
        if text.strip():
            sys.stderr.write(text if text.endswith("\n") else text + "\n")
