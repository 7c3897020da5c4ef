"""Databento DBN importer, on DBN files written here with databento_dbn's own encoder."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace

import numpy as np
import pytest

from spx_core.cli.main import main
from spx_core.domain import QuoteFlag, Root
from spx_core.marketdata.importers import ImportStatus, import_files
from spx_core.storage import Store
from tests.marketdata.dbn_files import (
    MINUTE,
    T0,
    Quote,
    cbbo,
    definition,
    metadata,
    write_dbn,
)
from tests.marketdata.import_helpers import DATASHOP_CUT, LEAN_INDEX, snapshots

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
        (4, "quote record for instrument_id 9 on 2021-01-04 (UTC): no SPX/SPXW definition in this import call "
            "or stored for databento:OPRA.PILLAR that day; import that day's Databento definition file first "
            "(spx-data import --format databento DEFINITIONS.dbn) or pass it in the same import call")]


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


@pytest.fixture
def spx_data(capsys):
    """Run ``spx-data import --format databento --json`` in-process; returns (exit code, file entries)."""
    import json

    def run(db, *paths) -> tuple[int, list[dict]]:
        code = main(["import", "--format", FMT, "--db", str(db), "--json", *(str(p) for p in paths)])
        return code, json.loads(capsys.readouterr().out)["files"]
    return run


def test_quotes_imported_in_a_later_call_resolve_stored_definitions(spx_data, tmp_path):
    from databento_dbn import Schema

    db = tmp_path / "later.sqlite"
    defs = write_dbn(tmp_path / "definition.dbn", metadata(schema=Schema.DEFINITION), _definitions())
    quotes = write_dbn(tmp_path / "cbbo.dbn", metadata(schema=Schema.CBBO_1M), _quotes())
    assert spx_data(db, defs)[0] == 0
    code, [q] = spx_data(db, quotes)  # a later call: only the stored mapping can resolve the ids

    assert code == 0 and (q["status"], q["quotes_stored"], q["snapshots"], q["rejected"]) == ("imported", 5, 2, [])
    with Store.open(db) as store:
        assert [(r.path, r.snapshots) for r in store.import_log()] == [(str(defs), 0), (str(quotes), 2)]
        first, _ = snapshots(store)
        assert [(e.root, e.expiry) for e in first.expiries()] == [(Root.SPXW, dt.date(2021, 1, 4)),
                                                                  (Root.SPX, dt.date(2021, 1, 15))]
        assert list(first.strike) == [3700.0, 3700.0, 3800.0] and list(first.bid) == [64.9, 0.35, 20.0]
        assert list(first.is_call) == [True, False, True]


def test_stored_definitions_hold_only_for_their_day_and_dataset(spx_data, tmp_path):
    from databento_dbn import Schema

    db = tmp_path / "days.sqlite"
    assert spx_data(db, write_dbn(tmp_path / "definition.dbn", metadata(schema=Schema.DEFINITION),
                                  _definitions()))[0] == 0
    next_day = [cbbo(Quote(1, T0 + 86_400 * 10**9, T0 + 86_400 * 10**9, 64.9, 67.9)),
                cbbo(Quote(2, T0 + 86_400 * 10**9, T0 + 86_400 * 10**9, 0.3, 0.4))]
    code_q, [q] = spx_data(db, write_dbn(tmp_path / "next.dbn", metadata(schema=Schema.CBBO_1M), next_day))
    other = dbn_metadata_for("XNAS.ITCH")
    code_x, [x] = spx_data(db, write_dbn(tmp_path / "other.dbn", other, _quotes()[:1]))

    assert (code_q, code_x) == (1, 1)  # nothing resolved: the files fail (no valid rows), naming each record
    # OPRA re-uses ids from day to day: yesterday's definition must not name today's quote
    assert q["status"] == "failed" and [r["line"] for r in q["rejected"]] == [1, 2]
    assert "instrument_id 1 on 2021-01-05 (UTC)" in q["rejected"][0]["reason"]
    assert "import that day's Databento definition file first" in q["rejected"][0]["reason"]
    assert x["status"] == "failed" and "stored for databento:XNAS.ITCH" in x["rejected"][0]["reason"]


def dbn_metadata_for(dataset: str):
    import databento_dbn as dbn

    return dbn.Metadata(dataset=dataset, start=T0, stype_in=dbn.SType.RAW_SYMBOL, stype_out=dbn.SType.INSTRUMENT_ID,
                        schema=dbn.Schema.CBBO_1M, symbols=["SPX.OPT"], end=T0 + 3600 * 10**9)


# --- corrupt and implausible records ---------------------------------------------------------------
def _panicking_dbn(path):
    """A DBN file whose definition record claims fewer bytes than its type needs: databento_dbn panics."""
    meta = bytes(metadata())
    record = bytearray(bytes(definition(1, C3700)))
    record[0] = 66  # the length byte counts 4-byte words: 264 bytes instead of 520
    path.write_bytes(meta + bytes(record) + b"".join(bytes(q) for q in _quotes()))
    return path


def test_a_decoder_panic_fails_only_its_file_with_a_message(store, tmp_path, capfd):
    import databento_dbn

    corrupt = _panicking_dbn(tmp_path / "corrupt.dbn")
    with pytest.raises(BaseException) as raised:  # what the importer has to contain
        databento_dbn.DBNDecoder().write_and_decode(corrupt.read_bytes())
    assert not isinstance(raised.value, Exception) and type(raised.value).__name__ == "PanicException"
    capfd.readouterr()

    good = write_dbn(tmp_path / "good.dbn", metadata(), _definitions() + _quotes())
    bad_report, good_report = import_files(store, [corrupt, good], FMT)

    assert bad_report.status is ImportStatus.FAILED
    assert "cannot decode DBN data after record 0 (the decoder failed: Malformed" in bad_report.error
    assert "download it again" in bad_report.error
    assert good_report.status is ImportStatus.IMPORTED and good_report.quotes_stored == 5
    assert [r.status for r in store.import_log()] == ["failed", "imported"]
    assert "panicked" not in capfd.readouterr().err  # the Rust panic report stays off the terminal


def test_a_decoder_panic_in_the_cli_is_one_line_and_exit_1(tmp_path, capsys):
    corrupt = _panicking_dbn(tmp_path / "corrupt.dbn")
    code = main(["import", "--format", FMT, "--db", str(tmp_path / "cli.sqlite"), str(corrupt)])
    out = capsys.readouterr()
    assert code == 1 and "Traceback" not in out.out + out.err
    assert "failed     " in out.out and "the decoder failed" in out.out


@pytest.mark.parametrize(("quote", "reason"), [
    (Quote(1, 0, 0, 64.9, 67.9), "ts_recv 1970-01-01T00:00:00.000000000 UTC is not a plausible quote time"),
    (Quote(1, T0 + MINUTE, 5, 64.9, 67.9), "ts_event 1970-01-01T00:00:00.000000005 UTC is not a plausible quote time"),
    (Quote(1, T0 + MINUTE, T0, 64.9, 2e6), "implausible price (bid 64.9, ask 2e+06; above 1,000,000)"),
    (Quote(4, T0 + MINUTE, T0, 1.0, 1.1), "expiry 2020-12-31 is before the quote day 2021-01-04 (expired series)"),
])
def test_implausible_quote_records_are_rejected(store, tmp_path, quote, reason):
    records = [*_definitions(), definition(4, "SPXW  201231C03700000"), cbbo(quote),
               cbbo(Quote(2, T0 + MINUTE, T0, 0.35, 0.5))]
    [report] = import_files(store, [write_dbn(tmp_path / "q.dbn", metadata(), records)], FMT)
    assert report.status is ImportStatus.IMPORTED
    assert [(r.line, r.reason.split(" (")[0] if "plausible quote time" in reason else r.reason)
            for r in report.rejected] == [(5, reason.split(" (")[0] if "plausible quote time" in reason else reason)]
    assert report.quotes_stored == 1
