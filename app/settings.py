"""User settings, persisted with QSettings in an INI file in the app's data folder.

The INI file lives beside the database (``spx_core.paths.data_dir()/settings.ini``), so tests that
point ``SPX_TERMINAL_HOME`` at a temp folder never touch a developer's real settings.
"""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass, fields, replace
from datetime import date
from pathlib import Path

from PySide6.QtCore import QSettings

from app.models.chain_data import VISIBLE_FIELDS, ChainField
from spx_core.execution.fees import DEFAULT_FEES, FeeSchedule
from spx_core.path_checks import DataPathError, PathOrigin, check_database_path
from spx_core.paths import data_dir

__all__ = ["AppSettings", "SettingsError", "load_settings", "load_settings_with_notes", "save_settings", "qsettings",
           "THEMES", "SPEEDS", "SETTINGS_DB", "BROKERS", "FILL_MODELS",
           "ALERT_SEVERITIES", "COST_FIGURES", "COST_FIELDS", "MAX_COST"]

log = logging.getLogger(__name__)

THEMES = ("dark", "light")
#: Simulator speeds offered in the toolbar (simulated seconds per wall second).
SPEEDS = (1.0, 10.0, 60.0)
#: Brokers orders can go to: the in-process paper broker (default) or Interactive Brokers (TWS / IB Gateway).
BROKERS = ("paper", "ib")
#: Paper fill models (``spx_core.execution.fill_model.FillModel.mode``): cross at the natural price, fill at
#: mid, or at mid -/+ ``fill_offset`` of the package spread against us.
FILL_MODELS = ("natural", "mid", "mid_offset")
#: Alert severities, least to most severe (``spx_core.risk.alerts.Severity`` values): the e-mail/webhook threshold.
ALERT_SEVERITIES = ("info", "warning", "critical")


