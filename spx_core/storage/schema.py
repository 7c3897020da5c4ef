"""Table definitions (SQLAlchemy Core) for queries. The DDL that creates them lives in migrations.

These ``Table`` objects describe the schema at the *latest* migration; ``tests/storage`` checks
that a freshly migrated database has exactly these columns. When you add a migration that changes
a table, change its definition here too.
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, Column, Float, ForeignKey, Integer, LargeBinary, MetaData, Table, Text, \
    or_, select

__all__ = ["metadata", "schema_version", "instruments", "snapshots", "underlying_bars", "import_log",
           "import_rejections", "instrument_ids", "IMPORTED", "FAILED", "STAGING", "visible_snapshots",
           "orders", "order_legs", "order_events", "fills", "positions", "trades", "trade_legs",
           "trade_decisions", "share_deliveries", "WORKING_STATUSES", "alerts", "breaker_trips", "limit_profiles",
           "strategy_configs", "daily_summaries", "risk_state", "backtest_sweeps", "backtest_runs",
           "backtest_trades", "backtest_equity", "backtest_decisions"]

metadata = MetaData()

#: ``import_log.status`` values.
IMPORTED = "imported"
FAILED = "failed"
STAGING = "staging"  # being imported: its rows are committed but invisible until published

schema_version = Table(
    "schema_version", metadata,
    Column("version", Integer, primary_key=True),
    Column("description", Text, nullable=False),
    Column("applied_ns", Integer, nullable=False),
)

instruments = Table(
    "instruments", metadata,
    Column("id", Integer, primary_key=True),
    Column("occ_symbol", Text, nullable=False, unique=True),
    Column("root", Text, nullable=False),
    Column("expiry", Text, nullable=False),  # ISO date
    Column("strike", Float, nullable=False),
    Column("option_right", Text, nullable=False),  # "C" / "P" ("right" is an SQL keyword)
    Column("settlement", Text, nullable=False),
    Column("multiplier", Integer, nullable=False),
    Column("exchange", Text, nullable=False),
    Column("currency", Text, nullable=False),
    Column("con_id", Integer),
    Column("trading_class", Text),
)

import_log = Table(
    "import_log", metadata,
    Column("id", Integer, primary_key=True),
    Column("path", Text, nullable=False),
    Column("sha256", Text, nullable=False),
    Column("fmt", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("rows_read", Integer, nullable=False),
    Column("quotes_stored", Integer, nullable=False),
    Column("snapshots", Integer, nullable=False),
    Column("error", Text),
    Column("time_ns", Integer, nullable=False),
    Column("owner", Text),  # staging only: the lock file its process holds (storage/staging.py)
)

import_rejections = Table(
    "import_rejections", metadata,
    Column("id", Integer, primary_key=True),
    Column("import_id", Integer, ForeignKey("import_log.id", ondelete="CASCADE"), nullable=False),
    Column("line", Integer, nullable=False),
    Column("reason", Text, nullable=False),
)

snapshots = Table(
    "snapshots", metadata,
    Column("id", Integer, primary_key=True),
    Column("underlying", Text, nullable=False),
    Column("time_ns", Integer, nullable=False),
    # NaN is stored as NULL by SQLite; these are for queries only, the payload is authoritative.
    Column("underlying_price", Float),
    Column("underlying_bid", Float),
    Column("underlying_ask", Float),
    Column("n_quotes", Integer, nullable=False),
    Column("n_expiries", Integer, nullable=False),
    Column("checksum", Text, nullable=False),
    Column("source", Text, nullable=False),
    Column("session", Text),
    Column("payload", LargeBinary, nullable=False),
    Column("import_id", Integer, ForeignKey("import_log.id", ondelete="CASCADE")),
)

underlying_bars = Table(
    "underlying_bars", metadata,
    Column("id", Integer, primary_key=True),
    Column("symbol", Text, nullable=False),
    Column("time_ns", Integer, nullable=False),
    Column("open", Float),
    Column("high", Float),
    Column("low", Float),
    Column("close", Float),
    Column("volume", Float),
    Column("import_id", Integer, ForeignKey("import_log.id", ondelete="SET NULL")),
)

instrument_ids = Table(
    "instrument_ids", metadata,
    Column("id", Integer, primary_key=True),
    Column("vendor", Text, nullable=False),  # the id space, e.g. "databento:OPRA.PILLAR"
    Column("vendor_id", Integer, nullable=False),
    Column("instrument_id", Integer, ForeignKey("instruments.id", ondelete="CASCADE"), nullable=False),
    # vendors re-use ids (OPRA: daily): the mapping holds for [valid_from_ns, valid_to_ns) only
    Column("valid_from_ns", Integer, nullable=False),
    Column("valid_to_ns", Integer, nullable=False),
    Column("import_id", Integer, ForeignKey("import_log.id", ondelete="CASCADE")),
)


# --- orders, fills, positions, trades (migration 4; written by storage/orders_repo.py) ---------------------
#: ``orders.status`` values of orders still working (the partial index ``ix_orders_working``).
WORKING_STATUSES = ("pending", "submitted", "partially_filled")

trades = Table(
    "trades", metadata,
    Column("id", Integer, primary_key=True),
    Column("name", Text, nullable=False),
    Column("kind", Text, nullable=False),
    Column("side", Text, nullable=False),  # the opening order's side
    Column("quantity", Integer, nullable=False),  # open units
    Column("opened_quantity", Integer, nullable=False),
    Column("closed_quantity", Integer, nullable=False),
    Column("open_price", Float),  # points per unit, the opening order's convention; NULL = NaN
    Column("close_price", Float),
    Column("realized_pnl", Float, nullable=False),  # dollars, net of commission and fees
    Column("commission_fees", Float, nullable=False),  # dollars (already in realized_pnl)
    Column("status", Text, nullable=False),  # "open" | "closed"
    Column("opened_ns", Integer, nullable=False),
    Column("closed_ns", Integer),
)

trade_legs = Table(
    "trade_legs", metadata,
    Column("id", Integer, primary_key=True),
    Column("trade_id", Integer, ForeignKey("trades.id", ondelete="CASCADE"), nullable=False),
    Column("leg", Integer, nullable=False),
    Column("instrument_id", Integer, ForeignKey("instruments.id"), nullable=False),
    Column("ratio", Integer, nullable=False),  # signed per unit held
    # the leg's accounting (portfolio.trades.TradeLeg): contracts, points per contract, dollars
    Column("held", Integer, nullable=False),
    Column("avg_cost", Float, nullable=False),
    Column("opened", Integer, nullable=False),
    Column("open_price", Float),  # NULL = NaN (none opened)
    Column("closed", Integer, nullable=False),
    Column("close_price", Float),  # NULL = NaN (none closed)
    Column("realized_pnl", Float, nullable=False),
    Column("commission_fees", Float, nullable=False),
)

orders = Table(
    "orders", metadata,
    Column("id", Integer, primary_key=True),
    # the request (never changes)
    Column("ref", Text, nullable=False, unique=True),
    Column("side", Text, nullable=False),
    Column("quantity", Integer, nullable=False),
    Column("order_type", Text, nullable=False),
    Column("limit_price", Float),  # points per unit ("limit" is an SQL keyword)
    Column("tif", Text, nullable=False),
    Column("account", Text, nullable=False),
    Column("snapshot_id", Integer),  # no foreign key: the record outlives pruned snapshots
    Column("snapshot_checksum", Text),
    Column("created_ns", Integer, nullable=False),
    Column("name", Text, nullable=False),
    Column("kind", Text, nullable=False),
    Column("intent", Text, nullable=False),
    Column("trade_id", Integer, ForeignKey("trades.id")),  # the request's: closes it (CLOSE) / extends it (OPEN)
    Column("booked_trade_id", Integer, ForeignKey("trades.id")),  # the trade its fills went to (None before)
    Column("broker", Text, nullable=False),
    Column("source", Text, nullable=False),
    # the state: the fold of order_events, denormalized in the same transaction as each event
    Column("status", Text, nullable=False),
    Column("reason", Text, nullable=False),
    Column("filled", Integer, nullable=False),  # units of the structure
    Column("avg_fill_price", Float),  # NULL before a complete unit (NaN)
    Column("working_limit", Float),
    Column("working_quantity", Integer, nullable=False),
    Column("broker_order_id", Text),
    Column("perm_id", Text),
    Column("commission", Float, nullable=False),  # dollars
    Column("fees", Float, nullable=False),  # dollars
    Column("updated_ns", Integer, nullable=False),
)

order_legs = Table(
    "order_legs", metadata,
    Column("id", Integer, primary_key=True),
    Column("order_id", Integer, ForeignKey("orders.id", ondelete="CASCADE"), nullable=False),
    Column("leg", Integer, nullable=False),
    Column("instrument_id", Integer, ForeignKey("instruments.id"), nullable=False),
    Column("ratio", Integer, nullable=False),
)

fills = Table(
    "fills", metadata,
    Column("id", Integer, primary_key=True),
    Column("exec_id", Text, nullable=False, unique=True),
    Column("order_id", Integer, ForeignKey("orders.id", ondelete="CASCADE")),  # NULL: settlement fill
    Column("leg", Integer, nullable=False),
    Column("instrument_id", Integer, ForeignKey("instruments.id"), nullable=False),
    Column("side", Text, nullable=False),
    Column("quantity", Integer, nullable=False),  # contracts
    Column("price", Float, nullable=False),  # points per contract
    Column("time_ns", Integer, nullable=False),
    Column("commission", Float, nullable=False),  # dollars
    Column("fees", Float, nullable=False),  # dollars
)

order_events = Table(
    "order_events", metadata,
    Column("id", Integer, primary_key=True),
    Column("order_id", Integer, ForeignKey("orders.id", ondelete="CASCADE"), nullable=False),
    Column("seq", Integer, nullable=False),  # 0, 1, 2, ... per order: the replay order
    Column("kind", Text, nullable=False),
    Column("time_ns", Integer, nullable=False),
    Column("status", Text),
    Column("reason", Text, nullable=False),
    Column("broker_order_id", Text),
    Column("perm_id", Text),
    Column("limit_price", Float),
    Column("quantity", Integer),
    Column("fill_id", Integer, ForeignKey("fills.id"), unique=True),
)

positions = Table(
    "positions", metadata,
    Column("id", Integer, primary_key=True),
    Column("instrument_id", Integer, ForeignKey("instruments.id"), nullable=False, unique=True),
    Column("quantity", Integer, nullable=False),  # signed contracts
    Column("avg_cost", Float, nullable=False),  # points per contract
    Column("realized_pnl", Float, nullable=False),  # dollars, net
    Column("commission_fees", Float, nullable=False),  # dollars
    Column("opened_ns", Integer, nullable=False),
    Column("updated_ns", Integer, nullable=False),
    Column("day_start_ns", Integer, nullable=False),  # the day the day figures count from
    Column("day_realized_pnl", Float, nullable=False),  # dollars realized (net) since day_start_ns
    Column("day_start_unrealized", Float),  # dollars unrealized at day_start_ns; NULL = NaN (no mark then)
)

share_deliveries = Table(
    "share_deliveries", metadata,
    Column("id", Integer, primary_key=True),
    Column("exec_id", Text, nullable=False, unique=True),  # "exercise:<occ>"
    Column("instrument_id", Integer, ForeignKey("instruments.id"), nullable=False),  # the option exercised
    Column("symbol", Text, nullable=False),
    Column("shares", Integer, nullable=False),  # signed: + received
    Column("price", Float, nullable=False),  # dollars per share
    Column("time_ns", Integer, nullable=False),
)


trade_decisions = Table(
    "trade_decisions", metadata,
    Column("id", Integer, primary_key=True),
    Column("time_ns", Integer, nullable=False),
    Column("strategy", Text, nullable=False),
    Column("action", Text, nullable=False),  # "TRADE" | "SKIP"
    Column("reasons", Text, nullable=False),  # JSON array of strings
    Column("snapshot_id", Integer),
    Column("snapshot_checksum", Text),
    Column("config_hash", Text),
    Column("limit_profile", Text),
    Column("order_ref", Text),  # soft reference to orders.ref
)


# --- risk, alerts, automation (migration 5) ---------------------------------------------------------------
alerts = Table(
    "alerts", metadata,
    Column("id", Integer, primary_key=True),
    Column("key", Text, nullable=False),  # de-duplication key: rule + subject
    Column("rule", Text, nullable=False),
    Column("severity", Text, nullable=False),  # "info" | "warning" | "critical"
    Column("message", Text, nullable=False),
    Column("first_ns", Integer, nullable=False),
    Column("last_ns", Integer, nullable=False),
    Column("count", Integer, nullable=False, default=1),
    Column("acknowledged_ns", Integer),
)

breaker_trips = Table(
    "breaker_trips", metadata,
    Column("id", Integer, primary_key=True),
    Column("day_ns", Integer, nullable=False),  # midnight ET of the market day it holds for (UTC ns)
    Column("time_ns", Integer, nullable=False),
    Column("reason", Text, nullable=False),
    Column("cancelled", Integer, nullable=False, default=0),  # working orders it cancelled
    Column("closed", Integer, nullable=False, default=0),  # trades it sent closing orders for
)

limit_profiles = Table(
    "limit_profiles", metadata,
    Column("name", Text, primary_key=True),
    Column("config", Text, nullable=False),  # JSON of LimitProfile fields
    Column("updated_ns", Integer, nullable=False),
)

strategy_configs = Table(
    "strategy_configs", metadata,
    Column("name", Text, primary_key=True),
    Column("config", Text, nullable=False),  # JSON of the StrategyConfig
    Column("config_hash", Text, nullable=False),
    Column("enabled", Integer, nullable=False, default=0),
    Column("mode", Text, nullable=False, default="manual"),  # "manual" | "auto"
    Column("updated_ns", Integer, nullable=False),
)

daily_summaries = Table(
    "daily_summaries", metadata,
    Column("day", Text, primary_key=True),  # ISO date of the market day (ET)
    Column("strategy", Text, primary_key=True, default=""),  # "" = the whole account
    Column("trades_opened", Integer, nullable=False, default=0),
    Column("trades_closed", Integer, nullable=False, default=0),
    Column("wins", Integer, nullable=False, default=0),
    Column("losses", Integer, nullable=False, default=0),
    Column("realized_pnl", Float, nullable=False, default=0.0),
    Column("fees", Float, nullable=False, default=0.0),
    Column("skips", Integer, nullable=False, default=0),
    Column("time_ns", Integer, nullable=False),
)

risk_state = Table(
    "risk_state", metadata,
    Column("key", Text, primary_key=True),
    Column("value", Text, nullable=False),
    Column("updated_ns", Integer, nullable=False),
)


# --- backtest runs and sweeps (migration 6; written by storage/backtest_repo.py) -----------------------------
# JSON columns: NaN / +inf / -inf are the strings "NaN" / "Infinity" / "-Infinity"; REAL columns: NULL = NaN.
backtest_sweeps = Table(
    "backtest_sweeps", metadata,
    Column("id", Integer, primary_key=True),
    Column("created_ns", Integer, nullable=False),
    Column("config_toml", Text, nullable=False),  # the base config every grid point overrides
    Column("grid", Text, nullable=False),  # the grid as given ("strategy.short_delta=0.1,0.2;...")
    Column("metric", Text, nullable=False),  # the metric the sweep ranks by
)

backtest_runs = Table(
    "backtest_runs", metadata,
    Column("id", Integer, primary_key=True),
    Column("name", Text, nullable=False, default=""),
    Column("created_ns", Integer, nullable=False),
    Column("config_toml", Text, nullable=False),  # the run's config as given
    Column("config_sha256", Text, nullable=False),  # BacktestResult.config_hash (the effective configuration)
    Column("data_checksum", Text, nullable=False),
    Column("result_checksum", Text, nullable=False),
    Column("code_version", Text, nullable=False),
    Column("starting_cash", Float, nullable=False),  # dollars
    Column("metrics", Text, nullable=False),  # JSON object: Metrics.as_dict()
    Column("marks", Text, nullable=False),  # JSON object: mark choice -> count
    Column("notes", Text, nullable=False),  # JSON array of strings
    Column("cancelled", Integer, nullable=False, default=0),
    Column("steps_done", Integer, nullable=False),
    Column("steps_total", Integer, nullable=False),
    Column("sweep_id", Integer, ForeignKey("backtest_sweeps.id", ondelete="CASCADE")),  # NULL: a single run
    Column("params", Text),  # JSON object of the sweep point's overrides (dotted keys); NULL outside a sweep
)

backtest_trades = Table(
    "backtest_trades", metadata,
    Column("run_id", Integer, ForeignKey("backtest_runs.id", ondelete="CASCADE"), primary_key=True),
    Column("seq", Integer, primary_key=True),  # position in BacktestResult.trades (the key of its factors)
    Column("trade_id", Integer, nullable=False),  # the run's own trade id
    Column("strategy", Text, nullable=False),
    Column("entry_ns", Integer, nullable=False),
    Column("exit_ns", Integer),  # NULL while open at the end of the run
    Column("exit_reason", Text, nullable=False),
    Column("side", Text, nullable=False),
    Column("legs", Text, nullable=False),  # JSON array of [root, expiry ISO, strike, "C"/"P", ratio]
    Column("entry_price", Float),  # points per unit, opening convention; NULL = NaN
    Column("exit_price", Float),
    Column("quantity", Integer, nullable=False),
    Column("pnl", Float),  # dollars, net
    Column("fees", Float),  # dollars
    Column("factors", Text),  # JSON object: entry factor -> value; NULL when the run recorded none
)

backtest_equity = Table(
    "backtest_equity", metadata,
    Column("run_id", Integer, ForeignKey("backtest_runs.id", ondelete="CASCADE"), primary_key=True),
    Column("time_ns", Integer, primary_key=True),
    Column("equity", Float),  # net liquidation, dollars; NULL = NaN
    Column("margin", Float),  # maintenance margin, dollars; NULL = NaN
)

backtest_decisions = Table(
    "backtest_decisions", metadata,
    Column("run_id", Integer, ForeignKey("backtest_runs.id", ondelete="CASCADE"), primary_key=True),
    Column("seq", Integer, primary_key=True),  # position in BacktestResult.decisions
    Column("time_ns", Integer, nullable=False),
    Column("strategy", Text, nullable=False),
    Column("action", Text, nullable=False),  # "TRADE" | "SKIP"
    Column("reasons", Text, nullable=False),  # JSON array of strings
    Column("order_ref", Text),
    Column("snapshot_id", Integer),
    Column("snapshot_checksum", Text),
    Column("config_hash", Text, nullable=False),
    Column("limit_profile", Text, nullable=False),
)

def visible_snapshots() -> ColumnElement[bool]:
    """The WHERE clause every snapshot read path uses: hide the rows of imports still staging.

    A staging import's rows are committed in short batches (so writers never hold the lock for a
    whole file) but only become visible when its import_log row is published in one commit.
    """
    staging = select(import_log.c.id).where(import_log.c.status == STAGING)
    return or_(snapshots.c.import_id.is_(None), snapshots.c.import_id.not_in(staging))
