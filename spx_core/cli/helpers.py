"""What every ``spx-data`` subcommand shares: its options, its database, its output, and its errors.

A subcommand is a function ``fn(args) -> int`` wrapped by :func:`command`. The wrapper is the one place
where failures become messages:

- an expected failure (a bad path, a database that is missing, not SQLite, damaged, busy or on a full
  disk, an unreadable or unwritable file) is printed as ONE line on stderr saying what is wrong and how
  to fix it, and the exit code is 1;
- :class:`UsageError` (bad arguments argparse cannot check) prints one line and exits 2, as argparse does;
- a broken pipe (``spx-data greeks --csv - | head -1``) ends the command quietly, like other Unix tools;
- anything else is a bug: its traceback goes to ``<log folder>/spx-data.log`` (and to stderr with
  ``-v``), and the user sees one line naming the error and the log file.
"""

from __future__ import annotations

import argparse
import contextlib
import enum
import errno
import functools
import inspect
import json
import logging
import math
import os
import sys
import tempfile
import traceback
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

__all__ = [
    "PROG",
    "CommandFailed",
    "DbAccess",
    "LatestSnapshots",
    "UsageError",
    "add_db_option",
    "add_snapshot_option",
    "command",
    "contract_keys",
    "describe_failure",
    "dump_json",
    "fmt_num",
    "iso_utc",
    "json_num",
    "open_store",
    "output_file",
    "parse_iso_time",
    "print_table",
    "run_cli",
]

PROG = "spx-data"
DB_HELP = "SQLite database file (default: $SPX_TERMINAL_DB, else the user data folder's database)"
BUG_LOG = "spx-data.log"


class UsageError(Exception):
    """Bad command-line usage; printed to stderr as one line with exit code 2."""


class CommandFailed(Exception):
    """A command could not complete; its message (one line, with the fix) is printed with exit code 1."""


class DbAccess(enum.Enum):
    """What a command does with ``--db``: READ refuses a missing file, WRITE creates it."""

    READ = "read"
    WRITE = "write"


def run_cli(parser: argparse.ArgumentParser, argv: Sequence[str] | None, *, interrupted: str = "interrupted") -> int:
    """Parse ``argv`` and run the chosen command: logging to stderr (DEBUG with ``--verbose``), a
    :class:`UsageError` as argparse's usage error (exit 2), Ctrl-C as ``interrupted`` on stderr (exit 130)."""
    args = parser.parse_args(argv)  # exits 2 on bad usage
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    try:
        return int(args.func(args))
    except UsageError as exc:
        parser.error(str(exc))  # exits 2
    except KeyboardInterrupt:
        print(interrupted, file=sys.stderr)
        return 130
    return 0


def add_db_option(parser: argparse.ArgumentParser) -> None:
    """``--db PATH`` as every subcommand spells it."""
    from spx_core.path_checks import db_argument

    parser.add_argument("--db", metavar="PATH", type=db_argument, help=DB_HELP)


def add_snapshot_option(parser: argparse.ArgumentParser) -> None:
    """``--snapshot ID`` (required) as every subcommand spells it."""
    parser.add_argument("--snapshot", required=True, type=int, metavar="ID",
                        help="snapshot id (see `spx-data snapshots`)")


def parse_iso_time(text: str | None, *, option: str) -> datetime | None:
    """An ISO date-time option (``--start``, ``--time``); naive means US/Eastern. Bad text is a UsageError."""
    if text is None:
        return None
    from spx_core.domain.calendar import ET

    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise UsageError(f"{option} {text!r} is not an ISO date-time (e.g. 2024-03-04T09:30 or "
                         f"2024-03-04T14:30:00+00:00)") from None
    return when if when.tzinfo is not None else when.replace(tzinfo=ET)


# --- the wrapper ------------------------------------------------------------------------------------------
def command(fn: Callable[[argparse.Namespace], int], *, db: DbAccess | None,
            tool: str = PROG) -> Callable[[argparse.Namespace], int]:
    """Wrap a subcommand: resolve and check ``--db`` into ``args.db_path`` first, then map failures to exits.
    ``tool`` names the program in its messages (``spx-backtest run: ...``).

    The check runs before anything is opened, so a mistyped ``--db`` of a READ command never creates
    an empty database and a path under a file fails with a message instead of a traceback.
    """

    @functools.wraps(fn)
    def run(args: argparse.Namespace) -> int:
        prog = f"{tool} {args.command}"
        args.db_path = None
        try:
            if db is not None:
                args.db_path = resolve_db(args.db, must_exist=db is DbAccess.READ)
            code = fn(args)
            sys.stdout.flush()  # a broken pipe surfaces here, where it is handled, not at interpreter exit
            return code
        except UsageError as exc:
            _say(f"{prog}: error: {_one_line(exc)}")
            raise SystemExit(2) from None
        except BrokenPipeError:
            _silence_stdout()
            return 1
        except KeyboardInterrupt:
            _say(f"{prog}: interrupted")
            return 130
        except SystemExit:
            raise
        except BaseException as exc:  # noqa: BLE001 - the one place failures become messages (see module doc);
            # BaseException too: a Rust panic from a native reader (pyo3 PanicException) is not an Exception
            message = describe_failure(exc, args.db_path)
            if message is None:
                _report_bug(prog, exc, verbose=bool(getattr(args, "verbose", False)))
            else:
                _say(f"{prog}: {message}")
            return 1

    return run


