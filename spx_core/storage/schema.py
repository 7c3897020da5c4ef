"""Table definitions (SQLAlchemy Core) for queries. The DDL that creates them lives in migrations.

These ``Table`` objects describe the schema at the *latest* migration; ``tests/storage`` checks
that a freshly migrated database has exactly these columns. When you add a migration that changes
a table, change its definition here too.
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, Column, Float, ForeignKey, Integer, LargeBinary, MetaData, Table, Text, \
    or_, select

__all__ = ["metadata", "schema_version", "instruments", "snapshots", "underlying_bars", "import_log",
           "import_rejections", "instrument_ids", "IMPORTED", "FAILED", "STAGING", "visible_snapshots"]

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


def visible_snapshots() -> ColumnElement[bool]:
    """The WHERE clause every snapshot read path uses: hide the rows of imports still staging.

    A staging import's rows are committed in short batches (so writers never hold the lock for a
    whole file) but only become visible when its import_log row is published in one commit.
    """
    staging = select(import_log.c.id).where(import_log.c.status == STAGING)
    return or_(snapshots.c.import_id.is_(None), snapshots.c.import_id.not_in(staging))
