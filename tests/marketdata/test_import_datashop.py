"""Cboe DataShop Option EOD Summary importer: real cut fixture, malformed rows, root rules, real file."""

from __future__ import annotations

import csv
from datetime import datetime

import numpy as np
import pandas as pd
import pytest

from spx_core.domain import ET, Root
from spx_core.marketdata.importers import ImportStatus, import_files
from spx_core.marketdata.importers.base import FileSink
from spx_core.marketdata.importers.cboe_datashop import DataShopOptions
from tests.marketdata.import_helpers import DATASHOP_CUT, DELAYED_CUT, edit_line, snapshots

FMT = "cboe-datashop"


def _expected_rows(path):
    with open(path, encoding="utf-8-sig", newline="") as fh:
        return list(csv.DictReader(fh))


def test_cut_fixture_imports_every_row_as_one_1545_snapshot(store):
    [report] = import_files(store, [DATASHOP_CUT], FMT)

    assert report.status is ImportStatus.IMPORTED and report.error is None
    assert (report.rows_read, report.quotes_stored, report.snapshots, report.rejected) == (24, 24, 1, [])
    [snap] = snapshots(store)
    assert snap.time == datetime(2019, 6, 26, 15, 45, tzinfo=ET)
    assert snap.underlying_bid == 2917.8 and snap.underlying_ask == 2918.42
    assert snap.underlying_price == pytest.approx(0.5 * (2917.8 + 2918.42), rel=0, abs=1e-12)
    assert {e.root for e in snap.expiries()} == {Root.SPXW}  # the file name starts with "spxw"


def test_every_value_matches_the_csv_read_independently(store):
    import_files(store, [DATASHOP_CUT], FMT)
    [snap] = snapshots(store)
    frame = snap.to_frame().set_index(["expiry", "strike", "is_call"])
    for row in _expected_rows(DATASHOP_CUT):
        got = frame.loc[(pd.Timestamp(row["expiration"]), float(row["strike"]), row["option_type"] == "C")]
        assert (got["bid"], got["ask"]) == (float(row["bid_1545"]), float(row["ask_1545"]))
        assert (got["bid_size"], got["ask_size"]) == (int(row["bid_size_1545"]), int(row["ask_size_1545"]))
        assert (got["volume"], got["open_interest"]) == (int(row["trade_volume"]), int(row["open_interest"]))


def test_the_header_bom_is_handled_and_a_file_without_bom_imports_the_same(store, tmp_path):
    raw = DATASHOP_CUT.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # the real file's BOM is in the fixture
    plain = tmp_path / "spxw_nobom.csv"
    plain.write_bytes(raw[3:])
    a, b = import_files(store, [DATASHOP_CUT, plain], FMT)
    assert (a.status, b.status) == (ImportStatus.IMPORTED, ImportStatus.IMPORTED)
    first, second = snapshots(store)
    assert first.checksum == second.checksum


def test_a_malformed_row_is_rejected_with_its_line_and_the_rest_imports(store, tmp_path):
    bad = edit_line(DATASHOP_CUT, tmp_path / "spxw_bad.csv", 5, ",0.05,", ",abc,")
    [report] = import_files(store, [bad], FMT)

    assert report.status is ImportStatus.IMPORTED
    assert [(r.line, r.reason) for r in report.rejected] == [(5, "ask_1545 'abc' is not a number")]
    assert report.quotes_stored == 23 and report.rows_read == 24


@pytest.mark.parametrize(("line", "old", "new", "reason"), [
    (3, "2850,P,", "2850,X,", "option_type 'X' is not C or P"),
    (4, "2019-06-26,2875", "2019-06-25,2875", "expiration 2019-06-25 is before quote_date 2019-06-26 (expired series)"),
    (6, ",60,15.8,", ",-60,15.8,", "bid_size_1545 '-60' is negative"),
    (7, "2019-06-26,2019-06-26", "2019-06-26,2019-13-01", "expiration '2019-13-01' is not a date (YYYY-MM-DD)"),
    (9, ",139,", ",1.5,", "bid_size_1545 '1.5' is not a whole number"),
    (11, ",670,5362", ",670,5362,99", "has 13 fields, the header has 12"),
    (13, "3000,P,", ",P,", "strike is empty"),
])
def test_specific_reasons_for_malformed_rows(store, tmp_path, line, old, new, reason):
    bad = edit_line(DATASHOP_CUT, tmp_path / "spxw_bad.csv", line, old, new)
    [report] = import_files(store, [bad], FMT)
    assert [(r.line, r.reason) for r in report.rejected] == [(line, reason)]
    assert report.quotes_stored == 23


