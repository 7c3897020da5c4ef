"""Value objects the store returns (domain-facing; no SQLAlchemy rows leave the package)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from spx_core.domain import OptionContract

__all__ = ["SnapshotInfo", "SessionInfo", "ImportRecord", "VendorInstrumentId"]


@dataclass(frozen=True, slots=True)
class SnapshotInfo:
    """A stored snapshot's metadata (no quotes).

    Attributes:
        id: the ``snapshots.id`` to pass to :meth:`Store.load_snapshot`.
        time: the snapshot instant (aware, UTC).
        underlying_price: index points; NaN when the snapshot had none.
        checksum: the snapshot's SHA-256 hex digest (:attr:`ChainSnapshot.checksum`).
        source: where it came from ("Simulated", "cboe-datashop", ...).
        session: the recording/replay session name, or None.
    """

    id: int
    time: datetime
    underlying: str
    underlying_price: float
    n_quotes: int
    n_expiries: int
    checksum: str
    source: str
    session: str | None


@dataclass(frozen=True, slots=True)
class SessionInfo:
    """A named session: the snapshots recorded (or imported) under one name.

    Attributes:
        source: the snapshots' source; several are joined with "," when a session mixes them.
        start, end: time of its first and last snapshot (aware, UTC).
    """

    name: str
    source: str
    n_snapshots: int
    start: datetime
    end: datetime


@dataclass(frozen=True, slots=True)
class ImportRecord:
    """One row of the import log.

    Attributes:
        status: "imported" or "failed".
        rejected: (line, reason) of every rejected input row, in file order.
        error: why the import failed (None when it succeeded).
        time: when the import finished (aware, UTC).
    """

    id: int
    path: str
    sha256: str
    fmt: str
    status: str
    rows_read: int
    quotes_stored: int
    snapshots: int
    rejected: list[tuple[int, str]] = field(default_factory=list)
    error: str | None = None
    time: datetime | None = None


@dataclass(frozen=True, slots=True)
class VendorInstrumentId:
    """A vendor's numeric id for a contract, valid over ``[valid_from_ns, valid_to_ns)``.

    Attributes:
        vendor_id: the vendor's id (Databento: the record's ``instrument_id``).
        contract: the contract it names.
        valid_from_ns, valid_to_ns: ns since the epoch (UTC); vendors re-use ids, so a mapping only
            holds in this range (Databento/OPRA: the UTC day of the definition).
    """

    vendor_id: int
    contract: OptionContract
    valid_from_ns: int
    valid_to_ns: int
