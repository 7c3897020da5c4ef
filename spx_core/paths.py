"""Where the app keeps its files: data folder, database, logs.

Resolution order for the database: an explicit path (``--db``), then ``$SPX_TERMINAL_DB``, then
``<data folder>/spx_terminal.sqlite``. The data folder is ``$SPX_TERMINAL_HOME`` when set (tests set
it to a temporary folder), else the platform's user data folder (platformdirs).

A folder that cannot be used (a file in the way, no permission) raises
:class:`~spx_core.storage.errors.DatabasePathError` (a ``StorageError``) with one line naming the
folder, where its path came from and what to do.
"""

from __future__ import annotations

import os
from pathlib import Path

from spx_core.storage.errors import DatabasePathError

APP_NAME = "spx-terminal"
APP_AUTHOR = "SPXTerminal"
ENV_HOME = "SPX_TERMINAL_HOME"
ENV_DB = "SPX_TERMINAL_DB"
DB_FILENAME = "spx_terminal.sqlite"

__all__ = ["data_dir", "log_dir", "database_path", "create_database_folder", "data_dir_location",
           "log_dir_location", "configured_database", "ENV_HOME", "ENV_DB", "DatabasePathError"]


def _usable_folder(path: Path, origin: str) -> Path:
    """Create ``path`` if missing and check it is a writable folder; ``origin`` says where it came from."""
    fix = f"unset {ENV_HOME} or point it at a writable folder" if origin == ENV_HOME else "choose another folder"
    try:
        path.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise DatabasePathError(f"{origin} {path} is not a folder (a file is in the way); {fix}") from None
    except OSError as exc:
        raise DatabasePathError(f"cannot create {origin} {path}: {exc.strerror or exc}; {fix}") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise DatabasePathError(f"{origin} {path} is not writable; {fix}")
    return path


def data_dir_location() -> Path:
    """The data folder as configured (``$SPX_TERMINAL_HOME`` or the user's), without creating it."""
    home = os.environ.get(ENV_HOME)
    if home:
        return Path(home).expanduser()
    import platformdirs

    return Path(platformdirs.user_data_dir(APP_NAME, APP_AUTHOR))


def log_dir_location() -> Path:
    """The log folder as configured (``$SPX_TERMINAL_HOME/logs`` or the user's), without creating it."""
    home = os.environ.get(ENV_HOME)
    if home:
        return Path(home).expanduser() / "logs"
    import platformdirs

    return Path(platformdirs.user_log_dir(APP_NAME, APP_AUTHOR))


def configured_database(explicit: str | os.PathLike[str] | None = None) -> Path | None:
    """The database named by ``explicit`` (``--db``) or ``$SPX_TERMINAL_DB``; None means the default."""
    if explicit:
        return Path(explicit).expanduser()
    if os.environ.get(ENV_DB):
        return Path(os.environ[ENV_DB]).expanduser()
    return None


def data_dir() -> Path:
    """The user's data folder (created if missing)."""
    return _usable_folder(data_dir_location(), ENV_HOME if os.environ.get(ENV_HOME) else "data folder")


def log_dir() -> Path:
    """The user's log folder (created if missing)."""
    if os.environ.get(ENV_HOME):
        data_dir()  # a file in place of $SPX_TERMINAL_HOME is named as such, not as a log-folder problem
    return _usable_folder(log_dir_location(), "log folder")


def database_path(explicit: str | os.PathLike[str] | None = None, *, create_folder: bool = True) -> Path:
    """The SQLite database file to use (its folder is created if missing, unless ``create_folder=False``).

    Raises:
        DatabasePathError: the path is a folder, or its folder cannot be created.
    """
    path = configured_database(explicit) or data_dir() / DB_FILENAME
    if create_folder:  # (a path that is a folder is refused by Store.open, where callers catch StorageError)
        create_database_folder(path)
    return path


def create_database_folder(path: Path) -> None:
    """Create the folder of database file ``path`` if missing.

    Raises:
        DatabasePathError: a file stands where a folder must be, or the folder cannot be created.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise DatabasePathError(f"cannot create database {path}: a file is in the way of its folder "
                                f"{path.parent}; choose another path") from None
    except OSError as exc:
        raise DatabasePathError(f"cannot create the folder {path.parent} for database {path}: "
                                f"{exc.strerror or exc}; choose a writable location") from None
