"""Databento DBN importer, on DBN files written here with databento_dbn's own encoder."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace

import numpy as np
import pytest

from spx_core.domain import QuoteFlag, Root
from spx_core.marketdata.importers import ImportStatus, import_files
from tests.marketdata.dbn_files import MINUTE, T0, Quote, cbbo, definition, metadata, write_dbn
from tests.marketdata.import_helpers import DATASHOP_CUT, LEAN_INDEX, snapshots, store  # noqa: F401

FMT = "databento"
C3700, P3700, C3800 = "SPXW  210104C03700000", "SPXW  210104P03700000", "SPX   210115C03800000"


def _definitions():
    return [definition(1, C3700), definition(2, P3700), definition(3, C3800)]


def _quotes():
    return [cbbo(Quote(1, T0 + MINUTE, T0 + 30 * 10**9, 64.9, 67.9, 48, 15)),
            cbbo(Quote(2, T0 + MINUTE, T0 + 59 * 10**9, 0.35, 0.5)),
            cbbo(Quote(3, T0 + MINUTE, T0 - 600 * 10**9, 20.0, 20.4)),
            cbbo(Quote(1, T0 + 2 * MINUTE, T0 + 90 * 10**9, 64.3, 66.1)),
            cbbo(Quote(2, T0 + 2 * MINUTE, T0 + 100 * 10**9, None, 0.45))]


@pytest.mark.parametrize("zstd", [False, True], ids=["plain", "zstd"])
def test_definitions_and_cbbo_in_one_file(store, tmp_path, zstd):
    path = write_dbn(tmp_path / ("opra.dbn.zst" if zstd else "opra.dbn"), metadata(), _definitions() + _quotes(),
                     zstd=zstd)
    [report] = import_files(store, [path], FMT)

    assert report.status is ImportStatus.IMPORTED and report.rejected == []
    assert (report.rows_read, report.quotes_stored, report.snapshots, report.instruments) == (8, 5, 2, 3)
    first, second = snapshots(store)
    assert (first.time_ns, second.time_ns) == (T0 + MINUTE, T0 + 2 * MINUTE)  # the CBBO-1m sample times
    assert [(e.root, e.expiry) for e in first.expiries()] == [(Root.SPXW, dt.date(2021, 1, 4)),
                                                              (Root.SPX, dt.date(2021, 1, 15))]
    assert list(first.bid) == [64.9, 0.35, 20.0] and list(first.ask) == [67.9, 0.5, 20.4]
    assert (first.bid_size[0], first.ask_size[0]) == (48, 15)
    assert list(first.quote_time) == [T0 + 30 * 10**9, T0 + 59 * 10**9, T0 - 600 * 10**9]  # ts_event
    assert first.flags[2] & QuoteFlag.STALE  # last updated 11 minutes before the sample
    assert np.isnan(second.bid[1]) and second.flags[1] & QuoteFlag.ZERO_BID  # UNDEF_PRICE bid
    assert store.load_instrument(C3800).root is Root.SPX


def test_definitions_from_another_file_of_the_same_call_resolve_quotes(store, tmp_path):
    from databento_dbn import Schema

    quotes = write_dbn(tmp_path / "cbbo.dbn", metadata(schema=Schema.CBBO_1M), _quotes())
    defs = write_dbn(tmp_path / "definition.dbn", metadata(schema=Schema.DEFINITION), _definitions())
    q, d = import_files(store, [quotes, defs], FMT)  # listed quotes first: definitions are imported first
    assert (q.status, d.status) == (ImportStatus.IMPORTED, ImportStatus.IMPORTED)
    assert (q.quotes_stored, q.rejected, d.instruments, d.snapshots) == (5, [], 3, 0)


def test_metadata_symbol_mappings_resolve_quotes_without_definitions(store, tmp_path):
    day = dt.date(2021, 1, 4)
    # databento_dbn takes any objects with these attributes (SymbolMapping/MappingInterval are Protocols)
    mappings = [SimpleNamespace(raw_symbol=sym, intervals=[
        SimpleNamespace(start_date=day, end_date=day + dt.timedelta(1), symbol=str(i))])
        for i, sym in ((1, C3700), (2, P3700), (3, C3800))]
    path = write_dbn(tmp_path / "cbbo.dbn", metadata(mappings=mappings), _quotes())
    [report] = import_files(store, [path], FMT)
    assert report.status is ImportStatus.IMPORTED and report.quotes_stored == 5 and report.rejected == []


def test_unknown_instruments_and_foreign_roots_are_rejected_by_record_number(store, tmp_path):
    records = [definition(1, C3700), definition(7, "SPY   210104C00370000"),
               cbbo(Quote(1, T0 + MINUTE, T0, 64.9, 67.9)), cbbo(Quote(9, T0 + MINUTE, T0, 1.0, 1.1))]
    path = write_dbn(tmp_path / "mixed.dbn", metadata(), records)
    [report] = import_files(store, [path], FMT)
    assert report.status is ImportStatus.IMPORTED and report.quotes_stored == 1
    assert [(r.line, r.reason) for r in report.rejected] == [
        (2, "definition of instrument 7: 'SPY   210104C00370000' is a SPY option, not SPX/SPXW"),
        (4, "instrument_id 9 has no SPX/SPXW definition; import its definition file in the same spx-data "
            "import call")]


def test_underlying_comes_from_index_bars_already_stored(store, tmp_path):
    import_files(store, [LEAN_INDEX], "lean-minute")  # SPX minute bars of 2021-01-04
    path = write_dbn(tmp_path / "opra.dbn", metadata(), _definitions() + _quotes())
    import_files(store, [path], FMT)
    first, second = snapshots(store)
    assert (first.underlying_price, second.underlying_price) == (3766.63, 3766.13)  # the bars ended by then


def test_a_truncated_file_fails_and_stores_nothing(store, tmp_path):
    path = write_dbn(tmp_path / "opra.dbn", metadata(), _definitions() + _quotes())
    path.write_bytes(path.read_bytes()[:-7])
    [report] = import_files(store, [path], FMT)
    assert report.status is ImportStatus.FAILED and "truncated" in report.error
    assert store.list_snapshots() == [] and store.load_instrument(C3700) is None


def test_a_file_that_is_not_dbn_fails(store):
    [report] = import_files(store, [DATASHOP_CUT], FMT)
    assert report.status is ImportStatus.FAILED and "not a DBN file" in report.error


def test_the_same_bytes_are_a_duplicate(store, tmp_path):
    path = write_dbn(tmp_path / "opra.dbn", metadata(), _definitions() + _quotes())
    first = import_files(store, [path], FMT)[0]
    again = import_files(store, [path], FMT)[0]
    assert (first.status, again.status) == (ImportStatus.IMPORTED, ImportStatus.DUPLICATE)
    assert again.sha256 == first.sha256 and len(store.list_snapshots()) == 2
