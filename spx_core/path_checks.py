"""Check the app's paths before anything is created or opened, and say what is wrong in one line.

:mod:`spx_core.paths` resolves (and creates) the data folder and the database; this module answers
"can that work?" first, naming where the path came from (``--db``, ``$SPX_TERMINAL_DB``,
``$SPX_TERMINAL_HOME``, the settings file) and how to fix it. The CLI and the GUI call it on startup,
so a file standing where a folder must be, an unwritable folder, a database path that is a folder or
(for readers) a missing database ends in one line instead of a traceback or an empty new database.

Nothing here creates anything: resolution follows :mod:`spx_core.paths` without its ``mkdir``.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from pathlib import Path

from spx_core.paths import (
    DB_FILENAME,
    ENV_DB,
    ENV_HOME,
    configured_database,
    data_dir_location,
    log_dir_location,
)

__all__ = ["DataPathError", "PathOrigin", "FLAG_DB", "check_folder", "check_home", "database_origin",
           "check_database_path", "db_argument"]


def db_argument(text: str) -> str:
    """The ``type=`` of every ``--db`` option: an empty path is a mistake (an unset shell variable, a
    stray quote), not a request for the default database, so it is refused before anything is opened."""
    if not text.strip():
        raise argparse.ArgumentTypeError("is empty: give the SQLite file's path, or leave --db out to use "
                                         "the default database")
    return text


class DataPathError(OSError):
    """A configured file or folder cannot be used; the message says which setting and how to fix it."""


@dataclass(frozen=True, slots=True)
class PathOrigin:
    """Where a path came from, for messages: ``label`` names it, ``fix`` says how to change it."""

    label: str
    fix: str


FLAG_DB = PathOrigin("--db", "pass a --db file in a folder you can write")
_ENV_DB = PathOrigin(ENV_DB, f"set {ENV_DB} to a file in a folder you can write, or unset it")
_ENV_HOME = PathOrigin(ENV_HOME, f"set {ENV_HOME} to a folder you can write, or unset it")
_USER_DIR = PathOrigin("the user data folder", f"make it writable, or set {ENV_HOME} to a folder you can write")


def _home() -> tuple[Path, PathOrigin]:
    """The data folder as :func:`spx_core.paths.data_dir` resolves it, without creating it."""
    return data_dir_location(), _ENV_HOME if os.environ.get(ENV_HOME) else _USER_DIR


def _log_folder() -> tuple[Path, PathOrigin]:
    """The log folder as :func:`spx_core.paths.log_dir` resolves it, without creating it."""
    return log_dir_location(), _ENV_HOME if os.environ.get(ENV_HOME) else _USER_DIR


def _folder_problem(subject: str, path: Path, *, writable: bool = True) -> str | None:
    """Why ``path`` cannot be (made) a folder (``writable``: one we can write), phrased after ``subject``."""
    existing = path
    while not os.path.lexists(existing) and existing != existing.parent:
        existing = existing.parent  # the nearest ancestor that exists decides whether mkdir -p can work
    where = subject if existing == path else f"{subject}: {existing}"
    if not existing.is_dir():
        return f"{where} is a file, not a folder"
    if writable and not os.access(existing, os.W_OK | os.X_OK):
        return f"{where} is not writable"
    return None


def check_folder(path: Path, origin: PathOrigin) -> Path:
    """Check that ``path`` is, or can be made, a folder we can write.

    Raises:
        DataPathError: a file stands where a folder is needed, or the folder (or the ancestor it
            would be made in) is not writable.
    """
    problem = _folder_problem(f"{origin.label} {path}", path)
    if problem is not None:
        raise DataPathError(f"{problem}; {origin.fix}")
    return path


def check_home() -> Path:
    """Check the data folder and the log folder (``$SPX_TERMINAL_HOME`` or the user's); returns the data folder."""
    home, origin = _home()
    check_folder(home, origin)
    logs, log_origin = _log_folder()
    check_folder(logs, log_origin)
    return home


def database_origin(explicit: str | os.PathLike[str] | None = None,
                    origin: PathOrigin = FLAG_DB) -> tuple[Path, PathOrigin]:
    """The database file :func:`spx_core.paths.database_path` would use, and where that choice came from.

    ``origin`` labels an explicit path (``--db`` by default; the GUI passes its settings file's label).

    Raises:
        DataPathError: the default is wanted and the data folder cannot be used.
    """
    configured = configured_database(explicit)
    if configured is not None:
        return configured, origin if explicit else _ENV_DB
    home, home_origin = _home()
    check_folder(home, home_origin)
    return home / DB_FILENAME, PathOrigin(f"the default database (in {home_origin.label})", home_origin.fix)


def check_database_path(path: Path, origin: PathOrigin, *, must_exist: bool) -> Path:
    """Refuse a database path that cannot work, before anything is opened or created.

    ``must_exist`` is for readers: a mistyped path must fail, not silently become an empty database.

    Raises:
        DataPathError: the path is a folder or not a regular file, its folder cannot be created or
            written, or (``must_exist``) there is no file.
    """
    if path.is_dir():
        raise DataPathError(f"{origin.label} {path} is a folder, not a database file; "
                            f"name a file, e.g. {path / DB_FILENAME}")
    if os.path.lexists(path):
        if not path.is_file():
            raise DataPathError(f"{origin.label} {path} is not a regular file; {origin.fix}")
        return path
    subject = f"{origin.label} {path}: folder {path.parent}"
    if must_exist:
        # a file where a folder should be is why the database is missing: say that, it is the fix
        problem = _folder_problem(subject, path.parent, writable=False)
        if problem is not None:
            raise DataPathError(f"{problem}; {origin.fix}")
        raise DataPathError(f"{origin.label} {path}: no such database; check the path (`spx-data import` "
                            f"or `spx-data simulate` create one)")
    problem = _folder_problem(subject, path.parent)
    if problem is not None:
        raise DataPathError(f"{problem}; {origin.fix}")
    return path
