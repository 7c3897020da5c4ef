"""Import machinery shared by every file format: reports, rejections, hashing, the per-file sink.

Every format module defines ``import_path(sink: FileSink, path: Path, options) -> None``: it streams
the file (bounded memory), hands snapshots/bars/instruments to the sink and rejects malformed rows
with a line number and a specific reason. :func:`import_files` runs one store transaction per file
(all or nothing), skips files whose SHA-256 was already imported (status ``duplicate``) and turns
any error that makes a file unusable into status ``failed`` with a message that says how to fix it:
any error at all, including a native decoder's panic (a ``BaseException``); only :data:`FATAL`
(Ctrl-C, exit) stops the batch. Files that are not regular files are refused before being opened.
"""

from __future__ import annotations

import hashlib
import importlib
import logging
import os
import stat
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, BinaryIO

__all__ = [
    "FORMATS",
    "ImportStatus",
    "Rejection",
    "ImportReport",
    "ImportFileError",
    "FileSink",
    "ProgressCallback",
    "MAX_REJECTIONS",
    "sha256_file",
    "import_files",
    "CountingReader",
    "HeldRejections",
    "not_a_regular_file",
    "FATAL",
]

log = logging.getLogger(__name__)

#: Format name -> module implementing ``import_path`` (imported lazily: databento_dbn, zip, pandas).
FORMATS: dict[str, str] = {
    "cboe-datashop": "spx_core.marketdata.importers.cboe_datashop",
    "cboe-delayed": "spx_core.marketdata.importers.cboe_delayed",
    "lean-minute": "spx_core.marketdata.importers.lean_minute",
    "databento": "spx_core.marketdata.importers.databento",
    "daily-bars": "spx_core.marketdata.importers.daily_bars",
    "historical-option-data": "spx_core.marketdata.importers.historical_option_data",
}

#: Detailed rejections kept per file; beyond this one summary entry counts the rest (bounded memory).
MAX_REJECTIONS = 10_000
_HASH_BLOCK = 1 << 20

#: What a per-file failure handler must never swallow: the user or the interpreter stopping the run.
#: Everything else, including ``BaseException`` subclasses raised by native decoders (a Rust panic in
#: databento_dbn surfaces as ``pyo3_runtime.PanicException``), fails only the file at hand.
FATAL = (KeyboardInterrupt, SystemExit, GeneratorExit)

#: ``progress(path, bytes_done, bytes_total)``, called as a file is read (bytes of that file).
ProgressCallback = Callable[[str, int, int], None]


class ImportStatus(StrEnum):
    IMPORTED = "imported"
    DUPLICATE = "duplicate"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class Rejection:
    """One row that was not imported.

    Attributes:
        line: 1-based line number in the file (in the zip member for LEAN zips, named in the reason;
            the 1-based record number for DBN files); 0 for a summary entry.
        reason: what is wrong with the row, e.g. ``"ask_1545 'abc' is not a number"``.
    """

    line: int
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {"line": self.line, "reason": self.reason}


@dataclass(frozen=True, slots=True)
class ImportReport:
    """What happened to one file.

    Attributes:
        path: the file as given.
        sha256: hex digest of the file's bytes ("" when it could not be read).
        status: imported, duplicate (same bytes imported before; nothing done) or failed (nothing stored).
        rows_read: data rows (records for DBN) read from the file.
        quotes_stored: option quotes written, summed over snapshots (0 unless imported).
        snapshots: chain snapshots written (0 unless imported).
        rejected: rows skipped, each with its line and reason.
        error: why the file failed and how to fix it (None otherwise).
        bars: underlying bars written (index files; not part of the JSON report).
        instruments: instrument definitions written (DBN; not part of the JSON report).
    """

    path: str
    sha256: str
    status: ImportStatus
    rows_read: int = 0
    quotes_stored: int = 0
    snapshots: int = 0
    rejected: list[Rejection] = field(default_factory=list)
    error: str | None = None
    bars: int = 0
    instruments: int = 0

    def to_dict(self) -> dict[str, Any]:
        """The JSON form scripts read (``spx-data import --json``); keys fixed by the CLI contract."""
        return {"path": self.path, "sha256": self.sha256, "status": self.status.value,
                "rows_read": self.rows_read, "quotes_stored": self.quotes_stored, "snapshots": self.snapshots,
                "rejected": [r.to_dict() for r in self.rejected], "error": self.error}


class ImportFileError(Exception):
    """The file cannot be imported at all (unreadable, wrong format, no usable header).

    The message names the file, what is wrong and how to fix it; nothing from the file is stored.
    """


