"""Where the app keeps its files: data folder, database, logs.

Resolution order for the database: an explicit path (``--db``), then ``$SPX_TERMINAL_DB``, then
``<data folder>/spx_terminal.sqlite``. The data folder is ``$SPX_TERMINAL_HOME`` when set (tests set
it to a temporary folder), else the platform's user data folder (platformdirs).
"""

from __future__ import annotations

import os
from pathlib import Path

APP_NAME = "spx-terminal"
APP_AUTHOR = "SPXTerminal"
ENV_HOME = "SPX_TERMINAL_HOME"
ENV_DB = "SPX_TERMINAL_DB"
DB_FILENAME = "spx_terminal.sqlite"

__all__ = ["data_dir", "log_dir", "database_path", "ENV_HOME", "ENV_DB"]


def data_dir() -> Path:
    """The user's data folder (created if missing)."""
    home = os.environ.get(ENV_HOME)
    if home:
        path = Path(home)
    else:
        import platformdirs

        path = Path(platformdirs.user_data_dir(APP_NAME, APP_AUTHOR))
    path.mkdir(parents=True, exist_ok=True)
    return path


def log_dir() -> Path:
    """The user's log folder (created if missing)."""
    home = os.environ.get(ENV_HOME)
    if home:
        path = Path(home) / "logs"
    else:
        import platformdirs

        path = Path(platformdirs.user_log_dir(APP_NAME, APP_AUTHOR))
    path.mkdir(parents=True, exist_ok=True)
    return path


def database_path(explicit: str | os.PathLike[str] | None = None) -> Path:
    """The SQLite database file to use (its folder is created if missing)."""
    if explicit:
        path = Path(explicit).expanduser()
    elif os.environ.get(ENV_DB):
        path = Path(os.environ[ENV_DB]).expanduser()
    else:
        path = data_dir() / DB_FILENAME
    path.parent.mkdir(parents=True, exist_ok=True)
    return path
