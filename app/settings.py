"""User settings, persisted with QSettings in an INI file in the app's data folder.

The INI file lives beside the database (``spx_core.paths.data_dir()/settings.ini``), so tests that
point ``SPX_TERMINAL_HOME`` at a temp folder never touch a developer's real settings.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

from PySide6.QtCore import QSettings

from app.models.chain_data import VISIBLE_FIELDS, ChainField
from spx_core.path_checks import DataPathError, PathOrigin, check_database_path
from spx_core.paths import data_dir

__all__ = ["AppSettings", "SettingsError", "load_settings", "load_settings_with_notes", "save_settings", "qsettings",
           "THEMES", "SPEEDS", "SETTINGS_DB", "ib_settings"]

log = logging.getLogger(__name__)

THEMES = ("dark", "light")
#: Simulator speeds offered in the toolbar (simulated seconds per wall second).
SPEEDS = (1.0, 10.0, 60.0)


class SettingsError(ValueError):
    """A setting has a value the app cannot use."""


#: How messages name the database path of the settings, and how to fix it.
SETTINGS_DB = PathOrigin("settings database path", "choose a database file in a folder you can write "
                                                   "(Settings > Database), or start with --db PATH")


@dataclass(frozen=True, slots=True)
class AppSettings:
    """What the settings dialog edits.

    Attributes:
        db_path: SQLite database file; "" means the default in the user data folder.
        seed: simulator seed (integer >= 0).
        speed: simulator speed, simulated seconds per wall second (one of 1, 10, 60).
        strike_window: strikes shown around the money in the chain (4..400).
        chain_columns: visible chain columns, ChainField names (e.g. "BID", "IV").
        theme: "dark" or "light".
        ib_host / ib_port / ib_client_id: TWS or IB Gateway for the "IB" market-data source (paper TWS 7497);
            the client id must differ from every other API client's on that TWS (the order connection's too).
    """

    db_path: str = ""
    seed: int = 7
    speed: float = 1.0
    strike_window: int = 30
    chain_columns: tuple[str, ...] = ("BID", "ASK", "IV", "DELTA", "GAMMA", "THETA", "VOLUME", "OI")
    theme: str = "dark"
    ib_host: str = "127.0.0.1"
    ib_port: int = 7497
    ib_client_id: int = 18

    def __post_init__(self) -> None:
        if self.seed < 0:
            raise SettingsError(f"simulator seed {self.seed} must be >= 0")
        if self.speed not in SPEEDS:
            raise SettingsError(f"simulator speed {self.speed:g}x must be one of {', '.join(f'{s:g}x' for s in SPEEDS)}")
        if not 4 <= self.strike_window <= 400:
            raise SettingsError(f"strike window {self.strike_window} must be between 4 and 400 strikes")
        known = {f.name for f in VISIBLE_FIELDS}
        unknown = [c for c in self.chain_columns if c not in known]
        if unknown or not self.chain_columns:
            raise SettingsError(f"chain columns {unknown or '(none)'} invalid; choose from {sorted(known)}")
        if self.theme not in THEMES:
            raise SettingsError(f"theme {self.theme!r} must be one of {THEMES}")
        _check_ib(self)
        if self.db_path:
            try:  # refused here, the settings dialog shows the reason instead of the app failing later
                check_database_path(Path(self.db_path).expanduser(), SETTINGS_DB, must_exist=False)
            except DataPathError as exc:
                raise SettingsError(str(exc)) from None

    @property
    def chain_fields(self) -> list[ChainField]:
        return [ChainField[c] for c in self.chain_columns]

    def with_changes(self, **changes: object) -> AppSettings:
        return replace(self, **changes)


def _check_ib(s: AppSettings) -> None:
    if not s.ib_host.strip():
        raise SettingsError("IB host is empty; use 127.0.0.1 for TWS / IB Gateway on this machine")
    if not 0 < s.ib_port < 65536:
        raise SettingsError(f"IB port {s.ib_port} is not a TCP port; paper TWS listens on 7497, IB Gateway on 4002")
    if not 0 <= s.ib_client_id < 2**31:
        raise SettingsError(f"IB client id {s.ib_client_id} must be a non-negative integer")


def ib_settings(s: AppSettings):
    """The IB connection settings of the "IB" market-data source (``spx_core.execution.ib.IbSettings``)."""
    from spx_core.execution.ib import IbSettings

    return IbSettings(host=s.ib_host, port=s.ib_port, client_id=s.ib_client_id)


def qsettings() -> QSettings:
    """The app's QSettings (INI file in the data folder)."""
    return QSettings(str(data_dir() / "settings.ini"), QSettings.Format.IniFormat)


def load_settings() -> AppSettings:
    """Read settings; a missing or unusable value falls back to its default (logged, not fatal)."""
    return load_settings_with_notes()[0]


def load_settings_with_notes() -> tuple[AppSettings, tuple[str, ...]]:
    """:func:`load_settings`, plus one line per fall-back the user should be told about.

    A stored database path that cannot be used (its folder is a file, or not writable) is dropped on
    its own, so the default database is used and the other settings are kept.
    """
    store = qsettings()
    defaults = AppSettings()
    values = {}
    notes: list[str] = []
    for f in fields(AppSettings):
        raw = store.value(f"settings/{f.name}")
        if raw is None:
            continue
        default = getattr(defaults, f.name)
        try:
            if isinstance(default, tuple):
                values[f.name] = tuple(x for x in (raw if isinstance(raw, list) else str(raw).split(",")) if x)
            else:
                values[f.name] = type(default)(raw)
        except (TypeError, ValueError):
            log.warning("ignoring unreadable setting %s=%r", f.name, raw)
    if values.get("db_path"):
        try:
            AppSettings(db_path=values["db_path"])
        except SettingsError as exc:
            del values["db_path"]
            notes.append(f"{exc}; using the default database this time")
            log.warning("%s", notes[-1])
    try:
        return AppSettings(**values), tuple(notes)
    except SettingsError as exc:
        log.warning("stored settings rejected (%s); using defaults", exc)
        return defaults, tuple(notes)


def save_settings(settings: AppSettings) -> None:
    store = qsettings()
    for name, value in asdict(settings).items():
        store.setValue(f"settings/{name}", ",".join(value) if isinstance(value, tuple) else value)
    store.sync()