def resolve_db(explicit: str | None, *, must_exist: bool) -> Path:
    """The database file a command uses (``--db``, ``$SPX_TERMINAL_DB`` or the default), checked, not created."""
    from spx_core.path_checks import check_database_path, database_origin

    path, origin = database_origin(explicit)
    return check_database_path(path, origin, must_exist=must_exist)


def open_store(path: Path, *, create: bool) -> Any:
    """``Store.open(path)``; a reader (``create=False``) never creates a file, even if it vanished since the check."""
    from spx_core.storage import Store

    if not create and "create" in inspect.signature(Store.open).parameters:
        return Store.open(path, create=False)  # storage refuses a missing file itself (when it can)
    return Store.open(path)


# --- failures -> one line ---------------------------------------------------------------------------------
def describe_failure(exc: BaseException, db: Path | None = None) -> str | None:
    """One line (what went wrong and the fix) for an expected failure; None for a bug."""
    from spx_core.path_checks import DataPathError

    if isinstance(exc, (CommandFailed, DataPathError)):
        return _one_line(exc)
    storage_errors = sys.modules.get("spx_core.storage.errors")
    if storage_errors is not None and isinstance(exc, storage_errors.StorageError):
        return _one_line(exc)
    sa_exc = sys.modules.get("sqlalchemy.exc")
    if sa_exc is not None and isinstance(exc, sa_exc.DBAPIError):
        exc = exc.orig if isinstance(exc.orig, BaseException) else exc
    import sqlite3

    if isinstance(exc, sqlite3.Error):
        return _sqlite_message(exc, db)
    if isinstance(exc, OSError):
        return _os_message(exc)
    if isinstance(exc, MemoryError):
        return "out of memory; close other programs or work on a smaller input"
    return None


_SQLITE_HINTS = {
    "SQLITE_NOTADB": "{db} is not an spx-terminal database (not an SQLite file, or its header is damaged); "
                     "pass the --db you imported into",
    "SQLITE_CORRUPT": "database {db} is damaged ({msg}); restore it from a backup, or pass another --db",
    "SQLITE_FULL": "disk full while writing {db}; free some space, or pass a --db on another disk",
    "SQLITE_BUSY": "database {db} is busy (another program is writing it); try again when it has finished",
    "SQLITE_LOCKED": "database {db} is busy (another program is writing it); try again when it has finished",
    "SQLITE_CANTOPEN": "cannot open database {db} ({msg}); pass a --db file in a folder you can write",
    "SQLITE_READONLY": "database {db} is read-only ({msg}); make the file and its folder writable",
    "SQLITE_PERM": "no permission to use database {db}; make the file and its folder readable and writable",
    "SQLITE_IOERR": "I/O error on database {db} ({msg}); check the disk, or pass a --db on another disk",
}


def _sqlite_message(exc: BaseException, db: Path | None) -> str:
    name = str(getattr(exc, "sqlite_errorname", "") or "")
    msg = _one_line(exc)
    if not name:  # raised by the sqlite3 module itself (no SQLite result code): go by its text
        text = msg.lower()
        name = next((code for code, words in (("SQLITE_NOTADB", "not a database"), ("SQLITE_CORRUPT", "malformed"),
                                              ("SQLITE_FULL", "disk is full"), ("SQLITE_BUSY", "locked"),
                                              ("SQLITE_CANTOPEN", "unable to open")) if words in text), "")
    # extended codes (SQLITE_IOERR_WRITE, SQLITE_CORRUPT_INDEX, ...) share their primary code's advice
    template = next((hint for code, hint in _SQLITE_HINTS.items() if name == code or name.startswith(code + "_")),
                    None)
    where = str(db) if db is not None else "the database"
    return template.format(db=where, msg=msg) if template else f"database {where}: {msg}"


_OS_HINTS = {
    errno.ENOSPC: ("disk full", "free some space, or write to another disk"),
    errno.EDQUOT: ("disk quota exceeded", "free some space, or write to another disk"),
    errno.EACCES: ("permission denied", "make it readable/writable, or choose another path"),
    errno.EPERM: ("permission denied", "make it readable/writable, or choose another path"),
    errno.EROFS: ("read-only file system", "choose a path on a writable disk"),
    errno.ENOENT: ("no such file or folder", "check the path"),
    errno.EISDIR: ("is a folder", "name a file"),
}


def _os_reason(exc: OSError) -> str:
    """What went wrong and the fix, without naming the file: ``disk full; free some space, ...``."""
    reason, fix = _OS_HINTS.get(exc.errno, (exc.strerror or _one_line(exc), ""))
    return f"{reason}; {fix}" if fix else reason


