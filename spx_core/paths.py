"""Where the app keeps its files: data folder, database, logs.

Resolution order for the database: an explicit path (``--db``), then ``$SPX_TERMINAL_DB``, then
``<data folder>/spx_terminal.sqlite``. The data folder is ``$SPX_TERMINAL_HOME`` when set (tests set
it to a temporary folder), else the platform's user data folder (platformdirs).

A path that cannot be used (a file where a folder must be, a folder that cannot be created or written)
raises :class:`DataPathError`, whose one-line message names the setting it came from and how to fix it:
the CLI and the GUI print it as it is.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

APP_NAME = "spx-terminal"
APP_AUTHOR = "SPXTerminal"
ENV_HOME = "SPX_TERMINAL_HOME"
ENV_DB = "SPX_TERMINAL_DB"
DB_FILENAME = "spx_terminal.sqlite"

__all__ = ["data_dir", "log_dir", "database_path", "database_origin", "check_database_path", "ensure_folder",
           "DataPathError", "PathOrigin", "ENV_HOME", "ENV_DB"]


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
    home = os.environ.get(ENV_HOME)
    if home:
        return Path(home).expanduser(), _ENV_HOME
    import platformdirs

    return Path(platformdirs.user_data_dir(APP_NAME, APP_AUTHOR)), _USER_DIR


def _nearest_existing(path: Path) -> Path:
    """``path`` or its nearest ancestor that exists: it decides whether ``mkdir -p path`` can work."""
    while not os.path.lexists(path) and path != path.parent:
        path = path.parent
    return path


def _folder_problem(subject: str, path: Path, *, writable: bool = True) -> str | None:
    """Why ``path`` cannot be (made) a folder (``writable``: one we can write), phrased after ``subject``."""
    existing = _nearest_existing(path)
    where = subject if existing == path else f"{subject}: {existing}"
    if not existing.is_dir():
        return f"{where} is a file, not a folder"
    if writable and not os.access(existing, os.W_OK | os.X_OK):
        return f"{where} is not writable"
    return None


def ensure_folder(path: Path, origin: PathOrigin, *, create: bool = True) -> Path:
    """Check that ``path`` is (or can be made) a writable folder; create it unless ``create`` is False.

    Raises:
        DataPathError: a file stands where a folder is needed, or the folder cannot be created or written.
    """
    problem = _folder_problem(f"{origin.label} {path}", path)
    if problem is not None:
        raise DataPathError(f"{problem}; {origin.fix}")
    if create:
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:  # e.g. a read-only file system that access() did not report
            raise DataPathError(f"{origin.label} {path} cannot be created ({exc.strerror}); {origin.fix}") from None
    return path


def data_dir(*, create: bool = True) -> Path:
    """The user's data folder (created if missing unless ``create`` is False)."""
    home, origin = _home()
    return ensure_folder(home, origin, create=create)


def log_dir() -> Path:
    """The user's log folder (created if missing)."""
    home = os.environ.get(ENV_HOME)
    if home:
        return ensure_folder(Path(home).expanduser() / "logs", _ENV_HOME)
    import platformdirs

    return ensure_folder(Path(platformdirs.user_log_dir(APP_NAME, APP_AUTHOR)), _USER_DIR)


def database_origin(explicit: str | os.PathLike[str] | None = None,
                    origin: PathOrigin = FLAG_DB) -> tuple[Path, PathOrigin]:
    """The database file to use and where that choice came from, creating nothing.

    ``origin`` labels an explicit path (``--db`` by default; the GUI passes its settings file's label).
    """
    if explicit:
        return Path(explicit).expanduser(), origin
    if os.environ.get(ENV_DB):
        return Path(os.environ[ENV_DB]).expanduser(), _ENV_DB
    home, home_origin = _home()
    ensure_folder(home, home_origin, create=False)
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
    if must_exist:
        # a file where a folder should be is why the database is missing: say that, it is the fix
        problem = _folder_problem(f"{origin.label} {path}: folder {path.parent}", path.parent, writable=False)
        if problem is not None:
            raise DataPathError(f"{problem}; {origin.fix}")
        raise DataPathError(f"{origin.label} {path}: no such database; check the path (`spx-data import` "
                            f"or `spx-data simulate` create one)")
    problem = _folder_problem(f"{origin.label} {path}: folder {path.parent}", path.parent)
    if problem is not None:
        raise DataPathError(f"{problem}; {origin.fix}")
    return path


def database_path(explicit: str | os.PathLike[str] | None = None) -> Path:
    """The SQLite database file to use (its folder is created if missing).

    Raises:
        DataPathError: the path or its folder cannot be used (the message says how to fix it).
    """
    path, origin = database_origin(explicit)
    if not check_database_path(path, origin, must_exist=False).exists():
        ensure_folder(path.parent, origin)  # an existing file's folder is left alone (it may be read-only)
    return path