@pytest.mark.parametrize(("line", "old", "new", "reason"), [
    (2, ",2850,C,", ",0,C,", "strike '0' is not a plausible strike (0 < strike <= 1,000,000)"),
    (3, ",2850,P,", ",1e308,P,", "strike '1e308' is not a plausible strike (0 < strike <= 1,000,000)"),
    (4, ",2917.8,2918.42,", ",-2917.8,2918.42,", "underlying_bid_1545 '-2917.8' is negative"),
    (5, ",2917.8,2918.42,", ",0,2918.42,",
     "underlying_bid_1545 '0' is not a plausible index level (0 < level <= 1,000,000)"),
    (6, ",2917.8,2918.42,", ",2917.8,inf,", "underlying_ask_1545 'inf' is not a number"),
    (7, ",2917.8,2918.42,", ",2917.8,1e300,",
     "underlying_ask_1545 '1e300' is not a plausible index level (0 < level <= 1,000,000)"),
    (8, "2019-06-26,2019-06-26,", "1970-01-01,2019-06-26,", "quote_date 1970-01-01 is not a plausible quote date"),
    (9, "2019-06-26,2019-06-26,", "2019-06-26,2035-06-26,",
     "expiration 2035-06-26 is more than 10 years after quote_date 2019-06-26; not a listed expiry"),
    (10, ",0.05,2917.8,", ",1e308,2917.8,", "ask_1545 '1e308' is not a plausible price (above 1,000,000)"),
    (11, ",124,30.1,", ",124,1e308,", "bid_1545 '1e308' is not a plausible price (above 1,000,000)"),
])
def test_implausible_values_are_rejected_with_their_reason(store, tmp_path, line, old, new, reason):
    bad = edit_line(DATASHOP_CUT, tmp_path / "spxw_implausible.csv", line, old, new)
    [report] = import_files(store, [bad], FMT)
    [(got_line, got_reason)] = [(r.line, r.reason) for r in report.rejected]
    assert got_line == line and got_reason.startswith(reason)
    assert report.quotes_stored == 23


def test_a_duplicated_header_column_fails_the_file_naming_it(store, tmp_path):
    rows = DATASHOP_CUT.read_text(encoding="utf-8-sig").rstrip("\n").split("\n")
    path = tmp_path / "spxw_twice.csv"
    path.write_text("\n".join([rows[0] + ",bid_1545", *(r + ",1.0" for r in rows[1:])]) + "\n", encoding="utf-8")
    [report] = import_files(store, [path], FMT)
    assert report.status is ImportStatus.FAILED
    assert "names column 'bid_1545' more than once (columns 6, 13)" in report.error
    assert store.list_snapshots() == []


@pytest.mark.parametrize("stray", ['"C', 'C"x', '"C"x'])
def test_a_stray_quote_rejects_only_its_own_line(store, tmp_path, stray):
    bad = edit_line(DATASHOP_CUT, tmp_path / "spxw_quote.csv", 6, ",C,", f",{stray},")
    [report] = import_files(store, [bad], FMT)
    assert report.status is ImportStatus.IMPORTED
    assert [r.line for r in report.rejected] == [6]
    assert report.quotes_stored == 23 and report.rows_read == 24


def test_every_line_of_a_100_row_file_with_a_stray_quote_is_stored_or_rejected(store, tmp_path):
    rows = DATASHOP_CUT.read_text(encoding="utf-8-sig").rstrip("\n").split("\n")
    body = [rows[1].replace(",2850,", f",{2000 + 5 * i},") for i in range(100)]
    body[50] = body[50].replace(",C,", ',"C,')
    path = tmp_path / "spxw_100.csv"
    path.write_text("\n".join([rows[0], *body]) + "\n", encoding="utf-8")
    [report] = import_files(store, [path], FMT)
    assert (report.rows_read, report.quotes_stored) == (100, 99)
    [rejection] = report.rejected
    assert rejection.line == 52 and "bad quoting" in rejection.reason