def not_a_regular_file(path: str | Path) -> str | None:
    """Why ``path`` cannot be imported without reading it (a folder, device or FIFO), or None.

    Reading ``/dev/zero`` never ends and opening a FIFO waits for a writer, so these are refused by
    their type before anything opens them.
    """
    try:
        mode = os.stat(path).st_mode
    except OSError as exc:
        return f"cannot read {path}: {exc.strerror or exc}; check the path and permissions"
    if stat.S_ISDIR(mode):
        return f"{path} is a folder; pass the files inside it"
    if not stat.S_ISREG(mode):
        kind = "FIFO (named pipe)" if stat.S_ISFIFO(mode) else "device" if stat.S_ISCHR(mode) or \
            stat.S_ISBLK(mode) else "socket" if stat.S_ISSOCK(mode) else "special file"
        return f"{path} is a {kind}, not a regular file; save the data to a file and import that"
    return None


def sha256_file(path: str | Path) -> str:
    """SHA-256 hex digest of a file, streamed in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(_HASH_BLOCK):
            digest.update(block)
    return digest.hexdigest()


class CountingReader:
    """A read-only binary stream that reports how many bytes were consumed (for progress bars)."""

    def __init__(self, raw: BinaryIO, on_bytes: Callable[[int], None]) -> None:
        self._raw = raw
        self._on_bytes = on_bytes

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        data = self._raw.read(n)
        self._on_bytes(len(data))
        return data

    def read1(self, n: int = -1) -> bytes:
        return self.read(n)

    def readinto(self, buf) -> int:
        n = self._raw.readinto(buf)
        self._on_bytes(n or 0)
        return n

    @property
    def closed(self) -> bool:
        return self._raw.closed

    def close(self) -> None:
        self._raw.close()

    def seekable(self) -> bool:
        return False

    def writable(self) -> bool:
        return False

    def flush(self) -> None:
        pass


class FileSink:
    """What a format importer sees for one file: the open import transaction plus bookkeeping.

    Importers call :meth:`add_snapshot`, :meth:`add_bars`, :meth:`add_instruments`,
    :meth:`add_instrument_ids`, :meth:`reject`,
    :meth:`count_rows` and :meth:`read_bytes`; :attr:`store` is there for read-only look-ups made
    *before* heavy work (e.g. index bars already stored).
    """

    def __init__(self, *, store: Any, imp: Any, path: Path, fmt: str, size: int,
                 progress: ProgressCallback | None, shared: dict[str, Any]) -> None:
        self.store = store
        self.path = path
        self.fmt = fmt
        self.shared = shared  # state that spans the files of one import_files call (e.g. DBN definitions)
        self._imp = imp
        self._size = size
        self._progress = progress
        self._done = 0
        self.rows_read = 0
        self.quotes_stored = 0
        self.snapshots = 0
        self.bars = 0
        self.instruments = 0
        self.rejected: list[Rejection] = []
        self._extra_rejections = 0

    @property
    def session(self) -> str:
        """Session name of this file's snapshots: ``<format>:<file name>`` (replay picks it)."""
        return f"{self.fmt}:{self.path.name}"

    def add_snapshot(self, snap: Any) -> int:
        sid = self._imp.add_snapshot(snap, source=self.fmt, session=self.session)
        self.snapshots += 1
        self.quotes_stored += len(snap)
        return sid

    def add_bars(self, symbol: str, bars: Any) -> None:
        self._imp.add_bars(symbol, bars)
        self.bars += len(bars)

    def add_instruments(self, contracts: Iterable[Any]) -> None:
        contracts = list(contracts)
        self._imp.add_instruments(contracts)
        self.instruments += len(contracts)

    def add_instrument_ids(self, vendor: str, mappings: Iterable[Any]) -> None:
        """Store a vendor's numeric id -> contract mappings (``VendorInstrumentId``) for later imports."""
        self._imp.add_instrument_ids(vendor, mappings)

    @property
    def stored_anything(self) -> bool:
        return bool(self.snapshots or self.bars or self.instruments)

    def reject(self, line: int, reason: str) -> None:
        if len(self.rejected) < MAX_REJECTIONS:
            self.rejected.append(Rejection(int(line), reason))
            self._imp.reject(int(line), reason)
        else:
            self._extra_rejections += 1

    def count_rows(self, n: int) -> None:
        self.rows_read += int(n)
        self._imp.rows_read += int(n)

    def read_bytes(self, n: int) -> None:
        self._done += n
        if self._progress is not None and n:
            self._progress(str(self.path), min(self._done, self._size), self._size)

    def count_unlisted(self, n: int) -> None:
        """Count ``n`` rejections beyond the listed ones (summed up by :meth:`finish_rejections`)."""
        self._extra_rejections += int(n)

    def finish_rejections(self) -> None:
        if self._extra_rejections:
            reason = (f"{self._extra_rejections} more rejected rows not listed (only the first "
                      f"{MAX_REJECTIONS} are kept); fix the file's format and re-import")
            self.rejected.append(Rejection(0, reason))
            self._imp.reject(0, reason)