def _os_message(exc: OSError) -> str:
    if exc.filename is None:
        return _os_reason(exc)
    reason, fix = _OS_HINTS.get(exc.errno, (exc.strerror or _one_line(exc), ""))
    return f"{exc.filename}: {reason}" + (f"; {fix}" if fix else "")


def _report_bug(prog: str, exc: BaseException, *, verbose: bool) -> None:
    """A bug: keep the traceback (log file; stderr with -v) but show the user one line."""
    text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    where = "rerun with -v to see the traceback"
    try:
        from spx_core.paths import log_dir

        log = log_dir() / BUG_LOG
        with open(log, "a", encoding="utf-8") as fh:
            fh.write(f"{datetime.now(UTC).isoformat()} {prog} {sys.argv[1:]}\n{text}\n")
        where = f"traceback in {log}"
    except Exception:  # noqa: BLE001 - the log folder itself may be the problem; the line below still tells
        pass
    if verbose:
        sys.stderr.write(text)
    _say(f"{prog}: internal error (a bug, please report it): {type(exc).__name__}: {_one_line(exc)}; {where}")


def _one_line(exc: BaseException) -> str:
    text = str(exc.args[0]) if isinstance(exc, KeyError) and exc.args else str(exc)
    return " ".join(text.split()) or type(exc).__name__


def _say(line: str) -> None:
    try:
        print(line, file=sys.stderr, flush=True)
    except OSError:
        pass  # stderr closed too: nothing left to tell


def _silence_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush does not raise again (Python docs' recipe)."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


# --- output -------------------------------------------------------------------------------------------------
@contextlib.contextmanager
def output_file(target: str, *, option: str = "--csv") -> Iterator[TextIO]:
    """A text stream for ``target`` (``-`` is stdout) that appears only complete.

    A file is written to a temporary file beside it and renamed over the target on success; on any
    failure the temporary file is removed and an existing target is left as it was. Devices and pipes
    (``/dev/stdout``, a FIFO) are written directly: they cannot be renamed over.
    """
    if target == "-":
        yield sys.stdout
        return
    path = Path(target).expanduser()
    if path.is_dir():
        raise CommandFailed(f"{option} {path} is a folder; name a file, e.g. {path / 'out.csv'}")
    if path.exists() and not path.is_file():
        with open(path, "w", newline="", encoding="utf-8") as fh:
            yield fh
        return
    if not path.parent.is_dir():
        raise CommandFailed(f"cannot write {option} {path}: folder {path.parent} does not exist; create it first")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    except OSError as exc:
        raise CommandFailed(f"cannot write {option} {path}: {_os_reason(exc)}") from None
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp's 0600 would make the renamed output private
    try:
        with os.fdopen(fd, "w", newline="", encoding="utf-8") as fh:
            yield fh
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(exc, OSError) and not isinstance(exc, BrokenPipeError):
            # name the target, not the temporary file (nor the database the wrapper would guess)
            raise CommandFailed(f"cannot write {option} {path}: {_os_reason(exc)}") from None
        raise


class LatestSnapshots:
    """A MarketView over the latest stored snapshot of each underlying (loaded on first use); ``infos`` keeps
    each loaded one's SnapshotInfo (id, time) for the reports that cite it."""

    def __init__(self, store: Any) -> None:
        self._store = store
        self._snaps: dict[str, Any] = {}
        self.infos: dict[str, Any] = {}

    def now_ns(self) -> int:
        return max((s.time_ns for s in self._snaps.values() if s is not None), default=0)

    def snapshot(self, underlying: str) -> Any:
        if underlying not in self._snaps:
            infos = self._store.list_snapshots(underlying=underlying)
            self._snaps[underlying] = self._store.load_snapshot(infos[-1].id) if infos else None
            if infos:
                self.infos[underlying] = infos[-1]
        return self._snaps[underlying]


# --- output shared by the data commands ---------------------------------------------------------------------
def json_num(x: float | None) -> float | None:
    """JSON has no NaN: a missing number is null."""
    return None if x is None or not math.isfinite(x) else float(x)


def contract_keys(c: Any) -> dict[str, Any]:
    return {"root": c.root.value, "expiry": c.expiry.isoformat(), "strike": c.strike, "right": c.right.value}


def iso_utc(ns: int) -> str:
    return datetime.fromtimestamp(ns // 10**9, tz=UTC).replace(microsecond=(ns % 10**9) // 1000) \
        .isoformat().replace("+00:00", "Z")


def print_table(header: Sequence[str], rows: list[Sequence[str]], right: set[int]) -> None:
    widths = [max(len(r[k]) for r in [header, *rows]) for k in range(len(header))]
    for r in [header, *rows]:
        print("  ".join(c.rjust(w) if k in right else c.ljust(w)
                        for k, (c, w) in enumerate(zip(r, widths, strict=True))).rstrip())


def fmt_num(x: float | None, spec: str = ".2f") -> str:
    return "-" if x is None or not math.isfinite(x) else format(x, spec)


def dump_json(payload: dict[str, Any]) -> None:
    json.dump(payload, sys.stdout)
    sys.stdout.write("\n")
