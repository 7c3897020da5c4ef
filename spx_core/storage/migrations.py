"""Schema migrations: an ordered list of steps, each applied in its own transaction on open.

To change the schema (orders, fills, positions, backtest tables, ...), *append* a
:class:`Migration` with the next version number to :data:`MIGRATIONS` and update
``schema.py`` to match. Never edit a migration that has shipped: databases in the field have
already run it. A step is a function of an open SQLAlchemy ``Connection`` (inside the
transaction); it may run DDL and data fixes. If it raises, its transaction rolls back and the
database stays at the previous version.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sqlalchemy import Connection, Engine, inspect, text

from spx_core.storage.engine import BEGIN_OPTION, WRITE_TIMEOUT_S, begin_immediate
from spx_core.storage.errors import MigrationError, SchemaVersionError, StoreBusyError
from spx_core.storage.sqlite_errors import translating

__all__ = ["Migration", "MIGRATIONS", "migrate", "current_version", "latest_version"]


@dataclass(frozen=True, slots=True)
class Migration:
    """One schema step: ``apply(conn)`` takes the database from ``version - 1`` to ``version``.

    Attributes:
        rebuilds_tables: the step rebuilds a table that others reference (SQLite changes a CHECK or a
            column only by create-copy-drop-rename). Such a step runs with foreign keys off, as SQLite's
            documented procedure requires (with them on, dropping the old table would cascade-delete
            the rows that reference it), and ``PRAGMA foreign_key_check`` must pass before it commits.
    """

    version: int
    description: str
    apply: Callable[[Connection], None]
    rebuilds_tables: bool = False


def _sql(*statements: str) -> Callable[[Connection], None]:
    def apply(conn: Connection) -> None:
        for statement in statements:
            conn.exec_driver_sql(statement)
    return apply


_V1 = _sql(
    """CREATE TABLE instruments (
        id INTEGER PRIMARY KEY,
        occ_symbol TEXT NOT NULL UNIQUE,
        root TEXT NOT NULL,
        expiry TEXT NOT NULL,
        strike REAL NOT NULL CHECK (strike > 0),
        option_right TEXT NOT NULL CHECK (option_right IN ('C', 'P')),
        settlement TEXT NOT NULL CHECK (settlement IN ('AM', 'PM')),
        multiplier INTEGER NOT NULL,
        exchange TEXT NOT NULL,
        currency TEXT NOT NULL,
        con_id INTEGER,
        trading_class TEXT)""",
    "CREATE INDEX ix_instruments_con_id ON instruments (con_id)",
    """CREATE TABLE import_log (
        id INTEGER PRIMARY KEY,
        path TEXT NOT NULL,
        sha256 TEXT NOT NULL,
        fmt TEXT NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('imported', 'failed')),
        rows_read INTEGER NOT NULL DEFAULT 0,
        quotes_stored INTEGER NOT NULL DEFAULT 0,
        snapshots INTEGER NOT NULL DEFAULT 0,
        error TEXT,
        time_ns INTEGER NOT NULL)""",
    # A file can fail many times but be imported once.
    "CREATE UNIQUE INDEX ux_import_log_sha256_imported ON import_log (sha256) WHERE status = 'imported'",
    """CREATE TABLE import_rejections (
        id INTEGER PRIMARY KEY,
        import_id INTEGER NOT NULL REFERENCES import_log (id) ON DELETE CASCADE,
        line INTEGER NOT NULL,
        reason TEXT NOT NULL)""",
    "CREATE INDEX ix_import_rejections_import ON import_rejections (import_id)",
    """CREATE TABLE snapshots (
        id INTEGER PRIMARY KEY,
        underlying TEXT NOT NULL,
        time_ns INTEGER NOT NULL,
        underlying_price REAL,
        underlying_bid REAL,
        underlying_ask REAL,
        n_quotes INTEGER NOT NULL,
        n_expiries INTEGER NOT NULL,
        checksum TEXT NOT NULL,
        source TEXT NOT NULL,
        session TEXT,
        payload BLOB NOT NULL,
        import_id INTEGER REFERENCES import_log (id) ON DELETE CASCADE)""",
    "CREATE INDEX ix_snapshots_session_time ON snapshots (session, time_ns)",
    "CREATE INDEX ix_snapshots_underlying_time ON snapshots (underlying, time_ns)",
    "CREATE INDEX ix_snapshots_import ON snapshots (import_id)",
    """CREATE TABLE underlying_bars (
        id INTEGER PRIMARY KEY,
        symbol TEXT NOT NULL,
        time_ns INTEGER NOT NULL,
        open REAL,
        high REAL,
        low REAL,
        close REAL,
        volume REAL,
        import_id INTEGER REFERENCES import_log (id) ON DELETE SET NULL,
        UNIQUE (symbol, time_ns))""",
)

# Vendors' numeric instrument ids (Databento/OPRA ``instrument_id``) -> our instruments, so a quote
# file imported later than its definitions still resolves. Vendors re-use ids across days, so each
# mapping holds for [valid_from_ns, valid_to_ns) only (Databento: one UTC day, as its symbology
# intervals are); ``vendor`` names the id space (e.g. "databento:OPRA.PILLAR": ids are per dataset).
# A newer import of the same (vendor, id, valid_from) replaces the mapping; forgetting the import
# that wrote it (import_log row deleted) removes it.
_V2 = _sql(
    """CREATE TABLE instrument_ids (
        id INTEGER PRIMARY KEY,
        vendor TEXT NOT NULL,
        vendor_id INTEGER NOT NULL,
        instrument_id INTEGER NOT NULL REFERENCES instruments (id) ON DELETE CASCADE,
        valid_from_ns INTEGER NOT NULL,
        valid_to_ns INTEGER NOT NULL CHECK (valid_to_ns > valid_from_ns),
        import_id INTEGER REFERENCES import_log (id) ON DELETE CASCADE,
        UNIQUE (vendor, vendor_id, valid_from_ns))""",
    "CREATE INDEX ix_instrument_ids_import ON instrument_ids (import_id)",
)

# Imports are staged: an import_log row in status 'staging' owns rows committed in short batches that
# every read path filters out until one short commit flips it to 'imported' (see storage/imports.py).
# ``owner`` is the lock file the staging process holds (storage/staging.py): when nobody holds it any
# more, the process died and its leftovers may be purged. CHECK changes need a table rebuild.
_V3 = _sql(
    """CREATE TABLE import_log_v3 (
        id INTEGER PRIMARY KEY,
        path TEXT NOT NULL,
        sha256 TEXT NOT NULL,
        fmt TEXT NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('staging', 'imported', 'failed')),
        rows_read INTEGER NOT NULL DEFAULT 0,
        quotes_stored INTEGER NOT NULL DEFAULT 0,
        snapshots INTEGER NOT NULL DEFAULT 0,
        error TEXT,
        time_ns INTEGER NOT NULL,
        owner TEXT)""",
    """INSERT INTO import_log_v3 (id, path, sha256, fmt, status, rows_read, quotes_stored, snapshots, error, time_ns)
       SELECT id, path, sha256, fmt, status, rows_read, quotes_stored, snapshots, error, time_ns FROM import_log""",
    "DROP TABLE import_log",
    "ALTER TABLE import_log_v3 RENAME TO import_log",
    "CREATE UNIQUE INDEX ux_import_log_sha256_imported ON import_log (sha256) WHERE status = 'imported'",
)

# Orders, fills, positions and trades (issue 9). An order is its request (never changes) + the events the
# broker reported (append only); the status/filled/avg/working-terms columns of ``orders`` and the
# ``positions`` / ``trades`` rows are denormalized folds of those events and fills, written in the same
# transaction as the event (storage/orders_repo.py), so a reader never sees one without the other.
# ``snapshot_id`` is a plain number, not a foreign key: snapshots may be pruned, the record of what an
# order was decided on must stay (its checksum names the data). ``trade_decisions.order_ref`` is soft for
# the same reason (a SKIP has none; a TRADE is recorded before its order is stored).
# ``orders.trade_id`` is the request's (the trade a CLOSE order closes, or an OPEN order extends);
# ``booked_trade_id`` the trade its fills were booked to (NULL before the first fill): a trade's orders.
# ``positions.day_*``: the day baseline of portfolio.positions.Position, so a restart keeps today's P&L.
_ORDER_STATUSES = "('pending', 'submitted', 'partially_filled', 'filled', 'cancelled', 'rejected', 'expired')"
_V4 = _sql(
    """CREATE TABLE trades (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL,
        kind TEXT NOT NULL,
        side TEXT NOT NULL CHECK (side IN ('buy', 'sell')),
        quantity INTEGER NOT NULL CHECK (quantity >= 0),
        opened_quantity INTEGER NOT NULL CHECK (opened_quantity >= 0),
        closed_quantity INTEGER NOT NULL CHECK (closed_quantity >= 0),
        open_price REAL,
        close_price REAL,
        realized_pnl REAL NOT NULL,
        commission_fees REAL NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('open', 'closed')),
        opened_ns INTEGER NOT NULL,
        closed_ns INTEGER,
        CHECK ((status = 'closed') = (closed_ns IS NOT NULL)))""",
    "CREATE INDEX ix_trades_open ON trades (id) WHERE status = 'open'",
    "CREATE INDEX ix_trades_opened ON trades (opened_ns)",
    "CREATE INDEX ix_trades_closed ON trades (closed_ns)",
    # a trade leg's own accounting (portfolio.trades.TradeLeg), so a restored trade continues where it stopped
    """CREATE TABLE trade_legs (
        id INTEGER PRIMARY KEY,
        trade_id INTEGER NOT NULL REFERENCES trades (id) ON DELETE CASCADE,
        leg INTEGER NOT NULL CHECK (leg >= 0),
        instrument_id INTEGER NOT NULL REFERENCES instruments (id),
        ratio INTEGER NOT NULL CHECK (ratio != 0),
        held INTEGER NOT NULL,
        avg_cost REAL NOT NULL CHECK (avg_cost >= 0),
        opened INTEGER NOT NULL CHECK (opened >= 0),
        open_price REAL,
        closed INTEGER NOT NULL CHECK (closed >= 0),
        close_price REAL,
        realized_pnl REAL NOT NULL,
        commission_fees REAL NOT NULL,
        UNIQUE (trade_id, leg))""",
    f"""CREATE TABLE orders (
        id INTEGER PRIMARY KEY,
        ref TEXT NOT NULL UNIQUE CHECK (ref != ''),
        side TEXT NOT NULL CHECK (side IN ('buy', 'sell')),
        quantity INTEGER NOT NULL CHECK (quantity > 0),
        order_type TEXT NOT NULL CHECK (order_type IN ('LMT', 'MKT')),
        limit_price REAL,
        tif TEXT NOT NULL CHECK (tif IN ('DAY', 'GTC')),
        account TEXT NOT NULL,
        snapshot_id INTEGER,
        snapshot_checksum TEXT,
        created_ns INTEGER NOT NULL,
        name TEXT NOT NULL,
        kind TEXT NOT NULL,
        intent TEXT NOT NULL CHECK (intent IN ('open', 'close')),
        trade_id INTEGER REFERENCES trades (id),
        booked_trade_id INTEGER REFERENCES trades (id),
        broker TEXT NOT NULL,
        source TEXT NOT NULL,
        status TEXT NOT NULL CHECK (status IN {_ORDER_STATUSES}),
        reason TEXT NOT NULL DEFAULT '',
        filled INTEGER NOT NULL DEFAULT 0 CHECK (filled >= 0),
        avg_fill_price REAL,
        working_limit REAL,
        working_quantity INTEGER NOT NULL CHECK (working_quantity > 0),
        broker_order_id TEXT,
        perm_id TEXT,
        commission REAL NOT NULL DEFAULT 0,
        fees REAL NOT NULL DEFAULT 0,
        updated_ns INTEGER NOT NULL,
        CHECK ((order_type = 'LMT') = (limit_price IS NOT NULL)),
        CHECK (intent = 'open' OR trade_id IS NOT NULL),
        CHECK (trade_id IS NULL OR booked_trade_id IS NULL OR booked_trade_id = trade_id))""",
    # "working orders" (restored on restart) and "today's orders" are the two hot reads
    "CREATE INDEX ix_orders_working ON orders (id) WHERE status IN ('pending', 'submitted', 'partially_filled')",
    "CREATE INDEX ix_orders_updated ON orders (updated_ns)",
    "CREATE INDEX ix_orders_booked_trade ON orders (booked_trade_id)",
    """CREATE TABLE order_legs (
        id INTEGER PRIMARY KEY,
        order_id INTEGER NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
        leg INTEGER NOT NULL CHECK (leg >= 0),
        instrument_id INTEGER NOT NULL REFERENCES instruments (id),
        ratio INTEGER NOT NULL CHECK (ratio != 0),
        UNIQUE (order_id, leg))""",
    # order_id is NULL for settlement fills (expiry, exercise): they close positions, no order sent them
    """CREATE TABLE fills (
        id INTEGER PRIMARY KEY,
        exec_id TEXT NOT NULL UNIQUE CHECK (exec_id != ''),
        order_id INTEGER REFERENCES orders (id) ON DELETE CASCADE,
        leg INTEGER NOT NULL CHECK (leg >= 0),
        instrument_id INTEGER NOT NULL REFERENCES instruments (id),
        side TEXT NOT NULL CHECK (side IN ('buy', 'sell')),
        quantity INTEGER NOT NULL CHECK (quantity > 0),
        price REAL NOT NULL CHECK (price >= 0),
        time_ns INTEGER NOT NULL,
        commission REAL NOT NULL DEFAULT 0,
        fees REAL NOT NULL DEFAULT 0)""",
    "CREATE INDEX ix_fills_order ON fills (order_id)",
    "CREATE INDEX ix_fills_instrument ON fills (instrument_id)",
    "CREATE INDEX ix_fills_time ON fills (time_ns)",
    f"""CREATE TABLE order_events (
        id INTEGER PRIMARY KEY,
        order_id INTEGER NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
        seq INTEGER NOT NULL CHECK (seq >= 0),
        kind TEXT NOT NULL CHECK (kind IN ('status', 'fill', 'amend')),
        time_ns INTEGER NOT NULL,
        status TEXT CHECK (status IS NULL OR status IN {_ORDER_STATUSES}),
        reason TEXT NOT NULL DEFAULT '',
        broker_order_id TEXT,
        perm_id TEXT,
        limit_price REAL,
        quantity INTEGER CHECK (quantity IS NULL OR quantity > 0),
        fill_id INTEGER UNIQUE REFERENCES fills (id),
        UNIQUE (order_id, seq),
        CHECK (kind != 'status' OR status IS NOT NULL),
        CHECK ((kind = 'fill') = (fill_id IS NOT NULL)),
        CHECK (kind != 'amend' OR limit_price IS NOT NULL OR quantity IS NOT NULL))""",
    """CREATE TABLE positions (
        id INTEGER PRIMARY KEY,
        instrument_id INTEGER NOT NULL UNIQUE REFERENCES instruments (id),
        quantity INTEGER NOT NULL,
        avg_cost REAL NOT NULL CHECK (avg_cost >= 0),
        realized_pnl REAL NOT NULL,
        commission_fees REAL NOT NULL,
        opened_ns INTEGER NOT NULL,
        updated_ns INTEGER NOT NULL,
        day_start_ns INTEGER NOT NULL,
        day_realized_pnl REAL NOT NULL,
        day_start_unrealized REAL)""",
    "CREATE INDEX ix_positions_open ON positions (id) WHERE quantity != 0",
    "CREATE INDEX ix_positions_updated ON positions (updated_ns)",
    # shares an exercised/assigned physically settled option (SPY) delivered (portfolio.settlement.ShareDelivery)
    """CREATE TABLE share_deliveries (
        id INTEGER PRIMARY KEY,
        exec_id TEXT NOT NULL UNIQUE CHECK (exec_id != ''),
        instrument_id INTEGER NOT NULL REFERENCES instruments (id),
        symbol TEXT NOT NULL,
        shares INTEGER NOT NULL CHECK (shares != 0),
        price REAL NOT NULL CHECK (price >= 0),
        time_ns INTEGER NOT NULL)""",
    """CREATE TABLE trade_decisions (
        id INTEGER PRIMARY KEY,
        time_ns INTEGER NOT NULL,
        strategy TEXT NOT NULL,
        action TEXT NOT NULL CHECK (action IN ('TRADE', 'SKIP')),
        reasons TEXT NOT NULL,
        snapshot_id INTEGER,
        snapshot_checksum TEXT,
        config_hash TEXT,
        limit_profile TEXT,
        order_ref TEXT)""",
    "CREATE INDEX ix_trade_decisions_time ON trade_decisions (time_ns)",
)

# Risk, alerts and automation (issue 10): what the risk guard, the alert book and the strategies keep across
# restarts, so the backtester and `spx-data risk` read the same state as the window.
_V5 = _sql(
    # one row per raised alert; a repeat of the same key while unacknowledged bumps count/last_ns (de-duplication)
    """CREATE TABLE alerts (
        id INTEGER PRIMARY KEY,
        key TEXT NOT NULL,
        rule TEXT NOT NULL,
        severity TEXT NOT NULL CHECK (severity IN ('info', 'warning', 'critical')),
        message TEXT NOT NULL,
        first_ns INTEGER NOT NULL,
        last_ns INTEGER NOT NULL CHECK (last_ns >= first_ns),
        count INTEGER NOT NULL DEFAULT 1 CHECK (count >= 1),
        acknowledged_ns INTEGER)""",
    "CREATE INDEX ix_alerts_open_key ON alerts (key) WHERE acknowledged_ns IS NULL",
    "CREATE INDEX ix_alerts_time ON alerts (last_ns)",
    # the circuit breaker: a trip holds for the market day it happened in (day_ns = midnight ET, UTC ns)
    """CREATE TABLE breaker_trips (
        id INTEGER PRIMARY KEY,
        day_ns INTEGER NOT NULL,
        time_ns INTEGER NOT NULL,
        reason TEXT NOT NULL,
        cancelled INTEGER NOT NULL DEFAULT 0 CHECK (cancelled >= 0),
        closed INTEGER NOT NULL DEFAULT 0 CHECK (closed >= 0))""",
    "CREATE INDEX ix_breaker_trips_day ON breaker_trips (day_ns)",
    # limit profiles the user edited or added (the shipped ones live in code until edited)
    """CREATE TABLE limit_profiles (
        name TEXT PRIMARY KEY,
        config TEXT NOT NULL,
        updated_ns INTEGER NOT NULL)""",
    # the user's strategies: frozen config (JSON) + its hash, on/off and manual/auto
    """CREATE TABLE strategy_configs (
        name TEXT PRIMARY KEY,
        config TEXT NOT NULL,
        config_hash TEXT NOT NULL,
        enabled INTEGER NOT NULL DEFAULT 0 CHECK (enabled IN (0, 1)),
        mode TEXT NOT NULL DEFAULT 'manual' CHECK (mode IN ('manual', 'auto')),
        updated_ns INTEGER NOT NULL)""",
    # per market day and strategy ('' = the whole account): the arbitrage plan's daily_summary
    """CREATE TABLE daily_summaries (
        day TEXT NOT NULL,
        strategy TEXT NOT NULL DEFAULT '',
        trades_opened INTEGER NOT NULL DEFAULT 0,
        trades_closed INTEGER NOT NULL DEFAULT 0,
        wins INTEGER NOT NULL DEFAULT 0,
        losses INTEGER NOT NULL DEFAULT 0,
        realized_pnl REAL NOT NULL DEFAULT 0,
        fees REAL NOT NULL DEFAULT 0,
        skips INTEGER NOT NULL DEFAULT 0,
        time_ns INTEGER NOT NULL,
        PRIMARY KEY (day, strategy))""",
    # small named settings the engine needs outside the GUI (e.g. 'active_limit_profile', 'close_all_on_breaker')
    """CREATE TABLE risk_state (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL,
        updated_ns INTEGER NOT NULL)""",
)

# Backtest runs (issue 11): a stored run is its config text + provenance (config hash, data and result checksums,
# code version), its metrics, and its trades, decisions and equity curve, so runs can be listed, compared and
# re-checked later without re-running them. Written by storage/backtest_repo.py, one transaction per run.
# JSON columns hold NaN / +inf / -inf as the strings "NaN" / "Infinity" / "-Infinity" (JSON has no such numbers);
# REAL columns hold NaN as NULL. A sweep owns its runs: deleting it (or a run) deletes their rows.
_V6 = _sql(
    """CREATE TABLE backtest_sweeps (
        id INTEGER PRIMARY KEY,
        created_ns INTEGER NOT NULL,
        config_toml TEXT NOT NULL,
        grid TEXT NOT NULL,
        metric TEXT NOT NULL)""",
    """CREATE TABLE backtest_runs (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL DEFAULT '',
        created_ns INTEGER NOT NULL,
        config_toml TEXT NOT NULL,
        config_sha256 TEXT NOT NULL,
        data_checksum TEXT NOT NULL,
        result_checksum TEXT NOT NULL,
        code_version TEXT NOT NULL,
        starting_cash REAL NOT NULL,
        metrics TEXT NOT NULL,
        marks TEXT NOT NULL,
        notes TEXT NOT NULL,
        cancelled INTEGER NOT NULL DEFAULT 0 CHECK (cancelled IN (0, 1)),
        steps_done INTEGER NOT NULL CHECK (steps_done >= 0),
        steps_total INTEGER NOT NULL CHECK (steps_total >= 0),
        sweep_id INTEGER REFERENCES backtest_sweeps (id) ON DELETE CASCADE,
        params TEXT)""",
    "CREATE INDEX ix_backtest_runs_sweep ON backtest_runs (sweep_id)",
    # the child rows are keyed by (run, position): the primary key is also the index a load and a cascade use
    """CREATE TABLE backtest_trades (
        run_id INTEGER NOT NULL REFERENCES backtest_runs (id) ON DELETE CASCADE,
        seq INTEGER NOT NULL CHECK (seq >= 0),
        trade_id INTEGER NOT NULL,
        strategy TEXT NOT NULL,
        entry_ns INTEGER NOT NULL,
        exit_ns INTEGER,
        exit_reason TEXT NOT NULL,
        side TEXT NOT NULL,
        legs TEXT NOT NULL,
        entry_price REAL,
        exit_price REAL,
        quantity INTEGER NOT NULL,
        pnl REAL,
        fees REAL,
        factors TEXT,
        PRIMARY KEY (run_id, seq))""",
    """CREATE TABLE backtest_equity (
        run_id INTEGER NOT NULL REFERENCES backtest_runs (id) ON DELETE CASCADE,
        time_ns INTEGER NOT NULL,
        equity REAL,
        margin REAL,
        PRIMARY KEY (run_id, time_ns))""",
    """CREATE TABLE backtest_decisions (
        run_id INTEGER NOT NULL REFERENCES backtest_runs (id) ON DELETE CASCADE,
        seq INTEGER NOT NULL CHECK (seq >= 0),
        time_ns INTEGER NOT NULL,
        strategy TEXT NOT NULL,
        action TEXT NOT NULL CHECK (action IN ('TRADE', 'SKIP')),
        reasons TEXT NOT NULL,
        order_ref TEXT,
        snapshot_id INTEGER,
        snapshot_checksum TEXT,
        config_hash TEXT NOT NULL,
        limit_profile TEXT NOT NULL,
        PRIMARY KEY (run_id, seq))""",
)

#: Every schema step, in order. Append only.
MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "instruments, snapshots, underlying bars, import log", _V1),
    Migration(2, "vendor instrument ids (valid per date range)", _V2),
    Migration(3, "staged imports (import_log status 'staging', owner lock)", _V3, rebuilds_tables=True),
    Migration(4, "orders, order legs and events, fills, positions, trades, decisions, share deliveries", _V4),
    Migration(5, "alerts, breaker trips, limit profiles, strategy configs, daily summaries, risk state", _V5),
    Migration(6, "backtest runs, trades, equity, decisions and sweeps", _V6),
)


def latest_version(migrations: Sequence[Migration] = MIGRATIONS) -> int:
    return migrations[-1].version if migrations else 0


def _ensure_version_table(conn: Connection) -> None:
    conn.exec_driver_sql(
        "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, "
        "description TEXT NOT NULL, applied_ns INTEGER NOT NULL)")


def current_version(conn: Connection) -> int:
    """The schema version of the database behind ``conn`` (0 for an empty database)."""
    if not inspect(conn).has_table("schema_version"):
        return 0
    return int(conn.execute(text("SELECT COALESCE(MAX(version), 0) FROM schema_version")).scalar_one())


def _check_order(migrations: Sequence[Migration]) -> None:
    versions = [m.version for m in migrations]
    if versions != list(range(1, len(versions) + 1)):
        raise MigrationError(f"migration versions must be 1, 2, 3, ... in order; got {versions}")


def migrate(engine: Engine, migrations: Sequence[Migration] = MIGRATIONS, *, where: str = "",
            timeout_s: float = WRITE_TIMEOUT_S) -> int:
    """Bring the database up to the last migration; return the resulting version.

    The version is read in a read transaction first: an up-to-date database is opened without
    taking the write lock (a running import or recorder never delays an open). Only when a step
    must run does it take ``BEGIN IMMEDIATE`` (waiting at most ``timeout_s``) and re-read the
    version inside it, so two processes opening the same new file apply each step exactly once.

    Raises:
        SchemaVersionError: the database is newer than the code (written by a later release).
        MigrationError: a step failed (the database stays at the previous version).
        StoreBusyError: a step must run but another writer held the lock for ``timeout_s``.
    """
    _check_order(migrations)
    latest = latest_version(migrations)
    label = where or str(engine.url.database)
    with translating(label), engine.connect() as conn:
        version = _refuse_newer(conn, latest, label)
        for step in migrations[version:]:
            _apply(conn, step, label, timeout_s)
        return _refuse_newer(conn, latest, label)


def _apply(conn: Connection, step: Migration, label: str, timeout_s: float) -> None:
    if step.rebuilds_tables:
        _foreign_keys(conn, on=False)
    try:
        with begin_immediate(conn, timeout_s=timeout_s, where=label):
            _ensure_version_table(conn)
            if current_version(conn) >= step.version:
                return  # another process applied it meanwhile
            step.apply(conn)
            if step.rebuilds_tables:
                broken = conn.exec_driver_sql("PRAGMA foreign_key_check").all()
                if broken:
                    raise MigrationError(f"{len(broken)} rows break a foreign key, e.g. {tuple(broken[0])}")
            conn.execute(text("INSERT INTO schema_version (version, description, applied_ns) "
                              "VALUES (:v, :d, :t)"), {"v": step.version, "d": step.description,
                                                       "t": time.time_ns()})
    except StoreBusyError:
        raise
    except Exception as exc:
        raise MigrationError(f"{label}: migration {step.version} ({step.description}) failed: {exc}; "
                             f"the database was left at version {step.version - 1}") from exc
    finally:
        if step.rebuilds_tables:
            _foreign_keys(conn, on=True)


def _foreign_keys(conn: Connection, *, on: bool) -> None:
    # The pragma is a no-op inside a transaction, and SQLAlchemy would autobegin one around it: go
    # to the driver connection (autocommit, see engine.py) directly.
    conn.connection.dbapi_connection.execute(f"PRAGMA foreign_keys = {'ON' if on else 'OFF'}")


def _refuse_newer(conn: Connection, latest: int, label: str) -> int:
    conn.execution_options(**{BEGIN_OPTION: "DEFERRED"})  # begin_immediate set IMMEDIATE on this connection
    with conn.begin():  # a read transaction, no write lock
        version = current_version(conn)
    if version > latest:
        raise SchemaVersionError(
            f"database {label} has schema version {version}, but this spx-terminal only knows up to version "
            f"{latest}: it was written by a newer release. Upgrade spx-terminal, or point --db / "
            f"$SPX_TERMINAL_DB at another file.")
    return version