def test_quoted_fields_on_one_line_are_read(store, tmp_path):
    bad = edit_line(DATASHOP_CUT, tmp_path / "spxw_quoted.csv", 6, ",C,", ',"C",')
    [report] = import_files(store, [bad], FMT)
    assert report.rejected == [] and report.quotes_stored == 24


def test_lines_ending_in_cr_only_are_numbered_like_any_other(store, tmp_path):
    rows = DATASHOP_CUT.read_text(encoding="utf-8-sig").rstrip("\n").split("\n")
    rows[4] = rows[4].replace(",0.05,", ",abc,")
    path = tmp_path / "spxw_cr.csv"
    path.write_bytes("\r".join(rows).encode())
    [report] = import_files(store, [path], FMT)
    assert [(r.line, r.reason) for r in report.rejected] == [(5, "ask_1545 'abc' is not a number")]
    assert report.quotes_stored == 23


def test_a_repeated_contract_is_rejected_naming_the_kept_line(store, tmp_path):
    text = DATASHOP_CUT.read_text(encoding="utf-8")
    lines = text.rstrip("\n").split("\n")
    path = tmp_path / "spxw_dup.csv"
    path.write_text("\n".join([*lines, lines[1].replace("65.8", "66.0")]) + "\n", encoding="utf-8")
    [report] = import_files(store, [path], FMT)
    assert [(r.line, r.reason) for r in report.rejected] == [
        (26, "SPXW 2019-06-26 2850C is already quoted on line 2; kept that one")]
    assert snapshots(store)[0].bid[0] == 65.8


def test_two_quote_dates_make_two_snapshots_and_an_out_of_order_date_is_rejected(store, tmp_path, monkeypatch):
    # small chunks, so the 06-26 snapshot is written before the stray 06-26 row at the end is read
    monkeypatch.setattr("spx_core.marketdata.importers.cboe_datashop._CHUNK_ROWS", 5)
    rows = DATASHOP_CUT.read_text(encoding="utf-8").rstrip("\n").split("\n")
    later = [r.replace("2019-06-26,2019-07-19", "2019-06-27,2019-07-19") for r in rows[14:]]
    back = rows[13].replace("2019-07-19,2850,C", "2019-07-19,2855,C")
    path = tmp_path / "spxw_two_days.csv"
    path.write_text("\n".join([*rows[:14], *later, back]) + "\n", encoding="utf-8")
    [report] = import_files(store, [path], FMT)
    assert report.snapshots == 2
    assert [s.time.astimezone(ET).date().isoformat() for s in snapshots(store)] == ["2019-06-26", "2019-06-27"]
    assert [r.line for r in report.rejected] == [26]
    assert "appears again after other dates" in report.rejected[0].reason


def test_root_rules_option_then_column_then_file_name_then_monthly_expiry(store, tmp_path):
    plain = tmp_path / "chain_20190626.csv"  # not spxw...: the 2019-07-19 monthly is SPX (AM)
    plain.write_bytes(DATASHOP_CUT.read_bytes())
    import_files(store, [plain], FMT)
    by_expiry = {e.expiry.isoformat(): e.root for e in snapshots(store)[0].expiries()}
    assert by_expiry == {"2019-06-26": Root.SPXW, "2019-07-19": Root.SPX}

    forced = tmp_path / "forced.csv"
    forced.write_bytes(DATASHOP_CUT.read_bytes().replace(b"2917.8,", b"2917.9,"))
    [report] = import_files(store, [forced], FMT, options=DataShopOptions(root=Root.SPX))
    assert report.status is ImportStatus.IMPORTED
    assert {e.root for e in snapshots(store)[1].expiries()} == {Root.SPX}


def test_a_root_column_is_used_and_unknown_roots_are_rejected(store, tmp_path):
    rows = DATASHOP_CUT.read_text(encoding="utf-8-sig").rstrip("\n").split("\n")
    out = ["root," + rows[0]] + [("SPX," if "2019-07-19" in r else "SPXW,") + r for r in rows[1:]]
    out[2] = "QQQ," + out[2].split(",", 1)[1]
    path = tmp_path / "spxw_with_root.csv"  # the root column wins over the file name
    path.write_text("\n".join(out) + "\n", encoding="utf-8")
    [report] = import_files(store, [path], FMT)
    assert [(r.line, r.reason) for r in report.rejected] == [(3, "root 'QQQ' is not one of SPX, SPXW, XSP, SPY")]
    roots = {e.expiry.isoformat(): e.root for e in snapshots(store)[0].expiries()}
    assert roots == {"2019-06-26": Root.SPXW, "2019-07-19": Root.SPX}