class HeldRejections:
    """Row rejections of one part of a file (a zip member), passed to the sink only once that part is whole.

    A part that turns out unreadable half-way is then rejected once, by name, instead of leaving the
    rejections of its first half behind. At most :data:`MAX_REJECTIONS` are kept; the rest are counted.
    """

    def __init__(self, prefix: Callable[[int], str] = lambda line: "") -> None:
        self._prefix = prefix
        self._held: list[tuple[int, str]] = []
        self._extra = 0
        self.rows = 0  # rows rejected through count_and_add (they count as rows read)

    def add(self, line: int, reason: str) -> None:
        if len(self._held) < MAX_REJECTIONS:
            self._held.append((int(line), self._prefix(int(line)) + reason))
        else:
            self._extra += 1

    def count_and_add(self, line: int, reason: str) -> None:
        """For a reader's ``on_reject``: a line that could not even be split into fields."""
        self.rows += 1
        self.add(line, reason)

    def add_all(self, rejections: Iterable[tuple[int, str]]) -> None:
        for line, reason in rejections:
            self.add(line, reason)

    def flush(self, sink: FileSink) -> None:
        for line, reason in self._held:
            sink.reject(line, reason)
        sink.count_unlisted(self._extra)
        self._held, self._extra = [], 0


def _format_module(fmt: str):
    try:
        return importlib.import_module(FORMATS[fmt])
    except KeyError:
        raise ValueError(f"unknown import format {fmt!r}; choose one of {', '.join(FORMATS)}") from None


def import_files(store: Any, paths: Sequence[str | Path], fmt: str, *,
                 progress: ProgressCallback | None = None, options: Any = None) -> list[ImportReport]:
    """Import files of one format into ``store``, one transaction per file.

    Args:
        store: an open :class:`spx_core.storage.Store`.
        paths: files to import. The format module may reorder them (LEAN: index bars before option
            quotes, DBN: definitions before quotes); reports come back in the order given.
        fmt: one of :data:`FORMATS`.
        progress: optional ``progress(path, bytes_done, bytes_total)``.
        options: the format's options object (e.g. ``DataShopOptions(root=Root.SPX)``) or None for defaults.

    Returns:
        One :class:`ImportReport` per path. Failures never raise: they are reported (status failed).
    """
    module = _format_module(fmt)
    opts = options if options is not None else module.default_options()
    paths = [Path(p) for p in paths]
    order = list(range(len(paths)))
    if hasattr(module, "import_order"):
        try:
            order = module.import_order(paths)
        except FATAL:
            raise
        except BaseException:  # noqa: BLE001 - the order is an optimisation; each file reports its own failure
            log.debug("import_order of %s failed; importing in the given order", fmt, exc_info=True)
    shared: dict[str, Any] = {}
    reports: dict[int, ImportReport] = {}
    for i in order:
        reports[i] = _import_one(store, paths[i], fmt, module, opts, progress, shared)
    return [reports[i] for i in range(len(paths))]


def _import_one(store: Any, path: Path, fmt: str, module: Any, opts: Any,
                progress: ProgressCallback | None, shared: dict[str, Any]) -> ImportReport:
    from spx_core.storage.errors import DuplicateImportError

    if problem := not_a_regular_file(path):
        return ImportReport(str(path), "", ImportStatus.FAILED, error=problem)
    try:
        digest = sha256_file(path)
        size = path.stat().st_size
    except OSError as exc:
        return ImportReport(str(path), "", ImportStatus.FAILED,
                            error=f"cannot read {path}: {exc.strerror or exc}; check the path and permissions")
    sink: FileSink | None = None
    try:
        with store.import_file(path=str(path), sha256=digest, fmt=fmt) as imp:
            sink = FileSink(store=store, imp=imp, path=path, fmt=fmt, size=size, progress=progress,
                            shared=shared)
            module.import_path(sink, path, opts)
            sink.finish_rejections()
            if not sink.stored_anything:
                raise ImportFileError(f"{path}: no valid rows to import ({sink.rows_read} rows read, "
                                      f"{len(sink.rejected)} rejected); check that it is a {fmt} file")
    except DuplicateImportError:
        if progress is not None:
            progress(str(path), size, size)
        return ImportReport(str(path), digest, ImportStatus.DUPLICATE)
    except FATAL:
        raise
    except BaseException as exc:  # noqa: BLE001 - any failure of one file is reported, the others still import
        if not isinstance(exc, ImportFileError):
            log.debug("import of %s failed", path, exc_info=True)
        message = str(exc) if isinstance(exc, ImportFileError) else f"{path}: {type(exc).__name__}: {exc}"
        return ImportReport(str(path), digest, ImportStatus.FAILED,
                            rows_read=sink.rows_read if sink else 0,
                            rejected=list(sink.rejected) if sink else [], error=message)
    return ImportReport(str(path), digest, ImportStatus.IMPORTED, rows_read=sink.rows_read,
                        quotes_stored=sink.quotes_stored, snapshots=sink.snapshots,
                        rejected=list(sink.rejected), bars=sink.bars, instruments=sink.instruments)
