"""Vendors' numeric instrument ids (e.g. Databento/OPRA ``instrument_id``) mapped to stored contracts.

Vendors re-use ids (OPRA assigns them per day), so every mapping holds for a time range
``[valid_from_ns, valid_to_ns)`` only and a look-up names the instant it is for. ``vendor`` names
the id space; ids from different spaces never mix (Databento: ``"databento:<dataset>"``).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import Connection, select
from sqlalchemy.dialects.sqlite import insert

from spx_core.domain import OptionContract
from spx_core.storage import schema as t
from spx_core.storage.errors import StorageError
from spx_core.storage.records import VendorInstrumentId
from spx_core.storage.rows import as_ns, contract_from_row

__all__ = ["upsert_instrument_ids", "lookup_instrument_ids", "check_instrument_ids"]

_IN_CHUNK = 500  # ids per IN (...) list; well under SQLite's bound-parameter limit


def check_instrument_ids(vendor: str, mappings: list[VendorInstrumentId]) -> None:
    if not vendor:
        raise StorageError("vendor instrument ids need a vendor name (the id space, e.g. 'databento:OPRA.PILLAR')")
    for m in mappings:
        if m.valid_to_ns <= m.valid_from_ns:
            raise StorageError(f"{vendor} instrument id {m.vendor_id} ({m.contract.occ_symbol}): valid_to_ns "
                               f"{m.valid_to_ns} is not after valid_from_ns {m.valid_from_ns}; pass a non-empty range")


def upsert_instrument_ids(conn: Connection, vendor: str, mappings: Iterable[VendorInstrumentId],
                          import_id: int | None) -> int:
    """Store id -> contract mappings; a mapping already stored for the same (vendor, id, valid_from) is
    replaced (the newer file wins). The contracts must be stored already (:func:`upsert_instruments`).
    Returns the number of mappings given."""
    mappings = list(mappings)
    check_instrument_ids(vendor, mappings)
    if not mappings:
        return 0
    symbols = sorted({m.contract.occ_symbol for m in mappings})
    row_ids: dict[str, int] = {}
    for i in range(0, len(symbols), _IN_CHUNK):
        query = select(t.instruments.c.occ_symbol, t.instruments.c.id).where(
            t.instruments.c.occ_symbol.in_(symbols[i:i + _IN_CHUNK]))
        row_ids.update((sym, int(i)) for sym, i in conn.execute(query))
    rows = [{"vendor": vendor, "vendor_id": int(m.vendor_id), "instrument_id": row_ids[m.contract.occ_symbol],
             "valid_from_ns": int(m.valid_from_ns), "valid_to_ns": int(m.valid_to_ns), "import_id": import_id}
            for m in mappings]
    stmt = insert(t.instrument_ids)
    stmt = stmt.on_conflict_do_update(
        index_elements=[t.instrument_ids.c.vendor, t.instrument_ids.c.vendor_id, t.instrument_ids.c.valid_from_ns],
        set_={c: stmt.excluded[c] for c in ("instrument_id", "valid_to_ns", "import_id")})
    conn.execute(stmt, rows)
    return len(rows)


def lookup_instrument_ids(conn: Connection, vendor: str, ids: Iterable[int],
                          at: datetime | int) -> dict[int, OptionContract]:
    """The contract each id named at instant ``at`` (ns UTC or aware datetime); unknown ids are left out.

    When ranges of one id overlap, the one that started last wins.
    """
    at_ns = as_ns(at)
    wanted = sorted({int(i) for i in ids})
    m, ins = t.instrument_ids.c, t.instruments
    found: dict[int, OptionContract] = {}
    for i in range(0, len(wanted), _IN_CHUNK):
        query = (select(m.vendor_id, ins).join(ins, ins.c.id == m.instrument_id)
                 .where(m.vendor == vendor, m.vendor_id.in_(wanted[i:i + _IN_CHUNK]),
                        m.valid_from_ns <= at_ns, m.valid_to_ns > at_ns)
                 .order_by(m.vendor_id, m.valid_from_ns))
        for row in conn.execute(query):
            found[int(row.vendor_id)] = contract_from_row(row)  # ordered: the latest start overwrites
    return found