def test_a_file_of_another_format_fails_and_stores_nothing(store):
    [report] = import_files(store, [DELAYED_CUT], FMT)
    assert report.status is ImportStatus.FAILED
    assert "not a Cboe DataShop Option EOD Summary file" in report.error and "check --format" in report.error
    assert store.list_snapshots() == []
    assert [r.status for r in store.import_log()] == ["failed"]


def test_a_file_that_turns_to_garbage_midway_imports_nothing(store, tmp_path, monkeypatch):
    # small chunks: the first quote date's snapshot is already written in the transaction when the
    # garbage is read, so this shows the rollback, not just an early failure
    monkeypatch.setattr("spx_core.marketdata.importers.cboe_datashop._CHUNK_ROWS", 5)
    monkeypatch.setattr("spx_core.marketdata.importers.parsing._BLOCK_CHARS", 1024)
    rows = DATASHOP_CUT.read_text(encoding="utf-8").rstrip("\n").split("\n")
    later = [r.replace("2019-06-26,2019-07-19", "2019-06-27,2019-07-19") for r in rows[14:]]
    path = tmp_path / "spxw_corrupt.csv"
    # blank lines (skipped) push the garbage past the text decoder's first 8 KB block
    path.write_bytes(("\n".join([*rows[:14], *later]) + "\n" * 20_000).encode() + b"\xff\xfe\x00garbage\n" * 3)
    written = []
    original = FileSink.add_snapshot
    monkeypatch.setattr(FileSink, "add_snapshot", lambda self, snap: written.append(snap) or original(self, snap))
    [report] = import_files(store, [path], FMT)
    assert len(written) == 1  # the 2019-06-26 snapshot was written before the failure ...
    assert report.status is ImportStatus.FAILED and "not UTF-8 text" in report.error
    assert store.list_snapshots() == []  # ... and rolled back
    [record] = store.import_log()
    assert record.status == "failed" and record.snapshots == 0 and "not UTF-8 text" in record.error


@pytest.mark.shared_data
def test_real_file_spxw20190626(store, shared_data):
    path = shared_data / "cboe_datashop" / "spxw20190626.csv"
    [report] = import_files(store, [path], FMT)
    reference = pd.read_csv(path, encoding="utf-8-sig")  # independent reader of the same file

    assert report.status is ImportStatus.IMPORTED and report.rejected == []
    # The data README says 10,383 quotes; the file has 10,384 data rows (no trailing newline, so
    # `wc -l` shows 10,384 lines including the header). pandas agrees with us.
    assert len(reference) == 10_384 == report.rows_read == report.quotes_stored
    [snap] = snapshots(store)
    assert len(snap.expiries()) == 30 and {e.root for e in snap.expiries()} == {Root.SPXW}
    assert snap.underlying_price == pytest.approx(2918.11, abs=1e-9)
    assert np.sum(snap.bid) == pytest.approx(reference["bid_1545"].sum(), rel=1e-12)
    assert np.sum(snap.ask) == pytest.approx(reference["ask_1545"].sum(), rel=1e-12)
    assert int(np.sum(snap.open_interest)) == int(reference["open_interest"].sum())


def test_expiries_years_out_import_under_the_monthly_expiry_rule(store, tmp_path):
    # SPX lists about five years out: a 2035 expiry quoted in 2026 is real (no calendar window)
    rows = DATASHOP_CUT.read_text(encoding="utf-8-sig").rstrip("\n").split("\n")
    body = [r.replace("2019-06-26,2019-06-26", "2026-06-26,2035-12-21").replace(
        "2019-06-26,2019-07-19", "2026-06-26,2035-12-31") for r in rows[1:]]
    path = tmp_path / "chain_20260626.csv"  # not spxw...: roots come from the monthly-expiry rule
    path.write_text("\n".join([rows[0], *body]) + "\n", encoding="utf-8")
    [report] = import_files(store, [path], FMT)
    assert report.status is ImportStatus.IMPORTED, report.error
    assert report.rejected == [] and report.quotes_stored == 24
    roots = {e.expiry.isoformat(): e.root for e in snapshots(store)[0].expiries()}
    assert roots == {"2035-12-21": Root.SPX, "2035-12-31": Root.SPXW}