#: The paper broker's cost figures the user edits (:class:`~spx_core.execution.fees.FeeSchedule` fields, dollars
#: per contract; the order minimum per order): field -> (label, where the figure comes from). The premium
#: thresholds ($0.10 / $0.05 commission tiers, $1.00 Cboe tier) stay the schedule's.
COST_FIGURES: dict[str, tuple[str, str]] = {
    "commission": ("IBKR commission", ("IBKR Pro tiered, US index options, premium >= $0.10 (first 10,000 "
                                       "contracts a month)")),
    "commission_mid": ("commission $0.05-0.10", "IBKR Pro tiered, premium from $0.05 to below $0.10"),
    "commission_low": ("commission < $0.05", "IBKR Pro tiered, premium below $0.05"),
    "order_minimum": ("order minimum", "IBKR minimum commission per order (across all of its fills)"),
    "cboe_fee": ("Cboe SPX fee", ("Cboe SPX/SPXW fee table: customer fee at premiums >= $1.00 (fee codes "
                                  "effective 2024-11-01, as IBKR passes it on)")),
    "cboe_fee_low": ("Cboe fee < $1", "Cboe SPX/SPXW fee table: customer fee at premiums below $1.00"),
    "occ_fee": ("OCC fee", "OCC clearing fee per contract (OCC fee schedule)"),
    "orf_fee": ("ORF", "Options Regulatory Fee per contract (OCC-collected); revised during the year"),
    "cat_fee": ("CAT fee", "FINRA Consolidated Audit Trail fee per contract"),
    "taf_fee": ("FINRA TAF", "FINRA Trading Activity Fee per contract sold (IBKR: 0.00279 x quantity sold)"),
}
COST_FIELDS = (*COST_FIGURES, "orf_as_of")
#: The most a cost figure may be, dollars per contract (per order for the minimum): a typo guard.
MAX_COST = 10.0


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
        broker: where orders go, one of :data:`BROKERS` ("paper" default).
        starting_cash: the paper account's cash before any trade, dollars (> 0).
        fill_model: paper fill model, one of :data:`FILL_MODELS`.
        fill_offset: for "mid_offset", the fraction of each leg's bid/ask spread paid beyond mid (0..0.5, where
            0.5 is the natural price; 0.30 as the SPX Tools plan's backtest uses).
        latency_ms: paper broker latency between an order's arrival and its first possible fill, wall ms of
            market time (0..60000).
        ib_host / ib_port / ib_client_id: where TWS or IB Gateway listens (paper TWS 7497 by default) and the
            API client id (keep it stable: TWS binds orders to it).
        ib_account: the IB account orders go to ("" = the one TWS manages).
        ib_live_enabled / ib_live_confirmation: live trading needs both the switch on and the confirmation
            ``spx_core.execution.ib.LIVE_CONFIRMATION`` typed exactly; otherwise a live port or account is refused.
        alert_sound / alert_desktop: a new alert beeps / shows a desktop notification (system tray).
        alert_webhook_url: POST each alert there as JSON ("" = no webhook; http:// or https://).
        alert_smtp_host / _port / _user / _from / _to / _tls: e-mail each alert ("" host = no e-mail); the SMTP
            password is kept in the system keyring, never in this file.
        alert_min_severity: the least severity sent by webhook / e-mail (one of :data:`ALERT_SEVERITIES`).
        alert_skip_notices: each entry the automation skips is an INFO alert (panel, status bar, tray; webhook /
            e-mail only when ``alert_min_severity`` is "info"); off mutes them (they can be many). Entries, exits,
            hedges and refused orders are always notified (:mod:`spx_core.automation.notices`).
        close_all_on_breaker: when the circuit breaker trips, also send closing orders for every open trade
            (working orders are always cancelled); written to the database's risk_state for the guard.
        commission ... taf_fee: the paper broker's cost figures, dollars per contract (``order_minimum`` per
            order), 0..:data:`MAX_COST`, defaults from :data:`~spx_core.execution.fees.DEFAULT_FEES`
            (:data:`COST_FIGURES` has each one's source); :meth:`fee_schedule` makes the schedule of them.
        orf_as_of: the ISO date (YYYY-MM-DD) the ``orf_fee`` figure was taken.
    """

    db_path: str = ""
    seed: int = 7
    speed: float = 1.0
    strike_window: int = 30
    chain_columns: tuple[str, ...] = ("BID", "ASK", "IV", "DELTA", "GAMMA", "THETA", "VOLUME", "OI")
    theme: str = "dark"
    broker: str = "paper"
    starting_cash: float = 100_000.0
    fill_model: str = "natural"
    fill_offset: float = 0.30
    latency_ms: int = 0
    ib_host: str = "127.0.0.1"
    ib_port: int = 7497
    ib_client_id: int = 17
    ib_account: str = ""
    ib_live_enabled: bool = False
    ib_live_confirmation: str = ""
    alert_sound: bool = True
    alert_desktop: bool = True
    alert_webhook_url: str = ""
    alert_smtp_host: str = ""
    alert_smtp_port: int = 587
    alert_smtp_user: str = ""
    alert_smtp_from: str = ""
    alert_smtp_to: str = ""
    alert_smtp_tls: bool = True
    alert_min_severity: str = "warning"
    alert_skip_notices: bool = True
    close_all_on_breaker: bool = False
    commission: float = DEFAULT_FEES.commission
    commission_mid: float = DEFAULT_FEES.commission_mid
    commission_low: float = DEFAULT_FEES.commission_low
    order_minimum: float = DEFAULT_FEES.order_minimum
    cboe_fee: float = DEFAULT_FEES.cboe_fee
    cboe_fee_low: float = DEFAULT_FEES.cboe_fee_low
    occ_fee: float = DEFAULT_FEES.occ_fee
    orf_fee: float = DEFAULT_FEES.orf_fee
    orf_as_of: str = DEFAULT_FEES.orf_as_of.isoformat()
    cat_fee: float = DEFAULT_FEES.cat_fee
    taf_fee: float = DEFAULT_FEES.taf_fee

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
        self._check_trading()
        self._check_alerts()
        self._check_costs()
        if self.db_path:
            try:  # refused here, the settings dialog shows the reason instead of the app failing later
                check_database_path(Path(self.db_path).expanduser(), SETTINGS_DB, must_exist=False)
            except DataPathError as exc:
                raise SettingsError(str(exc)) from None

    def _check_trading(self) -> None:
        if self.broker not in BROKERS:
            raise SettingsError(f"broker {self.broker!r} must be one of {', '.join(BROKERS)}")
        if not (math.isfinite(self.starting_cash) and self.starting_cash > 0):
            raise SettingsError(f"starting cash {self.starting_cash!r} must be a positive number of dollars")
        if self.fill_model not in FILL_MODELS:
            raise SettingsError(f"fill model {self.fill_model!r} must be one of {', '.join(FILL_MODELS)}")
        if not 0.0 <= self.fill_offset <= 0.5:
            raise SettingsError(f"fill offset {self.fill_offset!r} must be a fraction of the spread from 0 to 0.5 "
                                f"(0.5 fills at the natural price)")
        if not 0 <= self.latency_ms <= 60_000:
            raise SettingsError(f"paper latency {self.latency_ms} ms must be between 0 and 60000 ms")
        if not self.ib_host.strip():
            raise SettingsError("IB host is empty; use 127.0.0.1 for TWS or IB Gateway on this machine")
        if not 0 < self.ib_port < 65536:
            raise SettingsError(f"IB port {self.ib_port} is not a TCP port; TWS paper listens on 7497")
        if self.ib_client_id < 0:
            raise SettingsError(f"IB client id {self.ib_client_id} must be >= 0")

    def _check_alerts(self) -> None:
        if self.alert_min_severity not in ALERT_SEVERITIES:
            raise SettingsError(f"alert severity {self.alert_min_severity!r} must be one of "
                                f"{', '.join(ALERT_SEVERITIES)}")
        url = self.alert_webhook_url.strip()
        if url and not url.lower().startswith(("http://", "https://")):
            raise SettingsError(f"alert webhook {url!r} must start with http:// or https:// (or be empty)")
        if not 0 < self.alert_smtp_port < 65536:
            raise SettingsError(f"SMTP port {self.alert_smtp_port} is not a TCP port; 587 is the usual one")
        if self.alert_smtp_host.strip() and not self.alert_smtp_to.strip():
            raise SettingsError("alert e-mail needs a recipient: fill in \"To\" or clear the SMTP host")
        if self.alert_smtp_host.strip() and not (self.alert_smtp_from.strip() or self.alert_smtp_user.strip()):
            raise SettingsError("alert e-mail needs a sender: fill in \"From\" or the SMTP user")

    def _check_costs(self) -> None:
        for name, (label, _) in COST_FIGURES.items():
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and 0.0 <= value <= MAX_COST):  # NaN fails both
                per = "order" if name == "order_minimum" else "contract"
                raise SettingsError(f"{label} {value!r} must be from $0 to ${MAX_COST:g} per {per}; fix it in "
                                    f"Settings > Costs (default ${getattr(DEFAULT_FEES, name):g})")
        try:
            date.fromisoformat(self.orf_as_of)
        except (TypeError, ValueError):
            raise SettingsError(f"ORF date {self.orf_as_of!r} is not a date; write it as YYYY-MM-DD in "
                                f"Settings > Costs") from None

    def fee_schedule(self) -> FeeSchedule:
        """The paper broker's :class:`FeeSchedule` of these figures (the thresholds of :data:`DEFAULT_FEES`)."""
        return replace(DEFAULT_FEES, orf_as_of=date.fromisoformat(self.orf_as_of),
                       **{name: float(getattr(self, name)) for name in COST_FIGURES})

    @property
    def chain_fields(self) -> list[ChainField]:
        return [ChainField[c] for c in self.chain_columns]

    def with_changes(self, **changes: object) -> AppSettings:
        return replace(self, **changes)


def qsettings() -> QSettings:
    """The app's QSettings (INI file in the data folder)."""
    return QSettings(str(data_dir() / "settings.ini"), QSettings.Format.IniFormat)


def load_settings() -> AppSettings:
    """Read settings; a missing or unusable value falls back to its default (logged, not fatal)."""
    return load_settings_with_notes()[0]


def load_settings_with_notes() -> tuple[AppSettings, tuple[str, ...]]:
    """:func:`load_settings`, plus one line per fall-back the user should be told about.

    A stored database path that cannot be used (its folder is a file, or not writable) or a cost figure out of
    range is dropped on its own, so its default is used and the other settings are kept.
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
            if isinstance(default, bool):  # the INI stores "true"/"false": bool("false") would be True
                values[f.name] = str(raw).strip().lower() in ("true", "1", "yes")
            elif isinstance(default, tuple):
                values[f.name] = tuple(x for x in (raw if isinstance(raw, list) else str(raw).split(",")) if x)
            else:
                values[f.name] = type(default)(raw)
        except (TypeError, ValueError):
            log.warning("ignoring unreadable setting %s=%r", f.name, raw)
    # checked on their own (none depends on another field): a bad one falls back alone, the rest are kept
    for name in ("db_path", *COST_FIELDS):
        if name not in values or (name == "db_path" and not values[name]):
            continue
        try:
            AppSettings(**{name: values[name]})
        except SettingsError as exc:
            del values[name]
            fallback = "database" if name == "db_path" else repr(getattr(defaults, name))
            notes.append(f"{exc}; using the default {fallback} this time")
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
